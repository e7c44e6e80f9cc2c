"""Backfill objects, as the controller runs them: runs of type backfill for every interval, maxActiveRuns at a
time, resumed by a restarted controller."""
from __future__ import annotations

import asyncio

from kubedag.core import naming as names
from kubedag.k8s.backfill import BackfillReconciler
from kubedag.k8s.client import Connection, KubeClient
from kubedag.k8s.informers import Cache
from tests.controller.harness import DAGRUNS, NS, RunningController, dag_manifest, manual_run, wait_phase, wait_until
from tests.k8s.emulator import server as emulator_server

BACKFILLS = 'kubedag.io/v1alpha1/backfills'
STAMP = ('echo start $(date +%s.%N) >> "$KUBEDAG_RUN_ID.t"; sleep 0.2; '
         'echo end $(date +%s.%N) >> "$KUBEDAG_RUN_ID.t"')


def backfill(name: str, dag: str, start: str, end: str, **spec):
    return {'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'Backfill', 'metadata': {'name': name, 'namespace': NS},
            'spec': {'dagName': dag, 'startDate': start, 'endDate': end, **spec}}


def status(api, name):
    return (api.get(BACKFILLS, name, NS) or {}).get('status') or {}


def peak(spans):
    return max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)


def test_a_backfill_of_30_days_survives_a_controller_restart_midway(k8s_api, fake_kubelet, sqlite_url):
    # scheduled far in the future: the scheduler creates nothing, only the backfill does
    k8s_api.create(dag_manifest('daily', [{'name': 'work', 'command': ['sh', '-c', STAMP]}],
                                schedule='@daily', startDate='2030-01-01T00:00:00Z'))
    k8s_api.create(backfill('january', 'daily', '2026-01-01', '2026-01-30', maxActiveRuns=3))
    controller = RunningController(k8s_api, sqlite_url).start()
    try:
        wait_until(lambda: status(k8s_api, 'january').get('succeeded', 0) >= 6, timeout=60, what='6 runs done')
    finally:
        controller.stop()
    controller.start()
    try:
        wait_until(lambda: status(k8s_api, 'january').get('phase') == 'success', timeout=120, what='the backfill done')
    finally:
        controller.stop()

    done = status(k8s_api, 'january')
    assert (done['total'], done['created'], done['succeeded'], done['failed']) == (30, 30, 30, 0)
    assert done['finishedAt'] and done['startedAt']
    runs = [r for r in k8s_api.list(DAGRUNS, NS) if r['spec']['dagName'] == 'daily']
    assert len(runs) == 30
    assert {r['spec']['runType'] for r in runs} == {'backfill'}
    assert {r['status']['phase'] for r in runs} == {'success'}
    assert sorted(r['spec']['runId'] for r in runs)[0] == 'backfill__2026-01-01T00:00:00+00:00'
    assert sorted(r['spec']['runId'] for r in runs)[-1] == 'backfill__2026-01-30T00:00:00+00:00'
    for r in runs:
        assert r['metadata']['labels']['kubedag.io/backfill'] == 'january'
        assert r['metadata']['name'] == names.run_name('daily', r['spec']['runId'])
        assert r['metadata']['ownerReferences'][0]['kind'] == 'Backfill'
    spans = []
    for f in fake_kubelet.workdir.glob('backfill__*.t'):
        lines = dict(line.split() for line in f.read_text().splitlines())
        spans.append((float(lines['start']), float(lines['end'])))
    assert len(spans) == 30
    assert peak(spans) <= 3


def test_a_backfill_of_an_unknown_dag_waits_with_a_condition(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(backfill('orphan', 'nosuchdag', '2026-01-01', '2026-01-03'))
    with RunningController(k8s_api, sqlite_url):
        wait_until(lambda: status(k8s_api, 'orphan').get('conditions'), what='a condition')
        got = status(k8s_api, 'orphan')
    assert got['phase'] == 'pending'
    assert got['conditions'][0]['status'] == 'False'
    assert 'DAG nosuchdag does not exist' in got['conditions'][0]['message']
    assert not k8s_api.list(DAGRUNS, NS)


def test_an_existing_run_is_left_alone_and_deleting_the_backfill_deletes_its_runs(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('d2', [{'name': 'a', 'command': ['true']}],
                                schedule='@daily', startDate='2030-01-01T00:00:00Z'))
    k8s_api.create({'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'DAGRun',
                    'metadata': {'name': 'mine', 'namespace': NS},
                    'spec': {'dagName': 'd2', 'runType': 'manual', 'logicalDate': '2026-01-02T00:00:00Z'}})
    k8s_api.create(backfill('three', 'd2', '2026-01-01', '2026-01-03'))
    with RunningController(k8s_api, sqlite_url):
        wait_until(lambda: status(k8s_api, 'three').get('phase') == 'success', timeout=60, what='the backfill done')
        k8s_api.delete(BACKFILLS, 'three', NS)
        wait_until(lambda: [r['metadata']['name'] for r in k8s_api.list(DAGRUNS, NS)] == ['mine'],
                   what='the backfill runs deleted with it')
    mine = k8s_api.get(DAGRUNS, 'mine', NS)
    assert mine['spec']['runType'] == 'manual'


def test_a_backfill_with_reset_dag_runs_clears_an_existing_run_which_runs_again(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('d3', [{'name': 'a', 'command': ['sh', '-c', 'echo ran >> "$KUBEDAG_RUN_ID.t"']}],
                                schedule='@daily', startDate='2030-01-01T00:00:00Z'))
    k8s_api.create(manual_run('d3', 'mine', runType='manual', runId='mine', logicalDate='2026-01-02T00:00:00Z'))
    ran = fake_kubelet.workdir / 'mine.t'
    with RunningController(k8s_api, sqlite_url):
        assert wait_phase(k8s_api, 'mine')['status']['phase'] == 'success'
        k8s_api.create(backfill('again', 'd3', '2026-01-01', '2026-01-03', resetDagRuns=True))
        wait_until(lambda: ran.exists() and ran.read_text().count('ran') == 2, timeout=60, what='mine run again')
        wait_until(lambda: status(k8s_api, 'again').get('phase') == 'success', timeout=60, what='the backfill done')
        mine = wait_phase(k8s_api, 'mine')
    assert mine['status']['phase'] == 'success'
    assert mine['spec']['runType'] == 'manual'  # cleared in place, not replaced by a backfill run
    runs = sorted(r['spec']['runId'] for r in k8s_api.list(DAGRUNS, NS))
    assert runs == ['backfill__2026-01-01T00:00:00+00:00', 'backfill__2026-01-03T00:00:00+00:00', 'mine']


def test_a_backfill_changed_before_every_status_write_still_gets_each_of_them(
        k8s_api, fake_kubelet, sqlite_url, monkeypatch):
    """Someone labels the Backfill just before each of the controller's status writes (a GitOps tool, ``kubectl
    label``): every write lands (a merge patch of the status without a resourceVersion, as a DAGRun's; the PUT of
    before answered 409 Conflict to each), the Backfill completes, and it is never read again (the chart grants no
    ``get backfills``)."""
    writes = {'tried': 0, 'refused': 0}

    def written(original, at, self, rt, namespace, name, *args, **kwargs):  # args[at]: the subresource
        if getattr(rt, 'plural', None) != 'backfills' or kwargs.get('subresource', args[at:at + 1] or [None])[0] \
                != 'status':
            return original(self, rt, namespace, name, *args, **kwargs)
        writes['tried'] += 1
        patch(self, rt, namespace, name, {'metadata': {'labels': {'touched': str(writes['tried'])}}},
              'application/merge-patch+json')
        try:
            return original(self, rt, namespace, name, *args, **kwargs)
        except Exception:
            writes['refused'] += 1
            raise

    patch, update = emulator_server.KubeApiEmulator.op_patch, emulator_server.KubeApiEmulator.op_update
    monkeypatch.setattr(emulator_server.KubeApiEmulator, 'op_patch',
                        lambda self, rt, namespace, name, *a, **kw: written(patch, 2, self, rt, namespace, name, *a, **kw))
    monkeypatch.setattr(emulator_server.KubeApiEmulator, 'op_update',
                        lambda self, rt, namespace, name, *a, **kw: written(update, 1, self, rt, namespace, name, *a, **kw))
    k8s_api.create(dag_manifest('d4', [{'name': 'a', 'command': ['true']}], schedule='@daily',
                                startDate='2030-01-01T00:00:00Z'))
    k8s_api.create(backfill('busy', 'd4', '2026-01-01', '2026-01-03', maxActiveRuns=1))
    with RunningController(k8s_api, sqlite_url):
        wait_until(lambda: status(k8s_api, 'busy').get('phase') == 'success', timeout=30, what='the backfill done')
    done = status(k8s_api, 'busy')
    assert (done['total'], done['created'], done['succeeded'], done['failed']) == (3, 3, 3, 0)
    assert writes['tried'] >= 4 and writes['refused'] == 0  # each run's start and end changed the status
    assert k8s_api.get(BACKFILLS, 'busy', NS)['metadata']['labels']['touched'] == str(writes['tried'])
    assert not [r for r in k8s_api.handler['get'] if r.url.path.endswith('/backfills/busy')]


def test_a_status_field_the_backfill_no_longer_has_is_removed_even_when_the_cache_never_saw_it(k8s_api):
    """A finished Backfill whose range is extended runs again: its ``finishedAt`` must go (a merge patch keeps
    what it does not null). The cache may also be behind the server (someone else wrote the status): the field is
    removed all the same, by a second patch, without a GET."""
    created = k8s_api.create(backfill('extended', 'd6', '2026-01-01', '2026-01-03'))
    done = {'phase': 'success', 'total': 2, 'created': 2, 'succeeded': 2, 'finishedAt': '2026-01-05T00:00:00Z'}
    running = {'phase': 'running', 'total': 3, 'created': 3, 'queued': 1, 'succeeded': 2}

    async def write(cached, status) -> None:
        cache = Cache(backfills={(NS, 'extended'): cached})
        async with KubeClient(Connection(server=k8s_api.url)) as client:
            reconciler = BackfillReconciler(cache, lambda: client, None, None, None, parsed=lambda key: None,
                                            seen_run=lambda *args: None)
            await reconciler._write_status((NS, 'extended'), cached, status)

    asyncio.run(write(created, done))
    assert status(k8s_api, 'extended') == done
    asyncio.run(write({**created, 'status': done}, running))  # the cache has the status
    assert status(k8s_api, 'extended') == running
    asyncio.run(write(created, done))
    asyncio.run(write(created, running))  # the cache is behind: it never saw finishedAt
    assert status(k8s_api, 'extended') == running
    assert not [r for r in k8s_api.handler['get'] if r.url.path.endswith('/backfills/extended')]

"""Kept pods of archived tries (issue 13: flat memory with 10,000 finished pods kept): the controller hands them to
its pod reaper and keeps them out of its pod cache, and nothing changes for a user: the runs keep their state and
history, no log is read twice, no try becomes "pod deleted", and each pod is deleted once when its retention ends."""
from __future__ import annotations

import collections
from datetime import timedelta

from kubedag.core import naming as names
from kubedag.k8s.runs import RunReconciler
from tests.controller.harness import DAGRUNS, NS, RunningController, dag_manifest, manual_run, wait_phase, wait_until
from tests.controller.test_resilience import _rows

HISTORY = ("select run_id, task_id, try_number, state, start_date, end_date, exit_code, reason, log "
           "from task_instance_history order by run_id, task_id, try_number")


def _archived(url: str) -> int:
    return _rows(url, "select count(*) from task_instance_history where log is not null")[0][0]


def _log_reads(api) -> list[str]:
    return [r.url.path.split('/')[-2] for r in api.handler['get'] if r.url.path.endswith('/log')]


def test_kept_pods_of_archived_tries_leave_the_pod_cache_and_are_deleted_when_their_retention_ends(
        k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('flat', [{'name': f't{i}', 'command': ['echo', f'log {i}']} for i in range(3)]))
    controller = RunningController(k8s_api, sqlite_url, pod_retention=timedelta(hours=1),
                                   history_resync=timedelta(seconds=1))
    with controller:
        for day, run in enumerate(('flat-1', 'flat-2'), start=1):
            k8s_api.create(manual_run('flat', run, logicalDate=f'2026-11-0{day}T00:00:00Z'))
            wait_phase(k8s_api, run)
            wait_until(lambda: _archived(sqlite_url) == 3 * day, what=f"{run}'s logs archived")
        status = {run: k8s_api.get(DAGRUNS, run, NS)['status'] for run in ('flat-1', 'flat-2')}
        history = _rows(sqlite_url, HISTORY)
    manager = controller.controller
    assert manager is not None
    assert manager.cache.pods == {}  # every try is archived: no pod is cached
    assert manager.reaper.pending() == 6  # each kept for its retention
    assert {run: k8s_api.get(DAGRUNS, run, NS)['status'] for run in status} == status
    assert all(s['phase'] == 'success' for s in status.values())

    reads = len(_log_reads(k8s_api))
    controller.start()  # a restart with the six pods kept: the first pass of each finished run verifies its history
    try:
        k8s_api.create(manual_run('flat', 'flat-3', logicalDate='2026-11-03T00:00:00Z'))
        wait_phase(k8s_api, 'flat-3')
        wait_until(lambda: _archived(sqlite_url) == 9, what="flat-3's logs archived")
    finally:
        controller.stop()
    manager = controller.controller
    assert manager.cache.pods == {} and manager.reaper.pending() == 9
    assert sorted(_log_reads(k8s_api)[reads:]) == sorted(names.pod_name('flat', 'flat-3', f't{i}', 1) for i in range(3))
    assert {run: k8s_api.get(DAGRUNS, run, NS)['status'] for run in status} == status
    assert [r for r in _rows(sqlite_url, HISTORY) if r[0] in {h[0] for h in history}] == history
    assert len(k8s_api.list('v1/pods', NS)) == 9  # kept for --pod-retention

    with RunningController(k8s_api, sqlite_url, pod_retention=timedelta(0)):  # every retention has ended
        wait_until(lambda: not k8s_api.list('v1/pods', NS), what='the kept pods deleted')
    deletes = collections.Counter(r.url.path.rsplit('/', 1)[-1] for r in k8s_api.handler['delete'] if '/pods/' in r.url.path)
    assert len(deletes) == 9 and set(deletes.values()) == {1}, deletes  # each once, none answered 404
    assert {run: k8s_api.get(DAGRUNS, run, NS)['status'] for run in status} == status
    rows = _rows(sqlite_url, HISTORY)
    assert [r for r in rows if r[0] in {h[0] for h in history}] == history
    assert len(rows) == 9 and {(r[3], r[7]) for r in rows} == {('success', None)}  # none failed as "pod deleted"


def test_after_a_restart_every_active_run_has_its_first_pass_before_any_finished_run_and_none_is_run_twice(
        k8s_api, fake_kubelet, sqlite_url, monkeypatch):
    """Issue 13, "Bounded recovery": a start lists the finished runs (named first here, so listed first) and their
    kept pods; the active runs' first passes come before any finished run's pass (which compares its history with its
    kept pods once they are all cached), the running try is neither launched again nor called lost."""
    k8s_api.create(dag_manifest('done', [{'name': f't{i}', 'command': ['echo', f'log {i}']} for i in range(3)]))
    k8s_api.create(dag_manifest('live', [{'name': 'work', 'command': ['sleep', '3']}], maxActiveRuns=2))
    controller = RunningController(k8s_api, sqlite_url, pod_retention=timedelta(hours=1))
    finished = ['a-done-1', 'a-done-2']
    with controller:
        for day, run in enumerate(finished, start=1):
            k8s_api.create(manual_run('done', run, logicalDate=f'2026-11-0{day}T00:00:00Z'))
            wait_phase(k8s_api, run)
            wait_until(lambda: _archived(sqlite_url) == 3 * day, what=f"{run}'s logs archived")
        k8s_api.create(manual_run('live', 'z-live-1', logicalDate='2026-11-01T00:00:00Z'))
        wait_until(lambda: any((p.get('status') or {}).get('phase') == 'Running' for p in k8s_api.list('v1/pods', NS)
                               if p['metadata']['labels'].get(names.LABEL_RUN) == 'z-live-1'), what="z-live-1's pod runs")
    status = {run: k8s_api.get(DAGRUNS, run, NS)['status'] for run in finished}
    k8s_api.create(manual_run('live', 'z-live-2', logicalDate='2026-11-02T00:00:00Z'))  # while the controller is down

    order: list[str] = []
    reconcile = RunReconciler.reconcile

    async def reconciling(self, key):
        order.append(key[1])
        return await reconcile(self, key)

    monkeypatch.setattr(RunReconciler, 'reconcile', reconciling)
    with controller:
        for run in ('z-live-1', 'z-live-2'):
            assert wait_phase(k8s_api, run, timeout=60)['status']['phase'] == 'success'
        wait_until(lambda: set(finished) <= set(order), what='the finished runs looked at')
    first_finished = min(order.index(run) for run in finished)
    assert order.index('z-live-1') < first_finished and order.index('z-live-2') < first_finished, order
    assert {run: k8s_api.get(DAGRUNS, run, NS)['status'] for run in finished} == status
    assert _rows(sqlite_url, "select distinct try_number from task_instance") == [(1,)]
    assert _rows(sqlite_url, "select count(*) from task_instance_history where reason like '%pod deleted%'") == [(0,)]
    assert sorted(p['metadata']['labels'][names.LABEL_TRY] for p in k8s_api.list('v1/pods', NS)) == ['1'] * 8

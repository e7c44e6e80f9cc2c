"""Issue 13: ``kubectl delete dag`` left its manual runs ``running``/``queued`` forever, and right after a restart
the controller reported runs' valid DAGs as missing or invalid before it had listed them."""
from __future__ import annotations

import asyncio

from tests.controller.harness import (
    DAGRUNS, DAGS, NS, RunningController, dag_manifest, manual_run, wait_phase, wait_until)
from tests.controller.test_resilience import _rows
from tests.k8s.emulator import server as emulator_server


def _ready(run):
    return next(c for c in run['status']['conditions'] if c['type'] == 'Ready')


def test_deleting_a_dag_fails_its_hand_made_runs_and_stops_their_pods(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('doomed', [{'name': 'slow', 'command': ['sleep', '60']},
                                           {'name': 'after', 'command': ['true'], 'dependsOn': ['slow']}],
                                maxActiveRuns=1))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('doomed', 'doomed-1', logicalDate='2026-11-01T00:00:00Z'))
        wait_until(lambda: k8s_api.list('v1/pods', NS), what='the first run running its pod')
        k8s_api.create(manual_run('doomed', 'doomed-2', logicalDate='2026-11-02T00:00:00Z'))
        wait_until(lambda: (k8s_api.get(DAGRUNS, 'doomed-2', NS).get('status') or {}).get('phase') == 'queued',
                   what='the second run queued behind maxActiveRuns')
        k8s_api.delete(DAGS, 'doomed', NS)
        first, second = wait_phase(k8s_api, 'doomed-1'), wait_phase(k8s_api, 'doomed-2')
        wait_until(lambda: not k8s_api.list('v1/pods', NS), what="the running try's pod deleted")
    assert (first['status']['phase'], second['status']['phase']) == ('failed', 'failed')
    assert _ready(first)['reason'] == _ready(second)['reason'] == 'DAGDeleted'
    assert _ready(first)['message'] == 'DAG doomed was deleted: the run failed, and its running tries were stopped (slow)'
    assert _ready(second)['message'] == 'DAG doomed was deleted: the run failed'
    assert _rows(sqlite_url, "select run_id, state from dag_run order by run_id") == [
        ('manual__2026-11-01T00:00:00+00:00', 'failed'), ('manual__2026-11-02T00:00:00+00:00', 'failed')]
    assert _rows(sqlite_url, "select task_id, state, reason from task_instance where run_id like '%11-01%' "
                             "order by task_id") == [
        ('after', 'removed', 'removed: dag_deleted: DAG doomed was deleted'),
        ('slow', 'removed', 'removed: dag_deleted: DAG doomed was deleted')]
    assert _rows(sqlite_url, "select task_id, try_number, state, reason from task_instance_history") == [
        ('slow', 1, 'failed', 'dag_deleted: DAG doomed was deleted')]
    events = {(e['involvedObject']['name'], e['reason']) for e in k8s_api.list('v1/events', NS)}
    assert {('doomed-1', 'DAGDeleted'), ('doomed-2', 'DAGDeleted')} <= events


def test_a_run_made_before_its_dag_waits_for_it_and_then_runs(k8s_api, fake_kubelet, sqlite_url):
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('later', 'later-1'))
        wait_until(lambda: (k8s_api.get(DAGRUNS, 'later-1', NS).get('status') or {}).get('conditions'),
                   what='a condition on the waiting run')
        waiting = k8s_api.get(DAGRUNS, 'later-1', NS)
        assert (_ready(waiting)['reason'], _ready(waiting)['message']) == (
            'DAGNotReady', 'DAG later does not exist; the run waits for it')
        k8s_api.create(dag_manifest('later', [{'name': 'work', 'command': ['true']}]))
        assert wait_phase(k8s_api, 'later-1')['status']['phase'] == 'success'


def test_after_a_restart_runs_listed_before_their_dags_are_never_told_their_dag_is_missing(
        k8s_api, fake_kubelet, sqlite_url, monkeypatch):
    original = emulator_server.KubeApiEmulator._dispatch
    slow = {'on': False}

    async def _dispatch(self, request):  # the DAG list and watch answer late: DAGRuns are listed first
        path = emulator_server.parse_path(request.url.path)
        if slow['on'] and path is not None and path.plural == 'dags' and path.name is None:
            await asyncio.sleep(3)
        return await original(self, request)

    monkeypatch.setattr(emulator_server.KubeApiEmulator, '_dispatch', _dispatch)
    k8s_api.create(dag_manifest('steady', [{'name': 'first', 'command': ['sleep', '2']},
                                           {'name': 'second', 'command': ['true'], 'dependsOn': ['first']}]))
    controller = RunningController(k8s_api, sqlite_url).start()
    try:
        k8s_api.create(manual_run('steady', 'steady-1'))
        wait_until(lambda: k8s_api.list('v1/pods', NS), what="the first task's pod")
        controller.stop()
        slow['on'] = True
        controller.start()
        run = wait_phase(k8s_api, 'steady-1')
    finally:
        controller.stop()
    assert run['status']['phase'] == 'success'
    written = [c['reason'] for r in k8s_api.handler['put'] if r.url.path.endswith('/status') and
               isinstance(r.data, dict) for c in (r.data.get('status') or {}).get('conditions') or []]
    assert written == []  # no DAGNotReady, no DAGDeleted

"""Reliability fixes of issue 13 that fall out of the controller's structure: each pod deleted once, a pass's DB
writes kept when a pod creation fails, a DAG status without stale fields, informers on the event loop."""
from __future__ import annotations

import asyncio
import collections
from datetime import timedelta

from kubedag.core import naming as names
from kubedag.k8s.client import Connection
from kubedag.k8s.manager import ControllerConfig, Manager, make_registry
from tests.controller.harness import DAGS, NS, RunningController, dag_manifest, manual_run, wait_phase, wait_until
from tests.controller.test_resilience import _rows
from tests.k8s.emulator import errors
from tests.k8s.emulator import server as emulator_server


def test_each_finished_pod_is_deleted_once(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('fan', [{'name': 'root', 'command': ['true']}] + [
        {'name': f'leaf{i}', 'command': ['true'], 'dependsOn': ['root']} for i in range(6)]))
    with RunningController(k8s_api, sqlite_url, pod_retention=timedelta(0)):
        for day, run in enumerate(('fan-1', 'fan-2'), start=1):
            k8s_api.create(manual_run('fan', run, logicalDate=f'2026-11-0{day}T00:00:00Z'))
        for run in ('fan-1', 'fan-2'):
            assert wait_phase(k8s_api, run)['status']['phase'] == 'success'
        wait_until(lambda: not k8s_api.list('v1/pods', NS), what='every pod deleted')
    deletes = collections.Counter(r.url.path.rsplit('/', 1)[-1] for r in k8s_api.handler['delete']
                                  if '/pods/' in r.url.path)
    assert len(deletes) == 14
    assert set(deletes.values()) == {1}, deletes  # no DELETE repeated, none answered 404
    assert _rows(sqlite_url, "select count(*) from task_instance_history where log is not null") == [(14,)]


def test_a_pass_writes_its_changes_to_the_db_even_when_a_pod_creation_fails(k8s_api, fake_kubelet, sqlite_url,
                                                                            monkeypatch):
    """Issue 13: a 503 on a pod creation aborted the pass after its transitions were made, so they never reached
    the DB. Here ``first`` succeeds while every creation of ``second``'s pod answers 503."""
    original = emulator_server.KubeApiEmulator.op_create
    failing = {'on': True}

    def op_create(self, rt, namespace, body, *args, **kwargs):
        labels = ((body or {}).get('metadata') or {}).get('labels') or {}
        if failing['on'] and getattr(rt, 'plural', None) == 'pods' and labels.get(names.LABEL_TASK) == 'second':
            raise errors.StatusError(503, 'ServiceUnavailable', 'the API server is overloaded')
        return original(self, rt, namespace, body, *args, **kwargs)

    monkeypatch.setattr(emulator_server.KubeApiEmulator, 'op_create', op_create)
    k8s_api.create(dag_manifest('pair', [{'name': 'first', 'command': ['true']},
                                         {'name': 'second', 'command': ['true'], 'dependsOn': ['first']}]))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('pair', 'pair-1'))
        wait_until(lambda: _rows(sqlite_url, "select state from task_instance where task_id = 'first'") == [('success',)],
                   what="first's success in the DB while second's pod cannot be created")
        assert k8s_api.get('v1/pods', names.pod_name('pair', 'pair-1', 'second', 1), NS) is None
        failing['on'] = False
        assert wait_phase(k8s_api, 'pair-1')['status']['phase'] == 'success'
    assert _rows(sqlite_url, "select task_id, state from task_instance order by task_id") == [
        ('first', 'success'), ('second', 'success')]


def test_next_run_at_is_removed_from_the_status_while_a_dag_is_paused_or_invalid(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('hourly', [{'name': 'a', 'command': ['true']}], schedule='@hourly',
                                startDate='2099-01-01T00:00:00Z'))
    with RunningController(k8s_api, sqlite_url):
        wait_until(lambda: (k8s_api.get(DAGS, 'hourly', NS).get('status') or {}).get('nextRunAt'), what='nextRunAt')
        k8s_api.patch(DAGS, 'hourly', {'spec': {'paused': True}}, NS)
        paused = wait_until(lambda: (s := k8s_api.get(DAGS, 'hourly', NS).get('status') or {}).get('paused') and s,
                            what='paused status')
        assert 'nextRunAt' not in paused
        k8s_api.patch(DAGS, 'hourly', {'spec': {'paused': False}}, NS)
        wait_until(lambda: (k8s_api.get(DAGS, 'hourly', NS).get('status') or {}).get('nextRunAt'), what='nextRunAt again')
        k8s_api.patch(DAGS, 'hourly', {'spec': {'schedule': 'not a schedule'}}, NS)
        invalid = wait_until(lambda: (s := k8s_api.get(DAGS, 'hourly', NS).get('status') or {})
                             and s['conditions'][0]['reason'] == 'Invalid' and s, what='Invalid condition')
    assert 'nextRunAt' not in invalid and 'paused' not in invalid


def test_informer_handlers_run_on_the_event_loop():
    """kopf runs a plain handler in a worker thread: every handler of the controller is async (issue 13 item 5)."""
    manager = Manager(ControllerConfig(), Connection('https://k8s.invalid'), store=None)
    registry = make_registry(manager)
    handlers = list(registry._watching.get_all_handlers())
    assert len(handlers) >= 5 and all(asyncio.iscoroutinefunction(h.fn) for h in handlers), handlers


def test_a_restarted_controller_reads_no_log_it_archived_already(k8s_api, fake_kubelet, sqlite_url):
    """Issue 13: the archived tries lived in memory only, so every restart fetched every kept pod's log again."""
    k8s_api.create(dag_manifest('kept', [{'name': f't{i}', 'command': ['echo', f'log {i}']} for i in range(4)]))
    controller = RunningController(k8s_api, sqlite_url).start()
    try:
        k8s_api.create(manual_run('kept', 'kept-1', logicalDate='2026-11-01T00:00:00Z'))
        wait_phase(k8s_api, 'kept-1')
        wait_until(lambda: _rows(sqlite_url, "select count(*) from task_instance_history where log is not null") == [(4,)],
                   what='the logs archived')
    finally:
        controller.stop()
    before = len([r for r in k8s_api.handler['get'] if r.url.path.endswith('/log')])
    controller.start()
    try:
        k8s_api.create(manual_run('kept', 'kept-2', logicalDate='2026-11-02T00:00:00Z'))
        wait_phase(k8s_api, 'kept-2')  # the restarted controller has opened both runs by now
        wait_until(lambda: _rows(sqlite_url, "select count(*) from task_instance_history where log is not null") == [(8,)],
                   what="the new run's logs archived")
    finally:
        controller.stop()
    reads = sorted([r.url.path.split('/')[-2] for r in k8s_api.handler['get'] if r.url.path.endswith('/log')][before:])
    assert reads == sorted(names.pod_name('kept', 'kept-2', f't{i}', 1) for i in range(4))
    assert len(k8s_api.list('v1/pods', NS)) == 8  # kept for --pod-retention


def test_a_pod_the_api_server_refuses_fails_its_try_with_the_reason(k8s_api, fake_kubelet, sqlite_url, monkeypatch):
    """Issue 13: a 413 (a rendered command too large) was never handled, so the run was retried forever."""
    original = emulator_server.KubeApiEmulator.op_create

    def op_create(self, rt, namespace, body, *args, **kwargs):
        if getattr(rt, 'plural', None) == 'pods':
            raise errors.StatusError(413, 'RequestEntityTooLarge', 'the request is too large')
        return original(self, rt, namespace, body, *args, **kwargs)

    monkeypatch.setattr(emulator_server.KubeApiEmulator, 'op_create', op_create)
    k8s_api.create(dag_manifest('huge', [{'name': 'big', 'command': ['true']}]))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('huge', 'huge-1'))
        run = wait_phase(k8s_api, 'huge-1')
    assert run['status']['phase'] == 'failed'
    assert _rows(sqlite_url, "select reason from task_instance_history") == [
        ('the API server rejected the pod (413): the request is too large',)]
    # the pod never existed: no DELETE for it (the chaos suite counted it as a redundant DELETE answered 404)
    assert [r.url.path for r in k8s_api.handler['delete'] if '/pods/' in r.url.path] == []


def test_a_burst_of_pod_events_of_a_finished_run_makes_one_pass_after_the_runs_at_work():
    """Issue 13: at a start with 10,000 finished pods kept (or when their retention ends), each pod event of a
    finished run queued a pass over all its tasks, one per event, and the runs at work waited behind them. A finished
    run not open yet (a start) is queued behind every other run (the run queue's lower lane); once open, its pod
    events make one pass :data:`FINISHED_POD_DELAY` later."""
    from kubedag.k8s.manager import FINISHED_POD_DELAY

    manager = Manager(ControllerConfig(), Connection('https://k8s.invalid'), store=None)
    manager.leading = True  # a follower queues nothing (its takeover queues every run)
    manager.cache.runs[(NS, 'done')] = {'metadata': {'name': 'done', 'namespace': NS}, 'status': {'phase': 'success'}}
    manager.cache.runs[(NS, 'busy')] = {'metadata': {'name': 'busy', 'namespace': NS}, 'status': {'phase': 'running'}}

    def pod(run: str, i: int) -> dict:
        return {'metadata': {'name': f'{run}-t{i}-1', 'namespace': NS, 'resourceVersion': str(i),
                             'labels': {names.LABEL_RUN: run}}, 'status': {'phase': 'Succeeded'}}

    async def scenario() -> list:
        for i in range(500):
            manager.on_pod_event('ADDED', pod('done', i))
        manager.on_pod_event('MODIFIED', pod('busy', 0))
        await asyncio.sleep(FINISHED_POD_DELAY + 0.5)
        handed = []
        while True:
            try:
                key = await asyncio.wait_for(manager.run_queue.get(), 0.2)
            except asyncio.TimeoutError:
                return handed
            handed.append(key)
            manager.run_queue.done(key)

    assert asyncio.run(scenario()) == [(NS, 'busy'), (NS, 'done')]  # the run at work first; the finished one once

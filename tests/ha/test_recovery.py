"""Bounded recovery (issue 13 item 4): watches failing for over a minute are retried until they come back (the
controller exited with rc 1 after about 57 s); SIGTERM stops a loaded controller within the grace period and
hands its Lease over; a SIGKILLed leader's follower finishes its run with no try run twice."""
from __future__ import annotations

import time

from kubedag.k8s.recovery import SHUTDOWN_GRACE
from tests.controller.harness import NS, RunningController, dag_manifest, manual_run, wait_phase, wait_until
from tests.controller.test_resilience import _rows
from tests.ha.replicas import LEASE, ControllerProcess, holder
from tests.ha.test_standby import _chain
from tests.k8s.emulator import errors
from tests.k8s.emulator import server as emulator_server

OUTAGE = 65.0
"""Seconds the watches fail: longer than kopf's default backoffs (54 s), after which the controller gave up."""


def test_the_controller_survives_a_minute_of_failing_watches_and_resumes(k8s_api, fake_kubelet, sqlite_url,
                                                                         monkeypatch):
    k8s_api.create(dag_manifest('one', [{'name': 'a', 'command': ['true']}]))
    with RunningController(k8s_api, sqlite_url) as controller:
        k8s_api.create(manual_run('one', 'before'))
        assert wait_phase(k8s_api, 'before')['status']['phase'] == 'success'
        original = emulator_server.KubeApiEmulator._dispatch
        down = {'on': True}

        async def dispatch(self, request):
            if down['on'] and request.method == 'GET' and request.name is None:  # every list and watch
                raise errors.StatusError(500, 'InternalError', 'watches are down')
            return await original(self, request)

        monkeypatch.setattr(emulator_server.KubeApiEmulator, '_dispatch', dispatch)
        k8s_api.call(lambda handler: [w.queue.put_nowait(None) for w in list(handler.watches)])  # drop them all
        time.sleep(OUTAGE)
        assert controller.thread is not None and controller.thread.is_alive(), controller.error
        down['on'] = False
        k8s_api.create(manual_run('one', 'after'))
        assert wait_phase(k8s_api, 'after', timeout=90)['status']['phase'] == 'success'


def test_sigterm_stops_a_busy_leader_within_the_grace_period_and_releases_its_lease(k8s_api, fake_kubelet, sqlite_url,
                                                                                   tmp_path):
    k8s_api.create(dag_manifest('wide', [{'name': f't{i}', 'command': ['sleep', '0.2']} for i in range(40)]))
    controller = ControllerProcess(k8s_api.kubeconfig(tmp_path / 'kubeconfig'), sqlite_url, 'solo', tmp_path)
    try:
        wait_until(lambda: holder(k8s_api) == 'solo', timeout=60, what='the controller leads')
        for i in range(5):
            k8s_api.create(manual_run('wide', f'wide-{i}', logicalDate=f'2026-11-0{i + 1}T00:00:00Z'))
        wait_until(lambda: len(k8s_api.list('v1/pods', NS)) >= 20, timeout=60, what='the controller busy')
        controller.terminate()
        rc = controller.wait(SHUTDOWN_GRACE + 5)  # a TimeoutExpired here: the process outlived its grace period
    finally:
        controller.stop()
    assert rc == 0
    assert not k8s_api.get(LEASE, 'kubedag-controller', NS)['spec'].get('holderIdentity')


def test_a_killed_leader_process_is_replaced_by_its_follower_with_no_try_run_twice(k8s_api, fake_kubelet, sqlite_url,
                                                                                  tmp_path):
    k8s_api.create(_chain('chain', 10))
    kubeconfig = k8s_api.kubeconfig(tmp_path / 'kubeconfig')
    timing = ('3s', '2s', '500ms')
    a = ControllerProcess(kubeconfig, sqlite_url, 'a', tmp_path, timing)
    b = None
    try:
        wait_until(lambda: holder(k8s_api) == 'a', timeout=60, what='a leads')
        b = ControllerProcess(kubeconfig, sqlite_url, 'b', tmp_path, timing)
        k8s_api.create(manual_run('chain', 'chain-1'))
        wait_until(lambda: len(k8s_api.list('v1/pods', NS)) >= 3, timeout=60, what='three pods')
        a.kill()
        wait_until(lambda: holder(k8s_api) == 'b', timeout=60, what='b takes over')
        assert wait_phase(k8s_api, 'chain-1', timeout=120)['status']['phase'] == 'success'
    finally:
        a.stop()
        if b is not None:
            b.stop()
    assert _rows(sqlite_url, "select task_id, try_number, state from task_instance order by try_number, task_id") == [
        (f't{i}', 1, 'success') for i in sorted(range(10), key=str)]

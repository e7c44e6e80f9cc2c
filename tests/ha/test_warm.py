"""Warm standby and a fair takeover (issue 13, "Hot standby", "Bounded recovery"): a follower builds every active
run's memory before it leads, writing nothing; at takeover each active run has its first reconcile before any
run has a second, and a run whose memory was read after the old leader stopped writing opens nothing."""
from __future__ import annotations

import pytest

from kubedag.k8s.manager import Manager
from kubedag.k8s.runs import RunReconciler
from tests.controller.harness import manual_run, wait_phase, wait_until
from tests.controller.test_resilience import _rows
from tests.ha.replicas import Replica, cut_off_from_lease, holder, writes
from tests.ha.test_standby import _chain

RUNS = 4


@pytest.fixture
def passes(monkeypatch):
    """Every reconcile and every run opened (memory rebuilt from the DB), as (reconciler, DAGRun name); the
    managers started, by replica name."""
    seen: dict[str, list] = {'reconcile': [], 'open': []}
    reconcile, open_, start = RunReconciler.reconcile, RunReconciler._open, Manager.start

    async def starting(self):
        seen.setdefault('managers', {})[self.connection.token] = self
        await start(self)

    async def reconciling(self, key):
        seen['reconcile'].append((self, key[1]))
        return await reconcile(self, key)

    async def opening(self, key, dag, body):
        seen['open'].append((self, key[1]))
        return await open_(self, key, dag, body)

    monkeypatch.setattr(RunReconciler, 'reconcile', reconciling)
    monkeypatch.setattr(RunReconciler, '_open', opening)
    monkeypatch.setattr(Manager, 'start', starting)
    return seen


def _started(k8s_api, runs: list[str]) -> None:
    """``a`` leads and every run has a pod."""
    def running() -> bool:
        pods = {(p['metadata'].get('labels') or {}).get('kubedag.io/run') for p in k8s_api.list('v1/pods', 'default')}
        return set(runs) <= pods
    wait_until(running, timeout=60, what='a pod for every run')


def _first_round_is_fair(order: list[str], runs: list[str]) -> None:
    assert sorted(order[:len(runs)]) == sorted(runs), f'a run was reconciled twice before another once: {order}'


def test_a_follower_builds_every_active_run_before_it_leads_and_its_first_passes_open_nothing(
        k8s_api, fake_kubelet, sqlite_url, monkeypatch, passes):
    """``a`` is cut off from its Lease: it fences itself, ``b`` reads every run once more before the Lease expires
    (lease 14 s, renew deadline 6 s) and takes over with every memory current: no run is opened again."""
    k8s_api.create(_chain('chain', 10, '3'))
    runs = [f'chain-{i}' for i in range(RUNS)]
    timing = (14.0, 6.0, 0.5)
    a, b = Replica(k8s_api, sqlite_url, 'a', timing), Replica(k8s_api, sqlite_url, 'b', timing)
    try:
        a.start()
        wait_until(lambda: holder(k8s_api) == 'a', what='a leads')
        b.start()
        for name in runs:
            k8s_api.create(manual_run('chain', name))
        _started(k8s_api, runs)
        follower = passes['managers']['b']
        wait_until(lambda: set(k for _, k in follower.standby.warm) == set(runs), timeout=30, what='b has every run warm')
        assert not follower.leading and follower.runs.memories == {}
        assert {token for _, token, _, _ in writes(k8s_api)} == {'a'}  # the follower wrote nothing

        cut_off_from_lease(monkeypatch, 'a')
        wait_until(lambda: follower.takeover, timeout=60, what='b takes over')
        assert {k: v for k, v in follower.takeover.items() if k != 'first_round_ms'} == {
            'runs': RUNS, 'active': RUNS, 'warm': RUNS, 'current': RUNS}
        for name in runs:
            assert wait_phase(k8s_api, name, timeout=120)['status']['phase'] == 'success'
    finally:
        b.stop()
        try:
            a.stop()
        except Exception:  # noqa: BLE001 - a lost its Lease and exited, as designed
            pass
    assert 'first_round_ms' in follower.takeover  # the round's end is logged
    assert [k for r, k in passes['open'] if r is follower.runs] == []  # every first pass used the warm memory
    _first_round_is_fair([k for r, k in passes['reconcile'] if r is follower.runs], runs)
    last_a = max(i for i, token, _, _ in writes(k8s_api) if token == 'a')
    assert last_a < min(i for i, token, _, _ in writes(k8s_api) if token == 'b'), 'a wrote after b had started'
    assert _rows(sqlite_url, "select distinct try_number from task_instance") == [(1,)]


def test_after_a_released_lease_every_active_run_is_reconciled_once_before_any_twice(
        k8s_api, fake_kubelet, sqlite_url, passes):
    """A graceful handover (SIGTERM: the Lease is released) is taken at once: the follower's memories were read
    before the old leader stopped, so none is current and each run is opened from the DB, in a fair first round."""
    k8s_api.create(_chain('chain', 10, '3'))
    k8s_api.create(_chain('done', 1, '0'))
    k8s_api.create(manual_run('done', 'done-1'))
    runs = [f'chain-{i}' for i in range(RUNS)]
    timing = (60.0, 10.0, 0.5)
    with Replica(k8s_api, sqlite_url, 'a', timing) as a:
        wait_until(lambda: holder(k8s_api) == 'a', what='a leads')
        assert wait_phase(k8s_api, 'done-1', timeout=60)['status']['phase'] == 'success'
        with Replica(k8s_api, sqlite_url, 'b', timing) as b:
            for name in runs:
                k8s_api.create(manual_run('chain', name))
            _started(k8s_api, runs)
            wait_until(lambda: len(passes['managers']['b'].standby.warm) == RUNS, timeout=30, what='b has every active run warm')
            a.stop()
            wait_until(lambda: passes['managers']['b'].takeover, timeout=30, what='b takes over from the released Lease')
            took = passes['managers']['b'].takeover
            assert {k: v for k, v in took.items() if k != 'first_round_ms'} == {
                'runs': RUNS + 1, 'active': RUNS, 'warm': RUNS, 'current': 0}
            for name in runs:
                assert wait_phase(k8s_api, name, timeout=120)['status']['phase'] == 'success'
            follower = passes['managers']['b'].runs
    order = [k for r, k in passes['reconcile'] if r is follower]
    _first_round_is_fair(order, runs)
    assert 'done-1' not in order[:len(runs)]  # the finished run after the active ones
    assert _rows(sqlite_url, "select distinct try_number from task_instance") == [(1,)]

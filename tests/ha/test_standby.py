"""Hot standby (issue 13 item 6): two controllers against one API server never both act; the follower takes
over when the leader cannot renew its Lease, and finishes the run with no try run twice."""
from __future__ import annotations

import asyncio
import time

import pytest

from kubedag.core import naming as names
from kubedag.k8s.leader import LeaderElectionLost
from kubedag.k8s.manager import Manager
from tests.controller.harness import NS, dag_manifest, manual_run, wait_phase, wait_until
from tests.controller.test_resilience import _rows
from tests.ha.replicas import LEASE, Replica, cut_off_from_lease, holder, writes


def _chain(name: str, n: int, seconds: str = '0.3') -> dict:
    return dag_manifest(name, [{'name': f't{i}', 'command': ['sleep', seconds], **({'dependsOn': [f't{i - 1}']} if i else {})}
                               for i in range(n)])


def _pods_created(api) -> int:
    return sum(1 for _, _, method, path in writes(api) if method == 'POST' and path.endswith('/pods'))


def test_only_the_lease_holder_writes_and_the_follower_takes_over_when_the_leader_cannot_renew(
        k8s_api, fake_kubelet, sqlite_url, monkeypatch):
    """``a`` leads, then loses the Lease endpoint only (its pod creations and status writes would still go
    through): it must stop writing by itself before ``b`` may take over, and exit."""
    k8s_api.create(_chain('chain', 8))
    a, b = Replica(k8s_api, sqlite_url, 'a'), Replica(k8s_api, sqlite_url, 'b')
    try:
        a.start()
        wait_until(lambda: holder(k8s_api) == 'a', what='a leads')
        b.start()
        k8s_api.create(manual_run('chain', 'chain-1'))
        wait_until(lambda: _pods_created(k8s_api) >= 3, what='three pods created by the leader')
        assert {token for _, token, _, _ in writes(k8s_api)} == {'a'}  # the follower wrote nothing

        cut_off_from_lease(monkeypatch, 'a')
        wait_until(lambda: holder(k8s_api) == 'b', timeout=30, what='b takes over')
        assert wait_phase(k8s_api, 'chain-1', timeout=60)['status']['phase'] == 'success'
        with pytest.raises(LeaderElectionLost):
            a.stop()  # a ended by itself (its thread is over); stop() re-raises why
    finally:
        b.stop()
        a.thread = None
    by = [token for _, token, _, _ in writes(k8s_api)]
    assert 'a' in by and 'b' in by
    last_a = max(i for i, token, _, _ in writes(k8s_api) if token == 'a')
    first_b = min(i for i, token, _, _ in writes(k8s_api) if token == 'b')
    assert last_a < first_b, 'a wrote after b had started'
    assert _rows(sqlite_url, "select task_id, try_number, state from task_instance order by task_id") == [
        (f't{i}', 1, 'success') for i in range(8)]
    assert sorted(p['metadata']['name'] for p in k8s_api.list('v1/pods', NS)) == sorted(
        names.pod_name('chain', 'chain-1', f't{i}', 1) for i in range(8))


def test_a_stopping_leader_releases_its_lease_and_the_follower_finishes_the_run(k8s_api, fake_kubelet, sqlite_url):
    """A graceful stop (SIGTERM in a pod) hands over at once: the Lease is released, not left to expire. With a
    60 s lease duration, only the release lets ``b`` take over within the test's wait."""
    k8s_api.create(_chain('chain', 6))
    a, b = Replica(k8s_api, sqlite_url, 'a', (60.0, 10.0, 0.5)), Replica(k8s_api, sqlite_url, 'b', (60.0, 10.0, 0.5))
    with a:
        wait_until(lambda: holder(k8s_api) == 'a', what='a leads')
        with b:
            k8s_api.create(manual_run('chain', 'chain-1'))
            wait_until(lambda: _pods_created(k8s_api) >= 2, what='two pods created')
            a.stop()
            released = k8s_api.get(LEASE, 'kubedag-controller', NS)['spec']
            assert released.get('holderIdentity') in (None, '', 'b_test')
            wait_until(lambda: holder(k8s_api) == 'b', timeout=10, what='b takes over from the released Lease')
            assert wait_phase(k8s_api, 'chain-1', timeout=60)['status']['phase'] == 'success'
    assert _rows(sqlite_url, "select distinct try_number from task_instance") == [(1,)]
    spec = k8s_api.get(LEASE, 'kubedag-controller', NS)['spec']
    assert not spec.get('holderIdentity') and spec['leaseTransitions'] == 1


def test_a_leader_whose_event_loop_is_busy_for_longer_than_its_lease_keeps_leading(k8s_api, fake_kubelet, sqlite_url,
                                                                                  monkeypatch):
    """Renewals run in a thread of their own (as client-go's goroutine): a pass that holds the controller's loop
    for 4 s (lease 3 s, renew deadline 2 s) neither loses the Lease nor lets a follower in."""
    loops = []
    original = Manager.start

    async def start(self):
        loops.append(asyncio.get_running_loop())
        await original(self)

    monkeypatch.setattr(Manager, 'start', start)
    k8s_api.create(_chain('chain', 2, '0'))
    with Replica(k8s_api, sqlite_url, 'a') as a, Replica(k8s_api, sqlite_url, 'b'):
        wait_until(lambda: holder(k8s_api) == 'a', what='a leads')
        loops[0].call_soon_threadsafe(time.sleep, 4)  # a's loop is blocked
        time.sleep(5)
        assert a.thread.is_alive() and holder(k8s_api) == 'a'
        k8s_api.create(manual_run('chain', 'chain-1'))
        assert wait_phase(k8s_api, 'chain-1')['status']['phase'] == 'success'
    assert k8s_api.get(LEASE, 'kubedag-controller', NS)['spec']['leaseTransitions'] == 0
    assert {token for _, token, _, _ in writes(k8s_api)} == {'a'}

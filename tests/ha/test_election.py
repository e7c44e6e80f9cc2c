"""The election itself (client-go's rules) against the API emulator, with each replica's clock in the test's
hands: who may take the Lease when, optimistic concurrency, fencing, release; and the CLI's checks."""
from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone
from typing import Any

import pytest

from kubedag.cli.main import app
from kubedag.k8s.client import Connection, KubeClient, NotLeader
from kubedag.k8s.leader import LeaderElection, LeaderElector
from kubedag.k8s.leases import fetch_leader
from tests.ha.replicas import LEASE


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elect(k8s_api: Any, body: Any) -> Any:
    """Run ``body(make)`` on an event loop; ``make(identity)`` opens an elector with its own clock."""
    async def main() -> Any:
        clients = []

        async def make(identity: str) -> tuple[LeaderElector, Clock]:
            client = KubeClient(Connection(server=k8s_api.url, token=identity), qps=0)
            await client.__aenter__()
            clients.append(client)
            clock = Clock()
            return LeaderElector(client, LeaderElection(namespace='default', identity=identity), monotonic=clock), clock
        try:
            return await body(make)
        finally:
            for client in clients:
                await client.close()
    return asyncio.run(main())


def test_a_follower_takes_over_only_a_lease_duration_after_it_last_saw_a_renewal(k8s_api):
    async def body(make):
        a, a_clock = await make('a')
        b, b_clock = await make('b')
        assert await a.try_acquire_or_renew()  # creates the Lease
        assert not await b.try_acquire_or_renew()
        a_clock.now += 2
        assert await a.try_acquire_or_renew()  # a renewal: b sees a new record
        b_clock.now += 1
        assert not await b.try_acquire_or_renew()
        b_clock.now += 14.9  # 14.9 s after b saw that renewal
        assert not await b.try_acquire_or_renew()
        a_clock.now += 10  # a could not renew for its renew deadline: fenced, before b may take over
        assert not a.is_leader()
        b_clock.now += 0.2
        assert await b.try_acquire_or_renew() and b.is_leader()
        return await fetch_leader(a.client, 'default')
    leader = elect(k8s_api, body)
    assert leader.holder == 'b' and leader.healthy(datetime.now(timezone.utc))
    spec = k8s_api.get(LEASE, 'kubedag-controller', 'default')['spec']
    assert spec['holderIdentity'] == 'b' and spec['leaseTransitions'] == 1 and spec['leaseDurationSeconds'] == 15


def test_of_two_followers_writing_the_same_version_one_gets_a_conflict(k8s_api):
    async def body(make):
        a, _ = await make('a')
        b, _ = await make('b')
        assert await a.try_acquire_or_renew()
        assert await a.release()
        stale = await b.client.get('coordination.k8s.io/v1', 'leases', 'default', 'kubedag-controller')
        assert await a.try_acquire_or_renew()  # a takes the released Lease back first
        get = b.client.get

        async def stale_get(*args: Any) -> Any:
            b.client.get = get
            return stale
        b.client.get = stale_get  # b decides on what it read before a's write: its PUT must conflict
        assert not await b.try_acquire_or_renew()
        assert a.is_leader() and not b.is_leader()
    elect(k8s_api, body)
    assert k8s_api.get(LEASE, 'kubedag-controller', 'default')['spec']['holderIdentity'] == 'a'


def test_a_released_lease_is_free_at_once_and_a_fenced_client_sends_no_write(k8s_api):
    async def body(make):
        a, a_clock = await make('a')
        b, _ = await make('b')
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
        assert await a.release()
        assert not a.is_leader()
        assert await b.try_acquire_or_renew()
        a.client.write_gate = a.is_leader
        with pytest.raises(NotLeader):
            await a.client.create('v1', 'configmaps', 'default', {'metadata': {'name': 'late-write'}})
    elect(k8s_api, body)
    assert k8s_api.get('v1/configmaps', 'late-write', 'default') is None
    assert not [r for r in k8s_api.handler._requests if r.url.path.endswith('/configmaps')]


@pytest.mark.parametrize(('flags', 'message'), [
    (['--leader-elect-lease-duration', '10s', '--leader-elect-renew-deadline', '10s'],
     '--leader-elect-lease-duration (10s) must be greater than --leader-elect-renew-deadline (10s)'),
    (['--leader-elect-retry-period', '9s'], 'must be greater than 1.2 x --leader-elect-retry-period (9s)'),
    (['--leader-elect-retry-period', 'soon'], "invalid duration 'soon'"),
])
def test_inconsistent_leader_election_timing_is_refused_naming_the_option(flags, message):
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ['controller', '--leader-elect', '--leader-elect-lease-namespace', 'x', *flags])
    assert result.exit_code == 2
    assert message in ' '.join(re.sub('[│╭╮╰╯─]', ' ', result.output).split())


def test_a_release_after_a_renewal_whose_answer_was_lost_still_frees_the_lease(k8s_api):
    """A stop can cut a renewal short after the server applied it: the release's PUT of the Lease as last seen
    then conflicts (409); it reads the Lease again and, still the holder, releases it."""
    async def body(make):
        a, _ = await make('a')
        assert await a.try_acquire_or_renew()
        k8s_api.patch(LEASE, 'kubedag-controller', {'spec': {'renewTime': '2026-12-02T15:00:00.000000Z'}}, 'default')
        return await a.release()
    assert elect(k8s_api, body) is True
    assert not k8s_api.get(LEASE, 'kubedag-controller', 'default')['spec'].get('holderIdentity')


def test_a_follower_knows_from_when_the_leader_it_saw_can_no_longer_write(k8s_api):
    """The warm standby's final read (:mod:`kubedag.k8s.standby`) begins at ``quiet_since``: ``renew_deadline``
    after the follower first saw the holder's latest record (the holder fenced itself by then), or when it saw the
    Lease released; while the holder renews, the moment moves on."""
    async def body(make):
        a, a_clock = await make('a')
        b, b_clock = await make('b')
        assert b.quiet_since() is None  # nothing seen yet
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
        seen = b.quiet_since()
        assert seen == b_clock.now + 10  # the default renew deadline
        b_clock.now += 5
        assert not await b.try_acquire_or_renew()
        assert b.quiet_since() == seen  # the same record: unchanged
        a_clock.now += 2
        assert await a.try_acquire_or_renew()  # a renewal
        assert not await b.try_acquire_or_renew()
        assert b.quiet_since() == b_clock.now + 10
        assert await a.release()
        b_clock.now += 1
        assert await b.try_acquire_or_renew()  # released: taken at once
        assert b.quiet_since() == b_clock.now  # seen free, in the try that took it
        assert await b.try_acquire_or_renew()  # b's own renewals do not move it
        return b.quiet_since() == b_clock.now
    assert elect(k8s_api, body)

"""Scheduler: one loop over a heap of (due time, DAG key), with a fake clock.

The loop reads the injected clock; it only sleeps (in real time) until the earliest entry is due or a
push wakes it, so every test moves the fake clock and then pushes (which wakes the loop).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from kubedag.k8s.dags import Scheduler

pytestmark = pytest.mark.asyncio

T = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
K1, K2, K3, KX = ("ns", "daily"), ("ns", "hourly"), ("ns", "weekly"), ("ns", "sentinel")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Harness:
    def __init__(self, fail_once: set | None = None) -> None:
        self.clock = Clock(T)
        self.seen: list = []
        self.fail_once = set(fail_once or ())
        self.arrived = asyncio.Event()
        self.scheduler = Scheduler(self.on_due, self.clock)
        self.task: asyncio.Task | None = None

    async def on_due(self, key) -> None:
        self.seen.append(key)
        self.arrived.set()
        if key in self.fail_once:
            self.fail_once.discard(key)
            raise RuntimeError("the API server is down")

    async def __aenter__(self) -> "Harness":
        self.task = asyncio.create_task(self.scheduler.run())
        return self

    async def __aexit__(self, *exc) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def until(self, n: int, timeout: float = 0.5) -> list:
        """Wait until ``n`` deliveries were seen (or the timeout); the deliveries so far."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while len(self.seen) < n and loop.time() < end:
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), max(0.0, end - loop.time()))
            except asyncio.TimeoutError:
                break
        return list(self.seen)

    async def settle(self) -> list:
        """Let the loop run a little; the deliveries so far."""
        for _ in range(20):
            await asyncio.sleep(0)
        await asyncio.sleep(0.02)
        return list(self.seen)


async def test_due_entries_are_handed_over_in_due_time_order():
    h = Harness()
    h.scheduler.push(K1, T - timedelta(minutes=1))
    h.scheduler.push(K2, T - timedelta(minutes=3))
    h.scheduler.push(K3, T - timedelta(minutes=2))
    async with h:
        assert await h.until(3) == [K2, K3, K1]


async def test_future_entries_wait_for_their_time():
    h = Harness()
    async with h:
        h.scheduler.push(K1, T + timedelta(hours=2))
        h.scheduler.push(K2, T + timedelta(hours=1))
        assert await h.settle() == []
        h.clock.now = T + timedelta(hours=1, seconds=1)
        h.scheduler.push(KX, T)  # wakes the loop
        assert await h.until(2) == [KX, K2]
        assert await h.settle() == [KX, K2]  # K1 not yet
        h.clock.now = T + timedelta(hours=3)
        h.scheduler.push(KX, T)
        assert await h.until(4) == [KX, K2, KX, K1]


async def test_an_entry_due_in_a_moment_is_delivered_without_a_push():
    clock = Clock(T)
    seen = []
    done = asyncio.Event()

    async def on_due(key):
        seen.append(key)
        done.set()

    s = Scheduler(on_due, clock)
    s.push(K1, T + timedelta(milliseconds=50))
    task = asyncio.create_task(s.run())
    await asyncio.sleep(0.01)
    clock.now = T + timedelta(milliseconds=60)  # the loop wakes from its own timeout and sees the new time
    await asyncio.wait_for(done.wait(), 0.5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert seen == [K1]


async def test_a_push_replaces_an_earlier_entry_for_the_same_key():
    h = Harness()
    h.scheduler.push(K1, T - timedelta(minutes=5))  # due...
    h.scheduler.push(K1, T + timedelta(hours=1))    # ...then moved later: the due one is stale
    h.scheduler.push(KX, T - timedelta(minutes=1))
    async with h:
        assert await h.until(1) == [KX]
        assert await h.settle() == [KX]
        h.clock.now = T + timedelta(hours=1)
        h.scheduler.push(KX, T)
        assert await h.until(3) == [KX, KX, K1]
        assert await h.settle() == [KX, KX, K1]


async def test_a_push_replaces_a_later_entry_and_the_stale_one_never_fires():
    h = Harness()
    h.scheduler.push(K1, T + timedelta(hours=1))
    h.scheduler.push(K1, T - timedelta(seconds=1))  # moved earlier
    async with h:
        assert await h.until(1) == [K1]
        h.clock.now = T + timedelta(hours=2)  # past the stale entry's time
        h.scheduler.push(KX, T)
        assert await h.until(2) == [K1, KX]
        assert await h.settle() == [K1, KX]  # K1 once only


async def test_remove_stops_a_key():
    h = Harness()
    h.scheduler.push(K1, T - timedelta(minutes=1))
    h.scheduler.push(K2, T - timedelta(minutes=1))
    h.scheduler.remove(K1)
    async with h:
        assert await h.until(1) == [K2]
        h.clock.now = T + timedelta(days=1)
        h.scheduler.push(KX, T)
        assert await h.until(2) == [K2, KX]
        assert await h.settle() == [K2, KX]


async def test_push_none_unschedules_a_key():
    h = Harness()
    h.scheduler.push(K1, T - timedelta(minutes=1))
    h.scheduler.push(K1, None)
    h.scheduler.push(KX, T - timedelta(minutes=1))
    async with h:
        assert await h.until(1) == [KX]
        assert await h.settle() == [KX]


async def test_a_key_pushed_again_by_on_due_is_delivered_again_later():
    h = Harness()
    original = h.on_due

    async def reschedule(key):
        await original(key)
        h.scheduler.push(key, h.clock() + timedelta(days=1))

    h.scheduler._on_due = reschedule  # as Controller.schedule_dag does: create runs, then update()
    h.scheduler.push(K1, T)
    async with h:
        assert await h.until(1) == [K1]
        assert await h.settle() == [K1]
        h.clock.now = T + timedelta(days=1)
        h.scheduler.push(KX, T + timedelta(days=1))
        assert await h.until(3) == [K1, K1, KX]  # same time: the earlier push first


async def test_a_failing_on_due_is_retried_30_seconds_later_and_does_not_stop_the_loop():
    h = Harness(fail_once={K1})
    h.scheduler.push(K1, T)
    h.scheduler.push(K2, T + timedelta(seconds=1))
    h.clock.now = T + timedelta(seconds=1)
    async with h:
        assert await h.until(2) == [K1, K2]
        assert await h.settle() == [K1, K2]
        h.clock.now = T + timedelta(seconds=31)
        h.scheduler.push(KX, T)
        assert await h.until(4) == [K1, K2, KX, K1]


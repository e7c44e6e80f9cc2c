"""PodReaper: each pod's DELETE is issued once, when it falls due, and stays in flight until the informer sees the
pod gone (issue 13's deletion storm: a DELETE per pod past retention on every pass)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from kubedag.k8s.retention import PodReaper

pytestmark = pytest.mark.asyncio

T = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


class Api:
    """Counts DELETE requests; ``fail`` answers the next ones with an error."""

    def __init__(self) -> None:
        self.deletes: list[tuple[str, str]] = []
        self.fail = 0

    async def delete(self, namespace: str, name: str) -> bool:
        self.deletes.append((namespace, name))
        if self.fail:
            self.fail -= 1
            raise RuntimeError("503 Service Unavailable")
        return True


class Clock:
    def __init__(self) -> None:
        self.now = T

    def __call__(self) -> datetime:
        return self.now


async def settle(reaper: PodReaper, task: asyncio.Task) -> None:
    """Let the reaper's loop and its deletes run."""
    for _ in range(20):
        await asyncio.sleep(0.005)


async def test_a_pod_scheduled_on_every_pass_is_deleted_once():
    api, clock = Api(), Clock()
    reaper = PodReaper(api.delete, clock)
    task = asyncio.create_task(reaper.run())
    for _ in range(50):  # one schedule per pass, as many passes as events
        reaper.schedule("ns", "p1", T)
        reaper.schedule("ns", "p2", T + timedelta(minutes=10))
        await asyncio.sleep(0)
    await settle(reaper, task)
    assert api.deletes == [("ns", "p1")]  # p2 is not due yet
    reaper.schedule("ns", "p1", T)  # in flight until the informer reports it gone
    await settle(reaper, task)
    assert api.deletes == [("ns", "p1")]
    reaper.gone("ns", "p1")
    clock.now = T + timedelta(minutes=10)
    reaper.schedule("ns", "p3", T + timedelta(days=1))  # a new entry wakes the loop, which reads the clock
    await settle(reaper, task)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert api.deletes == [("ns", "p1"), ("ns", "p2")]
    assert reaper.issued == 2


async def test_an_earlier_time_replaces_a_later_one_and_a_pod_gone_meanwhile_is_not_deleted():
    api, clock = Api(), Clock()
    reaper = PodReaper(api.delete, clock)
    reaper.schedule("ns", "later", T + timedelta(hours=1))
    reaper.schedule("ns", "later", T)  # a stopped try: now
    reaper.schedule("ns", "vanished", T)
    reaper.gone("ns", "vanished")  # its run was deleted: the pod went with it
    task = asyncio.create_task(reaper.run())
    await settle(reaper, task)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert api.deletes == [("ns", "later")]


async def test_a_failed_delete_is_retried_with_backoff():
    api, clock = Api(), Clock()
    api.fail = 1
    reaper = PodReaper(api.delete, clock)
    task = asyncio.create_task(reaper.run())
    reaper.schedule("ns", "p", T)
    await settle(reaper, task)
    assert api.deletes == [("ns", "p")] and reaper.pending() == 1
    clock.now = T + timedelta(seconds=2)  # past the first retry's delay (1 s)
    reaper.schedule("ns", "other", T + timedelta(days=1))  # wakes the loop
    await settle(reaper, task)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert api.deletes == [("ns", "p"), ("ns", "p")]

"""WorkQueue: each key processed by one worker at a time, never queued twice, re-queued if marked meanwhile;
per-key backoff on failure (client-go's rate-limited queue); background tasks whose failures are logged once."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from kubedag.app.reconcile import Result
from kubedag.k8s.workqueue import Background, WorkQueue, run_worker

A = ("team-a", "run-1")
B = ("team-a", "run-2")

pytestmark = pytest.mark.asyncio


async def nothing_within(q: WorkQueue, seconds: float = 0.05) -> bool:
    try:
        key = await asyncio.wait_for(q.get(), seconds)
    except asyncio.TimeoutError:
        return True
    q.done(key)
    raise AssertionError(f"unexpected key {key}")


async def test_a_key_added_twice_while_waiting_is_processed_once():
    q = WorkQueue()
    q.add(A)
    q.add(A)
    q.add(B)
    q.add(A)
    assert await q.get() == A
    q.done(A)
    assert await q.get() == B
    q.done(B)
    assert await nothing_within(q)


async def test_a_key_being_processed_is_not_handed_to_a_second_worker():
    q = WorkQueue()
    q.add(A)
    key = await q.get()
    q.add(A)  # an event while the worker processes A
    q.add(A)
    assert await nothing_within(q)  # a second worker does not get A now
    q.done(key)
    assert await asyncio.wait_for(q.get(), 0.5) == A  # processed again after done()
    q.done(A)
    assert await nothing_within(q)  # once only


async def test_a_key_of_the_lower_lane_waits_behind_every_other_and_while_the_lane_is_held():
    C = ("team-a", "run-3")
    q = WorkQueue()
    q.hold_later()
    q.add(A, later=True)  # a finished run listed at a start
    q.add(B)
    assert await q.get() == B
    q.done(B)
    assert await nothing_within(q)  # held: the caches are not synced yet
    q.add(C)
    q.release_later()
    assert await q.get() == C  # the other lane first, even once released
    q.done(C)
    assert await asyncio.wait_for(q.get(), 0.5) == A
    q.done(A)
    assert await nothing_within(q)


async def test_a_key_of_the_lower_lane_added_again_without_later_moves_to_the_first():
    q = WorkQueue()
    q.hold_later()
    q.add(A, later=True)
    q.add(A, later=True)  # still once, still later
    assert await nothing_within(q)
    q.add(A)  # its run became active: wanted now
    assert await asyncio.wait_for(q.get(), 0.5) == A
    q.add(A, later=True)  # marked while processed: handed out again only once released
    q.done(A)
    assert await nothing_within(q)
    q.release_later()
    assert await asyncio.wait_for(q.get(), 0.5) == A
    q.done(A)
    assert await nothing_within(q)


async def test_done_without_a_new_mark_does_not_requeue():
    q = WorkQueue()
    q.add(A)
    q.done(await q.get())
    assert await nothing_within(q)


async def test_two_workers_never_hold_the_same_key():
    q = WorkQueue()
    holding: set = set()
    processed: list = []

    async def worker():
        while True:
            key = await q.get()
            assert key not in holding
            holding.add(key)
            await asyncio.sleep(0.005)
            processed.append(key)
            holding.discard(key)
            q.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(3)]
    for _ in range(5):
        q.add(A)
        q.add(B)
        await asyncio.sleep(0.002)
    await asyncio.sleep(0.1)
    for w in workers:
        w.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    assert set(processed) == {A, B}
    assert len(processed) <= 10


async def test_add_after_fires_later():
    q = WorkQueue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_after(A, 0.1)
    assert await nothing_within(q, 0.03)
    assert await asyncio.wait_for(q.get(), 1.0) == A
    assert loop.time() - start >= 0.09
    q.done(A)
    q.close()


async def test_add_after_zero_or_negative_is_now():
    q = WorkQueue()
    q.add_after(A, 0)
    q.add_after(B, -3)
    assert {await asyncio.wait_for(q.get(), 0.1), await asyncio.wait_for(q.get(), 0.1)} == {A, B}


@pytest.mark.parametrize("delays", [(0.03, 0.3), (0.3, 0.03)])
async def test_add_after_keeps_the_earliest_timer(delays):
    q = WorkQueue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    for d in delays:
        q.add_after(A, d)
    assert await asyncio.wait_for(q.get(), 0.25) == A  # the 0.03 s timer, whichever came first
    assert loop.time() - start < 0.25
    q.done(A)
    if delays[0] == 0.3:
        # the later timer was replaced: it never fires
        assert await nothing_within(q, 0.4)
    q.close()


async def test_a_timer_firing_for_a_waiting_key_does_not_queue_it_twice():
    q = WorkQueue()
    q.add_after(A, 0.02)
    q.add(A)
    await asyncio.sleep(0.05)  # the timer fires while A waits
    assert await q.get() == A
    q.done(A)
    assert await nothing_within(q)


async def test_drop_drops_the_timer():
    q = WorkQueue()
    q.add_after(A, 0.03)
    q.drop(A)
    assert await nothing_within(q, 0.1)


async def test_close_cancels_every_timer():
    q = WorkQueue()
    q.add_after(A, 0.03)
    q.add_after(B, 0.03)
    q.close()
    assert await nothing_within(q, 0.1)


async def test_a_failing_key_backs_off_exponentially_up_to_the_maximum_and_forget_resets_it():
    q = WorkQueue(base_delay=0.01, max_delay=0.04)
    assert [q.add_rate_limited(A) for _ in range(5)] == [0.01, 0.02, 0.04, 0.04, 0.04]
    q.forget(A)
    assert q.backoff(A) == 0.01
    assert await asyncio.wait_for(q.get(), 0.5) == A  # the timers fire: one key, handed out once
    q.done(A)
    q.close()


async def test_a_worker_retries_a_failing_reconcile_with_backoff_and_honours_requeue_after():
    q = WorkQueue(base_delay=0.01, max_delay=0.02)
    calls: list = []

    async def reconcile(key):
        calls.append(key)
        if len(calls) <= 2:
            raise RuntimeError("the API server is down")
        if len(calls) == 3:
            return Result(requeue_after=0.01)
        return None

    worker = asyncio.create_task(run_worker(q, reconcile, "test"))
    q.add(A)
    for _ in range(100):
        if len(calls) >= 4:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    worker.cancel()
    await asyncio.gather(worker, return_exceptions=True)
    q.close()
    assert calls == [A, A, A, A]  # two failures retried, one requeue_after, then nothing more
    assert q.backoff(A) == 0.01  # the success forgot the backoff


async def test_a_failing_background_task_is_logged_once_and_never_left_unretrieved(caplog):
    loop = asyncio.get_running_loop()
    unhandled: list = []
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    background = Background()

    async def boom():
        raise RuntimeError("404 pod gone")

    with caplog.at_level(logging.WARNING, logger="kubedag.controller"):
        background.spawn(boom(), "deleting pod p")
        for _ in range(5):
            await asyncio.sleep(0)
    gc.collect()
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert [r.getMessage() for r in caplog.records] == ["deleting pod p failed: 404 pod gone"]
    assert unhandled == []
    assert not background.tasks

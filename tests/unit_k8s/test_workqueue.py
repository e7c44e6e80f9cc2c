"""WorkQueue: each key processed by one worker at a time, never queued twice, re-queued if marked meanwhile."""

from __future__ import annotations

import asyncio

import pytest

from kubedag.k8s.workqueue import WorkQueue

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

"""client-go's rate-limited work queue, on asyncio, and the workers that drain it.

* :meth:`WorkQueue.add` marks a key dirty; a key already waiting is not queued twice; a key being processed
  (between :meth:`~WorkQueue.get` and :meth:`~WorkQueue.done`) is handed out again only after ``done``: one
  worker at a time per key.
* ``add(key, later=True)`` queues it in a second, lower lane: a worker takes a key of that lane only when no other
  key waits, and not while the lane is held (:meth:`~WorkQueue.hold_later` until :meth:`~WorkQueue.release_later`;
  issue 13, "Bounded recovery": after a start the passes of finished runs wait behind every active run's first
  pass, and for the informer caches to hold their kept pods). An ``add`` without ``later`` of a key waiting in that
  lane moves it to the first.
* :meth:`WorkQueue.add_after` marks it after a delay (only the earliest timer per key is kept).
* :meth:`WorkQueue.add_rate_limited` marks it after its per-key exponential backoff (client-go's
  ``ItemExponentialFailureRateLimiter``: :data:`BASE_DELAY` doubled per consecutive failure, at most
  :data:`MAX_DELAY`); :meth:`WorkQueue.forget` resets the backoff after a success.

:func:`run_worker` is a worker: it calls a reconcile per key; a :class:`kubedag.app.reconcile.Result`'s
``requeue_after`` re-adds the key after that many seconds, an exception re-adds it with backoff (logged), a
success forgets its backoff.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kubedag.app import metrics
from kubedag.app.reconcile import Result
from kubedag.k8s.recovery import expected_failure

log = logging.getLogger("kubedag.controller")

Key = tuple[str, str]
"""``(namespace, name)`` of an object."""

BASE_DELAY = 0.5
"""Seconds before the first retry of a key whose reconcile failed."""
MAX_DELAY = 60.0
"""The longest backoff of a failing key, seconds (client-go's controllers use 1,000 s; runs need to move on)."""
MAX_REQUEUE = 3600.0
"""The longest ``requeue_after`` honoured, seconds (a longer one is cut to this: the key is looked at hourly)."""


class WorkQueue:
    """A set of dirty keys processed by workers, each key by one worker at a time (see the module docstring).
    ``name`` labels its metrics (``kubedag_workqueue_*``: depth, adds, time waited, retries)."""

    def __init__(self, base_delay: float = BASE_DELAY, max_delay: float = MAX_DELAY, *, name: str = "") -> None:
        self._changed = asyncio.Event()
        """Set when a key is put in a lane or the lower lane is released (waiting workers look again)."""
        self._later_held = False
        self._first: collections.deque[Key] = collections.deque()
        self._later: collections.deque[Key] = collections.deque()
        self._later_keys: set[Key] = set()
        """Dirty keys of the lower lane (waiting in it, or to be put back in it by :meth:`done`)."""
        self._queued_at: dict[Key, float] = {}
        self.name = name
        metrics.WORKQUEUE_DEPTH.labels(name).set_function(lambda: len(self._first) + len(self._later))
        self._dirty: set[Key] = set()
        self._processing: set[Key] = set()
        self._timers: dict[Key, tuple[float, asyncio.TimerHandle]] = {}
        self._failures: dict[Key, int] = {}
        self.base_delay, self.max_delay = base_delay, max_delay

    def add(self, key: Key, later: bool = False) -> None:
        """Mark ``key`` for processing; ``later``: in the lower lane (see the module docstring)."""
        if key in self._dirty:
            if not later and key in self._later_keys:  # wanted now: it leaves the lower lane
                self._later_keys.discard(key)
                if key in self._later:
                    self._later.remove(key)
                    self._first.append(key)
            return
        self._dirty.add(key)
        if later:
            self._later_keys.add(key)
        metrics.WORKQUEUE_ADDS.labels(self.name).inc()
        if key not in self._processing:
            self._put(key)

    def _put(self, key: Key) -> None:
        self._queued_at.setdefault(key, time.monotonic())
        (self._later if key in self._later_keys else self._first).append(key)
        self._changed.set()

    def hold_later(self) -> None:
        """Hand out no key of the lower lane until :meth:`release_later`."""
        self._later_held = True

    def release_later(self) -> None:
        """Hand out keys of the lower lane again (when no key of the first waits)."""
        self._later_held = False
        self._changed.set()

    def add_after(self, key: Key, delay: float) -> None:
        """Mark ``key`` for processing in ``delay`` seconds (now if ``delay <= 0``)."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + min(delay, MAX_REQUEUE)
        current = self._timers.get(key)
        if current is not None and current[0] <= when and not current[1].cancelled():
            return
        if current is not None:
            current[1].cancel()

        def fire() -> None:
            self._timers.pop(key, None)
            self.add(key)

        self._timers[key] = (when, loop.call_at(when, fire))

    def backoff(self, key: Key) -> float:
        """The delay :meth:`add_rate_limited` would use now for ``key``, seconds."""
        return min(self.max_delay, self.base_delay * 2 ** self._failures.get(key, 0))

    def add_rate_limited(self, key: Key) -> float:
        """Mark ``key`` after its backoff, which then doubles (up to :data:`MAX_DELAY`); returns the delay."""
        delay = self.backoff(key)
        metrics.WORKQUEUE_RETRIES.labels(self.name).inc()
        self._failures[key] = self._failures.get(key, 0) + 1
        self.add_after(key, delay)
        return delay

    async def get(self) -> Key:
        """The next key to process (the caller must call :meth:`done`)."""
        while not (self._first or (self._later and not self._later_held)):
            self._changed.clear()  # no await since the look: no put can be missed
            await self._changed.wait()
        key = self._first.popleft() if self._first else self._later.popleft()
        self._later_keys.discard(key)
        queued_at = self._queued_at.pop(key, None)
        if queued_at is not None:
            metrics.WORKQUEUE_LATENCY.labels(self.name).observe(time.monotonic() - queued_at)
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: Key) -> None:
        """Processing of ``key`` ended; re-queue it if it was marked meanwhile."""
        self._processing.discard(key)
        if key in self._dirty:
            self._put(key)

    def forget(self, key: Key) -> None:
        """Reset ``key``'s backoff (after a success, or when its object is gone)."""
        self._failures.pop(key, None)

    def drop(self, key: Key) -> None:
        """The object is gone: drop its timer and backoff."""
        self.forget(key)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer[1].cancel()

    def close(self) -> None:
        """Cancel every timer."""
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()


async def run_worker(queue: WorkQueue, reconcile: Callable[[Key], Awaitable[Result | None]], what: str,
                     while_: Callable[[], bool] | None = None) -> None:
    """Process keys of ``queue`` with ``reconcile`` (see the module docstring): forever, or while ``while_()``
    holds when it is asked, before each key (then the worker ends); ``what`` names the kind of object in logs and
    the ``resource`` label of ``kubedag_reconcile_*`` (count by result, errors, duration)."""
    while while_ is None or while_():
        key = await queue.get()
        start = time.perf_counter()
        try:
            result = await reconcile(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad object never stops the controller
            metrics.RECONCILE_ERRORS.labels(what).inc()
            metrics.RECONCILE_TOTAL.labels(what, "error").inc()
            delay = queue.backoff(key)
            if (expected := expected_failure(exc)) is not None:  # a transient failure: one line, no traceback
                log.warning("reconciling %s %s/%s failed: %s; retrying in %.1fs", what, *key, expected, delay)
            elif delay >= queue.max_delay:  # a persistent failure: one line, not a traceback per retry
                log.error("reconciling %s %s/%s failed again (%s); retrying in %.0fs", what, *key, exc, delay)
            else:
                log.exception("reconciling %s %s/%s failed; retrying in %.1fs", what, *key, delay)
            queue.add_rate_limited(key)
        else:
            queue.forget(key)
            requeue = result is not None and result.requeue_after is not None
            metrics.RECONCILE_TOTAL.labels(what, "requeue_after" if requeue else "success").inc()
            if result is not None and result.requeue_after is not None:
                queue.add_after(key, result.requeue_after)
        finally:
            metrics.RECONCILE_DURATION.labels(what).observe(time.perf_counter() - start)
            queue.done(key)


class Background:
    """Tasks started in the background (events, log reads, pod deletions): each is kept until it ends and its
    exception, if any, is logged once (no "Task exception was never retrieved"); :meth:`close` cancels and awaits
    them all."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[Any], what: str) -> asyncio.Task[Any]:
        """Run ``coro`` in the background; ``what`` names it in the log line of its failure."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)

        def ended(t: asyncio.Task[Any]) -> None:
            self.tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.warning("%s failed: %s", what, t.exception())

        task.add_done_callback(ended)
        return task

    async def close(self) -> None:
        """Cancel every task and wait for them."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.tasks.clear()


__all__ = ["BASE_DELAY", "Background", "Key", "MAX_DELAY", "MAX_REQUEUE", "WorkQueue", "run_worker"]

"""Pod deletions, each issued once: a time-ordered queue of pods to delete, and the deletes in flight.

A finished try's pod is kept ``pod_retention`` after it ended (its log is archived first), then deleted; a
rescheduled sensor's earlier pokes and stopped tries are deleted at once. Issue 13's deletion storm came from
asking, on every pass, for every pod past retention: here a pod is :meth:`PodReaper.schedule`-d once (a pod
already scheduled or being deleted is ignored), one loop waits for the earliest due time (a heap, no scan),
and a DELETE that the API server accepted stays *in flight* until the pod informer reports the pod gone
(:meth:`PodReaper.gone`), so it is never sent twice. A DELETE that fails (not 404) is retried with backoff. At
most :data:`CONCURRENCY` deletes run at once.

The queue is compact (issue 13: flat memory with 10,000 finished pods kept): a pod handed to it is no longer held in
the pod cache (:meth:`kubedag.k8s.runs.RunReconciler.retain`), so the queue is all the controller keeps of a kept
pod: a ``(due, (namespace, name))`` heap entry and its due time by key, the time as POSIX seconds (a float),
the namespace interned.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

log = logging.getLogger("kubedag.controller")

CONCURRENCY = 8
"""Pod DELETE requests in flight at once."""
RETRY_MAX = 60.0
"""The longest wait before retrying a failed DELETE, seconds."""

PodKey = tuple[str, str]
"""``(namespace, pod name)``."""


class PodReaper:
    """The pod deletion queue (see the module docstring). ``delete(namespace, name)`` issues one DELETE and
    returns False when the pod was already gone; ``clock()`` is now, UTC-aware."""

    def __init__(self, delete: Callable[[str, str], Any], clock: Callable[[], datetime]) -> None:
        self._delete = delete
        self._clock = clock
        self._heap: list[tuple[float, PodKey]] = []
        self._due: dict[PodKey, float] = {}
        self.in_flight: set[PodKey] = set()
        self._failures: dict[PodKey, int] = {}
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self.issued = 0
        """DELETE requests sent so far."""

    def schedule(self, namespace: str, name: str, at: datetime | None = None) -> None:
        """Delete pod ``name`` at ``at`` (None: now). Ignored when it is being deleted or already due at or before
        ``at``; an earlier time replaces a later one."""
        key = (sys.intern(namespace), name)
        due = (at or self._clock()).timestamp()
        if key in self.in_flight or (key in self._due and self._due[key] <= due):
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, key))
        self._wake.set()

    def holds(self, namespace: str, name: str) -> bool:
        """Whether pod ``name`` is scheduled for deletion or being deleted."""
        key = (namespace, name)
        return key in self._due or key in self.in_flight

    def gone(self, namespace: str, name: str) -> None:
        """The informer saw the pod deleted: nothing more to do for it."""
        key = (namespace, name)
        self.in_flight.discard(key)
        self._due.pop(key, None)
        self._failures.pop(key, None)

    def pending(self) -> int:
        """Pods scheduled and not yet deleted (due later, or in flight)."""
        return len(self._due) + len(self.in_flight)

    async def run(self) -> None:
        """Delete pods as they fall due, forever."""
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                now = self._clock().timestamp()
                while self._heap and self._heap[0][0] <= now:
                    at, key = heapq.heappop(self._heap)
                    if self._due.get(key) != at:
                        continue  # superseded, or gone
                    del self._due[key]
                    self.in_flight.add(key)
                    await self._slots.acquire()
                    task = asyncio.create_task(self._issue(key))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                timeout = 3600.0 if not self._heap else max(0.0, self._heap[0][0] - self._clock().timestamp())
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=min(timeout, 3600.0))
                except asyncio.TimeoutError:
                    pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _issue(self, key: PodKey) -> None:
        try:
            self.issued += 1
            existed = await self._delete(*key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - retried with backoff
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            delay = min(RETRY_MAX, 0.5 * 2 ** failures)
            log.warning("deleting pod %s/%s failed (%s); retrying in %.1fs", *key, exc, delay)
            self.in_flight.discard(key)
            self.schedule(*key, self._clock() + timedelta(seconds=delay))
        else:
            if not existed:
                self.gone(*key)
        finally:
            self._slots.release()


__all__ = ["CONCURRENCY", "PodReaper"]

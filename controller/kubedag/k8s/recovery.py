"""The controller's recovery bounds: API and watch failures are retried forever with a capped backoff, and a
SIGTERM stops the process within a fixed grace period.

kopf retries a failing API request (its watches and lists included) along ``settings.networking.error_backoffs``
and gives up once the list is exhausted: its default ``(1, 1, 2, 3, 5, 8, 13, 21)`` s is 54 s, after which
the operator exited with rc 1 (issue 13: "after about 57 s of failing watches"). :class:`CappedBackoff` is an
endless sequence instead (re-iterable: kopf starts it afresh for each request), so watches resume whenever the
API server is back. kopf's ``process.ultimate_exiting_timeout`` (10 minutes by default) becomes
:data:`SHUTDOWN_GRACE`: after SIGTERM/SIGINT the process ends within it whatever it is doing.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Iterator
from typing import Any

WATCH_BACKOFF_BASE = 1.0
"""Seconds before the first retry of a failed API request or watch of kopf's."""
WATCH_BACKOFF_MAX = 30.0
"""The longest wait between two retries of a failing watch, seconds (reached after 5 failures in a row)."""
SHUTDOWN_GRACE = 10.0
"""Seconds from SIGTERM (or SIGINT) to the end of the process at most: the graceful stop (reconciles cancelled,
Lease released, sessions closed) normally takes well under a second; at this bound kopf SIGKILLs its own
process. The chart's ``terminationGracePeriodSeconds`` (30) leaves it room."""


class CappedBackoff:
    """An endless, re-iterable backoff sequence: ``base``, doubling, capped at ``cap`` seconds, each value times a
    random factor in [0.8, 1.2] so that replicas do not retry in step. Not ``Sized``: kopf never gives up."""

    def __init__(self, base: float = WATCH_BACKOFF_BASE, cap: float = WATCH_BACKOFF_MAX) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"backoff: need 0 < base <= cap, got base={base}, cap={cap}")
        self.base, self.cap = base, cap

    def __iter__(self) -> Iterator[float]:
        for attempt in itertools.count():
            yield min(self.cap, self.base * 2 ** min(attempt, 32)) * random.uniform(0.8, 1.2)


def apply_bounds(settings: Any) -> None:
    """Set kopf's ``OperatorSettings`` to retry every API request and watch forever (:class:`CappedBackoff`) and,
    when the operator runs in the main thread (``kubedag controller``; kopf handles signals only there), to end
    the process at most :data:`SHUTDOWN_GRACE` seconds after a termination signal. kopf's last resort SIGKILLs
    the process, so an operator embedded in a thread (tests, benchmarks) keeps kopf's default."""
    settings.networking.error_backoffs = CappedBackoff()
    if threading.current_thread() is threading.main_thread():
        settings.process.ultimate_exiting_timeout = SHUTDOWN_GRACE


__all__ = ["CappedBackoff", "SHUTDOWN_GRACE", "WATCH_BACKOFF_BASE", "WATCH_BACKOFF_MAX", "apply_bounds"]

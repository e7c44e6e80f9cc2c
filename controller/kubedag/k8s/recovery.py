"""The controller's recovery bounds: API and watch failures are retried forever with a capped backoff, and a
SIGTERM stops the process within a fixed grace period.

kopf retries a failing API request (its watches and lists included) along ``settings.networking.error_backoffs``
and gives up once the list is exhausted: its default ``(1, 1, 2, 3, 5, 8, 13, 21)`` s is 54 s, after which
the operator exited with rc 1 (issue 13: "after about 57 s of failing watches"). :class:`CappedBackoff` is an
endless sequence instead (re-iterable: kopf starts it afresh for each request), so watches resume whenever the
API server is back. kopf's ``process.ultimate_exiting_timeout`` (10 minutes by default) becomes
:data:`SHUTDOWN_GRACE`: after SIGTERM/SIGINT the process ends within it whatever it is doing.

Expected failures are logged as one line, not a traceback (issue 13): :func:`expected_failure` names them (an
API server answering 409, 429 or 5xx, a full client queue, a timeout, an unreachable server, the metadata DB
down); whoever retries logs that line with its delay. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import asyncio
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


EXPECTED_STATUSES = frozenset({409, 429})
"""HTTP codes of the API server (besides 5xx) that say "try again later", not "this request is wrong"."""
_DB_ERRORS = frozenset({"OperationalError", "InterfaceError", "DisconnectionError", "PendingRollbackError",
                        "TimeoutError"})
"""SQLAlchemy's exception classes of a metadata DB that is down, restarting, locked or out of connections."""


def _one_line(text: object, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def expected_failure(exc: BaseException) -> str | None:
    """A one-line description of ``exc`` when it is an expected, transient failure: the Kubernetes API answering
    409, 429 or 5xx (``"the Kubernetes API answered 503 ServiceUnavailable to patch <path>: <message>"``), a full
    client queue (:class:`kubedag.k8s.client.Saturated`, a 429), a request timing out, the API server unreachable,
    this replica no longer leading, or the metadata DB unavailable (SQLAlchemy's operational errors: only the
    driver's first line, never the statement or its parameters). None for anything else: a bug, to be logged with
    its traceback."""
    import aiohttp  # the controller's HTTP client: loaded already wherever this is called

    from kubedag.k8s.client import ApiError, NotLeader

    if isinstance(exc, ApiError):
        if exc.status in EXPECTED_STATUSES or exc.status >= 500:
            request = f" to {exc.verb} {exc.path}" if exc.verb and exc.path else ""
            return f"the Kubernetes API answered {exc.status} {exc.reason}{request}: {_one_line(exc.message)}"
        return None
    if isinstance(exc, NotLeader):
        return _one_line(exc)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) and not type(exc).__module__.startswith("sqlalchemy"):
        return "a request timed out"
    if isinstance(exc, (aiohttp.ClientError, ConnectionError)):
        return f"cannot reach the Kubernetes API server: {type(exc).__name__}: {_one_line(exc, 200)}"
    if type(exc).__module__.startswith("sqlalchemy") and type(exc).__name__ in _DB_ERRORS:
        cause = getattr(exc, "orig", None) or exc.__cause__ or type(exc).__name__
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        return f"the metadata DB is unavailable: {_one_line(first, 200)}"
    return None


def apply_bounds(settings: Any) -> None:
    """Set kopf's ``OperatorSettings`` to retry every API request and watch forever (:class:`CappedBackoff`) and,
    when the operator runs in the main thread (``kubedag controller``; kopf handles signals only there), to end
    the process at most :data:`SHUTDOWN_GRACE` seconds after a termination signal. kopf's last resort SIGKILLs
    the process, so an operator embedded in a thread (tests, benchmarks) keeps kopf's default."""
    settings.networking.error_backoffs = CappedBackoff()
    if threading.current_thread() is threading.main_thread():
        settings.process.ultimate_exiting_timeout = SHUTDOWN_GRACE


__all__ = ["CappedBackoff", "EXPECTED_STATUSES", "SHUTDOWN_GRACE", "WATCH_BACKOFF_BASE", "WATCH_BACKOFF_MAX",
           "apply_bounds", "expected_failure"]

"""Writes to the metadata DB that have not landed yet, and the backoff between retries (issue 13: the local
scheduler follows the controller's rules -- every pass is written by idempotent upserts, retried until it lands,
and a pass never gives up its changes because one write failed).

:class:`PendingWrites` is one run's queue of passes (:meth:`kubedag.local.runner.Recorder.save` calls) in the order
they were made: a pass is written only after every earlier one landed, each in its own transaction (the store's
upserts make writing one twice harmless, e.g. after a commit whose answer was lost). With ``keep=False``
(``kubedag dags test``) a failed write is not kept and its error propagates, as before.

:class:`DbBackoff` spaces the scheduler's retries while the DB fails: :data:`DB_RETRY_FIRST` seconds after the first
failure, doubling up to :data:`DB_RETRY_MAX` (the controller's API backoff, ``k8s/recovery.py``, has the same cap).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

DB_RETRY_FIRST = 0.5
"""Seconds from the first failed DB call of the local scheduler to its first retry."""
DB_RETRY_MAX = 30.0
"""The local scheduler's longest wait between two retries of a failing metadata DB, seconds (documented in the
README's Reliability section)."""


def one_line(exc: BaseException) -> str:
    """``<error class>: <first line of its message>`` (at most 200 characters of it): what a log line says of a
    failed DB call. SQLAlchemy's wrapped driver error is named by its own class; drivers name host and port, never
    the password."""
    inner = getattr(exc, "orig", None) or exc
    lines = str(inner).strip().splitlines()
    return f"{type(inner).__name__}: {lines[0][:200] if lines else ''}".rstrip(": ")


DB_MODULES = ("sqlalchemy", "psycopg", "sqlite3", "kubedag.store")
"""Modules whose exceptions are the metadata DB's (a driver's, SQLAlchemy's, the store's own)."""


def is_db_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from the metadata DB (its class is defined in one of :data:`DB_MODULES`): a log line
    then names the DB, else the scheduler loop itself (a bug, retried as well)."""
    module = type(exc).__module__ or ""
    return any(module == m or module.startswith(m + ".") for m in DB_MODULES)


class PendingWrites:
    """A run's passes not written yet (see the module docstring). ``recorder``: the
    :class:`~kubedag.local.runner.Recorder` they go to; ``keep``: keep a write that failed (the scheduler) or
    drop it and re-raise (``kubedag dags test``). :attr:`error` is the last failure (:func:`one_line`), None once
    the queue is empty."""

    def __init__(self, recorder: Any, keep: bool) -> None:
        self.recorder = recorder
        self.keep = keep
        self.error: str | None = None
        self._queue: deque[tuple[tuple[Any, ...], dict[str, Any], Callable[[], None] | None]] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def save(self, *args: Any, then: Callable[[], None] | None = None, **kwargs: Any) -> bool:
        """Queue one ``recorder.save(*args, **kwargs)`` behind the pending ones and write them all (:meth:`flush`);
        ``then()`` runs once this write landed (its notifications). Returns whether everything landed.

        Raises:
            Exception: whatever the recorder raised, when ``keep`` is False.
        """
        self._queue.append((args, kwargs, then))
        return self.flush()

    def flush(self) -> bool:
        """Write the pending passes in order, stopping at the first that fails (it stays first in the queue).
        Returns whether none is left.

        Raises:
            Exception: whatever the recorder raised, when ``keep`` is False (the queue is emptied).
        """
        while self._queue:
            args, kwargs, then = self._queue[0]
            try:
                self.recorder.save(*args, **kwargs)
            except Exception as exc:
                if not self.keep:
                    self._queue.clear()
                    raise
                self.error = one_line(exc)
                return False
            self._queue.popleft()
            if then is not None:
                then()
        self.error = None
        return True


class DbBackoff:
    """When the local scheduler next calls a failing DB (monotonic seconds): :meth:`failed` after a failure,
    :meth:`landed` once a call succeeded. ``first``/``cap``: the first delay and the largest (seconds)."""

    def __init__(self, first: float = DB_RETRY_FIRST, cap: float = DB_RETRY_MAX) -> None:
        self.first, self.cap = first, cap
        self.failures = 0
        self.retry_at: float | None = None
        self.error: str | None = None

    def failed(self, error: str, now: float) -> float:
        """Record a failure (``error``: one line) at ``now``; returns the delay until the next try, seconds."""
        delay = min(self.cap, self.first * 2 ** self.failures)
        self.failures += 1
        self.error, self.retry_at = error, now + delay
        return delay

    def landed(self) -> int:
        """A DB call succeeded: back to normal. Returns how many failures came before it."""
        failures, self.failures, self.retry_at, self.error = self.failures, 0, None, None
        return failures

    def waiting(self, now: float) -> bool:
        """Whether the scheduler is backing off at ``now`` (a retry is not due yet)."""
        return self.retry_at is not None and now < self.retry_at


__all__ = ["DB_MODULES", "DB_RETRY_FIRST", "DB_RETRY_MAX", "DbBackoff", "PendingWrites", "is_db_error", "one_line"]

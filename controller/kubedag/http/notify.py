"""The webhook sender: delivers notifications (:mod:`kubedag.core.notify`) to Slack and JSON webhooks from
background threads with retries, never raising into or blocking its caller.

What to send and the bodies are the core's (:func:`kubedag.core.notify.payload`,
:func:`kubedag.core.notify.slack_payload`); the caller supplies how a notifier becomes a URL and headers (a
:data:`kubedag.core.notify.Resolver`). An entry point gives :class:`WebhookSender` to the executor that needs
one (the local runner's ``make_sender``, the controller's), so no other adapter imports this one.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from kubedag import __version__
from kubedag.app import metrics
from kubedag.core.notify import Notification, Resolver, notifier_kind, payload, redact_url, slack_payload
from kubedag.core.spec.models import Notifier

__all__ = ["MAX_RETRY_AFTER", "RETRY_STATUSES", "Delivery", "WebhookSender"]

log = logging.getLogger("kubedag.notify")


@dataclass(frozen=True)
class Delivery:
    """The outcome of one notification to one notifier, kept in :attr:`WebhookSender.deliveries`.

    ``kind``: ``"slack"``/``"webhook"``. ``target``: the URL redacted by :func:`~kubedag.core.notify.redact_url` (None when it could
    not be resolved). ``attempts``: HTTP requests made (0 when it was never sent). ``status``: the last HTTP
    status, None without one. ``error``: why it failed, None when ``ok``. ``finished_at``: UTC.
    """

    notification: Notification
    kind: str
    target: str | None
    ok: bool
    attempts: int
    status: int | None
    error: str | None
    finished_at: datetime


@dataclass(eq=False)
class _Job:
    notifier: Notifier
    notification: Notification
    kind: str
    body: bytes
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    attempts: int = 0
    status: int | None = None
    error: str | None = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would turn a redirected POST into a GET without body; treat a 3xx as a failed delivery instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        return None


class _Retryable(Exception):
    """An attempt failed in a way worth retrying; ``retry_after`` (seconds) when the server asked for it."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class _Permanent(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


MAX_RETRY_AFTER = 60.0
"""Seconds; a ``Retry-After`` longer than this is cut to it."""
RETRY_STATUSES = frozenset({408, 429})
"""HTTP statuses retried besides every 5xx."""


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER) if value else None
    except ValueError:  # an HTTP date: not worth parsing for a notification
        return None


class WebhookSender:
    """Delivers notifications in the background: POSTs JSON with ``urllib`` from daemon worker threads.

    ``resolve_url(notifier) -> (url, headers)`` is called on a worker thread (it may read a Secret); if it
    raises, the delivery is logged as failed and not retried. Only ``http``/``https`` URLs are accepted;
    redirects are not followed. An attempt that fails with a connection error, a timeout (``timeout`` seconds
    per connect or read), a 5xx, 408 or 429 is retried up to ``retries`` times after ``backoff * 2 ** (n - 1)``
    seconds (n = 1 for the first retry; a ``Retry-After`` up to 60 s is honoured when longer); another status
    fails at once. A failed delivery is logged as a warning with the URL redacted (Slack's URL is a secret);
    nothing is ever raised into the caller. ``mask`` is applied to every notification's ``reason`` and
    ``log_tail`` before it is serialised (see :func:`kubedag.core.notify.masked`). ``workers`` deliveries run at once; retries wait
    without holding a worker. The last ``history`` outcomes are kept in :attr:`deliveries`.

    Raises:
        ValueError: for a negative ``retries``, a non-positive ``timeout`` or ``workers``, or a negative ``backoff``.
    """

    def __init__(
        self,
        resolve_url: Resolver,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 1.0,
        mask: Callable[[str], str] | None = None,
        workers: int = 4,
        history: int = 100,
    ) -> None:
        if retries < 0 or timeout <= 0 or backoff < 0 or workers < 1:
            raise ValueError("WebhookSender needs retries >= 0, timeout > 0, backoff >= 0 and workers >= 1")
        self._resolve = resolve_url
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._mask = mask
        self._workers = workers
        self._cond = threading.Condition()
        self._ready: deque[_Job] = deque()
        self._delayed: list[tuple[float, int, _Job]] = []  # (monotonic due time, seq, job), a heap
        self._seq = itertools.count()
        self._pending = 0  # accepted, not finished
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._results: deque[Delivery] = deque(maxlen=history)
        self._opener = urllib.request.build_opener(_NoRedirect())

    # -- public API ------------------------------------------------------------------------------

    def send(self, notifier: Notifier, notification: Notification) -> None:
        """Queue ``notification`` for ``notifier`` and return at once; never raises.

        A sender that is closed drops it (logged and recorded as a failed delivery).
        """
        try:
            kind = notifier_kind(notifier)
            if kind == "slack":
                assert notifier.slack is not None
                body = slack_payload(notification, notifier.slack.channel, mask=self._mask)
            else:
                body = payload(notification, mask=self._mask)
            job = _Job(notifier, notification, kind, json.dumps(body).encode())
        except Exception as exc:  # noqa: BLE001 - never raise into the scheduling loop
            log.warning("could not build the %s notification for %s: %s", notification.event, _about(notification), exc)
            return
        with self._cond:
            if self._closed:
                job.error = "sender closed"
                self._record(job, ok=False)
                log.warning("notification %s for %s dropped: the sender is closed", notification.event, _about(notification))
                return
            self._pending += 1
            self._ready.append(job)
            self._start_workers()
            self._cond.notify()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (None: no limit) until every accepted notification is delivered or
        given up. Returns True if none is pending."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        """Stop accepting notifications and give up those not sent yet or waiting for a retry (each logged and
        recorded); call :meth:`flush` first to deliver them. Returns at once; a request in flight ends in the
        background within ``timeout``. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            dropped = list(self._ready) + [job for _, _, job in self._delayed]
            self._ready.clear()
            self._delayed.clear()
            for job in dropped:
                job.error = f"sender closed ({job.error})" if job.error else "sender closed"
                self._finish(job, ok=False)
            self._cond.notify_all()

    @property
    def deliveries(self) -> list[Delivery]:
        """The most recent delivery outcomes, oldest first (bounded by ``history``)."""
        with self._cond:
            return list(self._results)

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------

    def _start_workers(self) -> None:
        """Start missing worker threads (lazily, at the first send); called with the lock held."""
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < self._workers:
            t = threading.Thread(target=self._work, name=f"kubedag-notify-{len(self._threads)}", daemon=True)
            self._threads.append(t)
            t.start()

    def _next_job(self) -> _Job | None:
        """The next job due, waiting for one; None once closed."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    self._ready.append(heapq.heappop(self._delayed)[2])
                if self._ready:
                    return self._ready.popleft()
                self._cond.wait(self._delayed[0][0] - now if self._delayed else None)

    def _work(self) -> None:
        while (job := self._next_job()) is not None:
            try:
                self._attempt(job)
            except Exception as exc:  # noqa: BLE001 - a worker must survive anything
                log.exception("unexpected error delivering a notification")
                job.error = f"internal error: {exc}"
                with self._cond:
                    self._finish(job, ok=False)

    def _attempt(self, job: _Job) -> None:
        if job.url is None:
            try:
                url, headers = self._resolve(job.notifier)
            except Exception as exc:  # noqa: BLE001 - e.g. a missing Secret: log, never raise
                job.error = f"could not resolve the {job.kind} URL: {exc}"
                self._give_up(job)
                return
            job.url, job.headers = url, dict(headers)
        job.attempts += 1
        try:
            job.status = self._post(job)
        except _Retryable as exc:
            job.status, job.error = exc.status, str(exc)
            with self._cond:
                if job.attempts <= self._retries and self._closed:
                    job.error = f"sender closed ({job.error})"
                elif job.attempts <= self._retries:
                    delay = self._backoff * 2 ** (job.attempts - 1)
                    if exc.retry_after is not None:
                        delay = max(delay, exc.retry_after)
                    heapq.heappush(self._delayed, (time.monotonic() + delay, next(self._seq), job))
                    self._cond.notify()
                    log.debug("notification to %s failed (%s); retrying in %.3gs", redact_url(job.url), exc, delay)
                    return
            self._give_up(job)
            return
        except _Permanent as exc:
            job.status, job.error = exc.status, str(exc)
            self._give_up(job)
            return
        job.error = None
        log.debug("notification %s for %s delivered to %s", job.notification.event, _about(job.notification), redact_url(job.url))
        with self._cond:
            self._finish(job, ok=True)

    def _post(self, job: _Job) -> int:
        """POST the job's body once; its HTTP status on 2xx. Raises _Retryable or _Permanent."""
        assert job.url is not None
        scheme = urllib.parse.urlsplit(job.url).scheme.lower()
        if scheme not in ("http", "https"):
            raise _Permanent(f"unsupported URL scheme {scheme!r}: only http and https")
        headers = {"Content-Type": "application/json", "User-Agent": f"kubedag/{__version__}", **job.headers}
        try:
            request = urllib.request.Request(job.url, data=job.body, headers=headers, method="POST")
            with self._opener.open(request, timeout=self._timeout) as response:
                response.read(65536)
                return response.status
        except urllib.error.HTTPError as exc:
            status, retry_after = exc.code, _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            exc.close()
            if status >= 500 or status in RETRY_STATUSES:
                raise _Retryable(f"HTTP {status}", status, retry_after) from None
            raise _Permanent(f"HTTP {status}", status) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise _Retryable(f"timed out after {self._timeout:g}s") from None
            raise _Retryable(f"connection failed: {reason}") from None
        except TimeoutError:
            raise _Retryable(f"timed out after {self._timeout:g}s") from None
        except (http.client.HTTPException, OSError) as exc:
            raise _Retryable(f"connection failed: {type(exc).__name__}: {exc}") from None
        except ValueError as exc:  # a malformed URL
            raise _Permanent(f"invalid URL: {exc}") from None

    def _give_up(self, job: _Job) -> None:
        log.warning(
            "notification %s for %s to %s %s failed after %d attempt(s): %s",
            job.notification.event,
            _about(job.notification),
            job.kind,
            redact_url(job.url) if job.url else "(unresolved)",
            job.attempts,
            job.error,
        )
        with self._cond:
            self._finish(job, ok=False)

    def _finish(self, job: _Job, *, ok: bool) -> None:
        """Record the job's outcome and count it done; called with the lock held."""
        self._record(job, ok=ok)
        self._pending -= 1
        self._cond.notify_all()

    def _record(self, job: _Job, *, ok: bool) -> None:
        metrics.NOTIFICATIONS.labels(job.kind, job.notification.event, "sent" if ok else "failed").inc()
        self._results.append(
            Delivery(
                notification=job.notification,
                kind=job.kind,
                target=redact_url(job.url) if job.url else None,
                ok=ok,
                attempts=job.attempts,
                status=job.status,
                error=None if ok else job.error,
                finished_at=datetime.now(timezone.utc),
            )
        )


def _about(n: Notification) -> str:
    """``dag/run[/task try N]`` for log messages."""
    task = f" task {n.task_id}" + (f" try {n.try_number}" if n.try_number else "") if n.task_id else ""
    return f"dag {n.dag_id} run {n.run_id}{task}"

"""Bounded concurrency and a bounded queue for every Kubernetes API client (issue 13: "every API client call has
bounded concurrency and a bounded queue").

A client sends at most ``concurrency`` requests at once; further calls wait, at most ``queue`` of them. A call
that finds ``queue`` callers already waiting is refused at once with :class:`QueueFull` (never sent, never
waits), which callers treat as the API server's own ``429 TooManyRequests``: retry later. The controller's
asynchronous client (:class:`kubedag.k8s.client.KubeClient`) uses :class:`AsyncLimiter`; the official client of
the CLI and of ``kubedag api --cluster`` (:func:`kubedag.k8s.kubeapi.connect`) uses :class:`ThreadLimiter`
through :func:`bound_api_client`, so its TokenReviews, SubjectAccessReviews, Lease reads, lists and writes share
one limit.

Both export ``kubedag_kube_api_requests_in_flight`` and ``kubedag_kube_api_requests_queued`` (gauges) and
``kubedag_kube_api_requests_rejected_total`` (counter), labelled ``client`` (``controller``, ``leader``: leader
election's own client, ``api``, ``cli``). kopf's
watches are not counted: they are long-lived streams, one per watched resource and namespace, bounded by
construction.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from kubedag.app import metrics

DEFAULT_CONCURRENCY = 16
"""Requests a client sends at once unless told otherwise (``--kube-api-concurrency``)."""
DEFAULT_QUEUE = 1000
"""Calls that may wait for a free slot unless told otherwise (``--kube-api-queue``); one more is refused."""


@dataclass(frozen=True)
class RequestLimits:
    """``concurrency``: requests in flight at most (>= 1); ``queue``: callers waiting at most (>= 0)."""

    concurrency: int = DEFAULT_CONCURRENCY
    queue: int = DEFAULT_QUEUE

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.queue < 0:
            raise ValueError(f"Kubernetes API client limits: need concurrency >= 1 and queue >= 0, "
                             f"got {self.concurrency} and {self.queue}")


class QueueFull(Exception):
    """A call refused before it was sent: ``queue`` callers were already waiting for one of the ``concurrency``
    slots of client ``client``. Retryable (as HTTP 429): the API server is slow or the client is overloaded."""

    status = 429
    reason = "TooManyRequests"

    def __init__(self, client: str, limits: RequestLimits, what: str = "") -> None:
        self.client, self.limits = client, limits
        self.message = (f"{what + ' not sent: ' if what else ''}the {client} Kubernetes API client is saturated "
                        f"({limits.concurrency} requests in flight, {limits.queue} waiting); retry later")
        super().__init__(self.message)


class _Counts:
    """In-flight and waiting counts of one limiter, mirrored to the gauges (inc/dec, so that several limiters of
    one ``client`` label add up)."""

    def __init__(self, client: str, limits: RequestLimits, error: Callable[[QueueFull], Exception] | None) -> None:
        self.client, self.limits, self.error = client, limits, error
        self.in_flight = self.waiting = 0
        self._flight_gauge = metrics.KUBE_API_IN_FLIGHT.labels(client)
        self._queue_gauge = metrics.KUBE_API_QUEUED.labels(client)

    def admit(self, busy: bool, what: str) -> bool:
        """Whether the caller must wait (``busy``: no slot free now); raises QueueFull when the queue is full."""
        if not busy:
            return False
        if self.waiting >= self.limits.queue:
            metrics.KUBE_API_REJECTED.labels(self.client).inc()
            refused = QueueFull(self.client, self.limits, what)
            raise refused if self.error is None else self.error(refused)
        self.waiting += 1
        self._queue_gauge.inc()
        return True

    def left_queue(self) -> None:
        self.waiting -= 1
        self._queue_gauge.dec()

    def started(self) -> None:
        self.in_flight += 1
        self._flight_gauge.inc()

    def ended(self) -> None:
        self.in_flight -= 1
        self._flight_gauge.dec()


class _Limiter:
    """What both limiters share: ``limits``, the ``client`` label of their metrics, and ``error``, which turns the
    :class:`QueueFull` of a refused call into the exception raised (default: itself)."""

    def __init__(self, limits: RequestLimits | None, client: str,
                 error: Callable[[QueueFull], Exception] | None) -> None:
        self.limits = limits or RequestLimits()
        self.counts = _Counts(client, self.limits, error)

    @property
    def in_flight(self) -> int:
        """Calls holding a slot now."""
        return self.counts.in_flight

    @property
    def waiting(self) -> int:
        """Calls waiting for a slot now."""
        return self.counts.waiting


class AsyncLimiter(_Limiter):
    """The limiter of an asyncio client: ``async with limiter.slot(what): <send>`` (see :class:`_Limiter`). Not
    thread-safe (one event loop)."""

    def __init__(self, limits: RequestLimits | None = None, client: str = "controller",
                 error: Callable[[QueueFull], Exception] | None = None) -> None:
        super().__init__(limits, client, error)
        self._free = asyncio.Semaphore(self.limits.concurrency)

    @asynccontextmanager
    async def slot(self, what: str = "") -> AsyncIterator[None]:
        """Hold one of the ``concurrency`` slots for the block (``what`` names the request in the error); raises
        QueueFull at once when no slot is free and the queue is full."""
        queued = self.counts.admit(self._free.locked(), what)
        try:
            await self._free.acquire()
        finally:
            if queued:
                self.counts.left_queue()
        self.counts.started()
        try:
            yield
        finally:
            self.counts.ended()
            self._free.release()


class ThreadLimiter(_Limiter):
    """The limiter of a thread-safe blocking client: ``with limiter.slot(what): <send>`` (see :class:`_Limiter`)."""

    def __init__(self, limits: RequestLimits | None = None, client: str = "api",
                 error: Callable[[QueueFull], Exception] | None = None) -> None:
        super().__init__(limits, client, error)
        self._cond = threading.Condition()

    @contextmanager
    def slot(self, what: str = "") -> Iterator[None]:
        """Hold one of the ``concurrency`` slots for the block; raises QueueFull when the queue is full."""
        with self._cond:
            if self.counts.admit(self.counts.in_flight >= self.limits.concurrency, what):
                try:
                    while self.counts.in_flight >= self.limits.concurrency:
                        self._cond.wait()
                finally:
                    self.counts.left_queue()
            self.counts.started()
        try:
            yield
        finally:
            with self._cond:
                self.counts.ended()
                self._cond.notify()


def queue_full_exception(exc: QueueFull) -> Exception:
    """``exc`` as the official client's ``ApiException`` 429 whose body is a Kubernetes ``Status`` carrying its
    message, so that every caller of that client handles it as the API server's own 429."""
    from kubernetes.client.exceptions import ApiException

    error = ApiException(status=exc.status, reason=exc.reason)
    error.body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": exc.message,
                             "reason": exc.reason, "code": exc.status})
    return error


def bound_api_client(api_client: Any, limits: RequestLimits | None = None, client: str = "api") -> Any:
    """Route every request of the official client ``api_client`` (``kubernetes.client.ApiClient``) through one
    :class:`ThreadLimiter` (``client`` labels its metrics): the whole call (send, read, decode) holds a slot; a full
    queue raises the ``ApiException`` 429 of :func:`queue_full_exception`. Returns ``api_client``, changed in
    place, its limiter in ``api_client.limiter``."""
    limiter = ThreadLimiter(limits, client, error=queue_full_exception)
    # kubernetes >= 35 sends every generated call through _call_with_legacy_options; older ones through call_api
    name = "_call_with_legacy_options" if hasattr(api_client, "_call_with_legacy_options") else "call_api"
    call = getattr(api_client, name)

    @functools.wraps(call)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        with limiter.slot():
            return call(*args, **kwargs)

    setattr(api_client, name, bounded)
    api_client.limiter = limiter
    return api_client


__all__ = ["AsyncLimiter", "DEFAULT_CONCURRENCY", "DEFAULT_QUEUE", "QueueFull", "RequestLimits", "ThreadLimiter",
           "bound_api_client", "queue_full_exception"]

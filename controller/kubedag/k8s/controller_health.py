"""The controller's health on a cluster, for the REST API's health document: its leader-election Lease
(:mod:`kubedag.k8s.leases`). The leader renews ``spec.renewTime`` every retry period; Airflow's health document
reports the scheduler ``healthy`` while its heartbeat is recent, and so does :func:`lease_health` while the
Lease's holder renewed within ``leaseDurationSeconds``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from kubedag.app.catalog import ComponentHealth
from kubedag.k8s.leases import DEFAULT_LEASE_NAME, LeaderInfo, read_leader


LEASE_TTL = 2.0
"""Seconds one read of the Lease answers the health document (every request would otherwise read it; the leader
renews it every 2 s, so a fresher answer says nothing more)."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def health_of(lease: LeaderInfo | None, where: str, now: datetime) -> ComponentHealth:
    """The controller's :class:`ComponentHealth` from its Lease ``lease`` (None: it does not exist) at ``now``
    (UTC): healthy with the holder in ``detail`` and ``renewTime`` as ``latest_heartbeat`` while fresh, else
    unhealthy with a one-line reason naming the Lease ``where`` (``<namespace>/<name>``)."""
    if lease is None:
        return ComponentHealth("unhealthy", detail=f"no controller Lease {where}: no controller has been elected")
    if not lease.holder:
        return ComponentHealth("unhealthy", lease.renew_time, f"Lease {where} is released: no controller leads")
    if lease.healthy(now):
        return ComponentHealth("healthy", lease.renew_time, f"leader: {lease.holder}")
    age = "never renewed" if lease.renew_time is None else \
        f"last renewed {int((now - lease.renew_time).total_seconds())} s ago (lease duration {lease.lease_duration} s)"
    return ComponentHealth("unhealthy", lease.renew_time, f"leader {lease.holder} is stale: Lease {where} {age}")


def lease_health(api_client: Any, namespace: str, name: str = DEFAULT_LEASE_NAME,
                 now: Callable[[], datetime] = _utcnow, ttl: float = LEASE_TTL,
                 monotonic: Callable[[], float] = time.monotonic) -> Callable[[], ComponentHealth]:
    """A function giving the controller's health from the Lease ``namespace/name``, read (``get leases``) with
    the official client's ``api_client`` at most once every ``ttl`` seconds (``monotonic`` seconds; concurrent
    callers wait for one read), judged at each call against ``now`` (the reader's UTC time). A Lease that cannot
    be read makes it unhealthy with the reason (never an exception: the health document always answers)."""
    where = f"{namespace}/{name}"
    lock = threading.Lock()
    cached: list[Any] = [None, None]  # [read until (monotonic s), LeaderInfo | None | the failure's reason (str)]

    def read() -> LeaderInfo | None | str:
        with lock:
            if cached[0] is not None and monotonic() < cached[0]:
                return cached[1]
            try:
                lease: LeaderInfo | None | str = read_leader(api_client, namespace, name)
            except Exception as exc:  # noqa: BLE001 - ApiException, urllib3/OSError: reported as the component's health
                lease = f"{exc.status} {exc.reason}" if hasattr(exc, "status") else type(exc).__name__
            cached[:] = [monotonic() + ttl, lease]
            return lease

    def scheduler() -> ComponentHealth:
        lease = read()
        if isinstance(lease, str):
            return ComponentHealth("unhealthy", detail=f"cannot read the controller Lease {where}: {lease}")
        return health_of(lease, where, now())

    return scheduler


__all__ = ["LEASE_TTL", "health_of", "lease_health"]

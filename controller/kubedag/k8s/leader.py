"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's ``tools/leaderelection`` does it, with
fencing: a hot standby for the controller.

Every replica runs its informers (caches warm, work queues filled); only the leader runs reconciles.

* **Acquire**: every ``retry_period`` (jittered by up to 20 %, as client-go's ``JitterFactor`` 1.2) a follower reads
  the Lease. It takes it when there is none (create), when it has no holder (released), or when its record has
  not changed for ``leaseDurationSeconds`` *as measured on the follower's own clock* since it first saw that
  record (client-go's ``observedTime``; clocks of different machines are never compared). The write is a PUT
  carrying the ``resourceVersion`` read: of two followers racing, one gets 409 Conflict and stays follower.
* **Renew**: the leader writes ``renewTime`` every ``retry_period``. A failed renewal is retried every
  ``retry_period`` until ``renew_deadline`` has passed since the last *successful* one (measured from the
  moment that request was sent); then leadership is lost.
* **Fencing**: :meth:`LeaderElector.is_leader` is true only until ``renew_deadline`` after the last successful
  renewal was sent: the controller's API client refuses to send any write once it is false, and the reconciles
  are cancelled when leadership is lost. A follower takes over no sooner than ``lease_duration`` after it saw
  that renewal, which is after the leader sent it: the old leader has stopped writing for at least
  ``lease_duration - renew_deadline`` (5 s by default) when the new one starts.
* **Release**: a leader that stops (SIGTERM) first stops its reconciles, then writes the Lease with no holder
  and ``leaseDurationSeconds: 1`` (client-go's ``ReleaseOnCancel``), so a follower takes over at its next retry.
* A leader that lost its Lease does not go back to following: the controller exits (rc 1) and its pod is
  restarted fresh, as kube-controller-manager does; no in-memory state of a former leadership survives.

Readers of the Lease (who leads, its heartbeat): :mod:`kubedag.k8s.leases`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import aiohttp

from kubedag.k8s.client import ApiError, Connection, KubeClient, resource_path
from kubedag.k8s.leases import API_VERSION, DEFAULT_LEASE_NAME, LEASE_LABEL, PLURAL, format_micro_time
from kubedag.k8s.limits import RequestLimits

log = logging.getLogger("kubedag.controller")

JITTER_FACTOR = 1.2
"""A follower's retry waits ``retry_period`` times a random factor in [1, 1.2) (client-go's ``JitterFactor``)."""
RELEASE_TIMEOUT = 4.0
"""Seconds a stopping leader spends at most on releasing its Lease."""
CLIENT_NAME = "leader"
"""The ``client`` label of the election's API client in ``kubedag_kube_api_requests_in_flight``/``_queued``/
``_rejected_total`` (the controller's own client is ``controller``)."""
CLIENT_LIMITS = RequestLimits(concurrency=2, queue=8)
"""The election client's bounds: its calls are sequential (one read, create, renewal or release at a time), so
these are never reached; they are its own, not the controller's slots, so a renewal never waits behind the
controller's calls however many of them are queued."""


def default_identity() -> str:
    """``<pod name>_<uuid4>`` as client-go's ``id := hostname + "_" + uuid``: the pod name (``POD_NAME``, else
    ``HOSTNAME``, else the host name) says which replica leads; the UUID makes each process distinct, so a
    restarted pod never mistakes its predecessor's Lease for its own."""
    pod = os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or socket.gethostname()
    return f"{pod}_{uuid.uuid4()}"


class LeaderElectionLost(Exception):
    """The leader could not renew its Lease within the renew deadline; the controller stopped writing and exits."""


@dataclass(frozen=True)
class LeaderElection:
    """Leader-election settings (``kubedag controller --leader-elect ...``). Durations in seconds.

    ``namespace``/``name``: the Lease (the controller's own namespace; the chart passes its release's).
    ``identity``: this replica's ``holderIdentity`` (:func:`default_identity`). ``lease_duration`` (15):
    how long followers wait after the last renewal they saw before taking over. ``renew_deadline`` (10): how
    long the leader keeps trying to renew before it stops writing. ``retry_period`` (2): between tries.
    client-go's defaults for kube-controller-manager.

    Raises:
        ValueError: naming the setting, unless ``lease_duration > renew_deadline > 1.2 * retry_period > 0``
            (client-go's ``NewLeaderElector`` checks), or with an empty namespace, name or identity.
    """

    namespace: str
    name: str = DEFAULT_LEASE_NAME
    identity: str = field(default_factory=default_identity)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        for setting in ("namespace", "name", "identity"):
            if not getattr(self, setting):
                raise ValueError(f"leader election: {setting} must not be empty")
        if self.retry_period <= 0:
            raise ValueError(f"--leader-elect-retry-period must be positive, not {self.retry_period:g}s")
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            raise ValueError(f"--leader-elect-renew-deadline ({self.renew_deadline:g}s) must be greater than "
                             f"{JITTER_FACTOR} x --leader-elect-retry-period ({self.retry_period:g}s)")
        if self.lease_duration <= self.renew_deadline:
            raise ValueError(f"--leader-elect-lease-duration ({self.lease_duration:g}s) must be greater than "
                             f"--leader-elect-renew-deadline ({self.renew_deadline:g}s)")

    @property
    def lease_duration_seconds(self) -> int:
        """``spec.leaseDurationSeconds`` written (whole seconds, rounded up)."""
        return max(1, math.ceil(self.lease_duration))


class LeaderElector:
    """One replica's side of the election (see the module docstring). ``client``: an open :class:`KubeClient`
    used for the Lease only (its own session, so a busy controller's rate limit never delays a renewal).
    ``monotonic``: seconds, for deadlines; ``wall``: UTC now, for the times written in the Lease."""

    def __init__(self, client: KubeClient, config: LeaderElection, *, monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.client, self.config, self.monotonic, self.wall = client, config, monotonic, wall
        self.path = resource_path(API_VERSION, PLURAL, config.namespace, config.name)
        self._observed: dict[str, Any] | None = None  # the Lease spec last seen
        self._observed_at = 0.0  # monotonic time it was first seen
        self._renewed_at: float | None = None  # monotonic time the last successful acquire/renew was sent
        self._lease: dict[str, Any] | None = None  # the Lease as our last successful write left it
        self._quiet_at: float | None = None  # see quiet_since()

    def is_leader(self) -> bool:
        """True while this replica may write: less than ``renew_deadline`` since its last successful renewal
        was sent (the fence; checked before every write)."""
        return self._renewed_at is not None and self.monotonic() < self._renewed_at + self.config.renew_deadline

    def quiet_since(self) -> float | None:
        """Monotonic time (this replica's clock) from which no other replica can write under the Lease as last
        seen held by another (None: no Lease read yet): the moment it was seen free (released, or none), else
        ``renew_deadline`` after its current record was first seen (its holder sent that renewal before, and
        fences itself ``renew_deadline`` after its last renewal; replicas share their timing). A follower's reads
        begun after it see every write of the former leader (:mod:`kubedag.k8s.standby`). Thread-safe."""
        return self._quiet_at

    async def acquire(self) -> None:
        """Return once this replica holds the Lease (tries every jittered ``retry_period``; never raises on API
        errors, which are logged and retried)."""
        while not await self.try_acquire_or_renew():
            await asyncio.sleep(self.config.retry_period * random.uniform(1.0, JITTER_FACTOR))

    async def keep(self) -> None:
        """Renew every ``retry_period`` while leading; return when a renewal could not be made before the renew
        deadline (leadership lost: :meth:`is_leader` is already false)."""
        while True:
            await asyncio.sleep(self.config.retry_period)
            while not await self._renew_once():
                if self._renewed_at is None or not self.is_leader():
                    return
                await asyncio.sleep(min(self.config.retry_period, self._time_left()))

    def _time_left(self) -> float:
        assert self._renewed_at is not None
        return max(0.0, self._renewed_at + self.config.renew_deadline - self.monotonic())

    async def _renew_once(self) -> bool:
        left = self._time_left()
        if left <= 0:
            return False
        try:
            return await asyncio.wait_for(self.try_acquire_or_renew(), timeout=left)
        except TimeoutError:
            log.warning("leader election: renewing Lease %s/%s took over %.1fs", self.config.namespace,
                        self.config.name, left)
            return False

    async def try_acquire_or_renew(self) -> bool:
        """One try (client-go's ``tryAcquireOrRenew``): True when this replica now holds the Lease."""
        sent = self.monotonic()
        now = format_micro_time(self.wall())
        try:
            lease = await self.client.get(API_VERSION, PLURAL, self.config.namespace, self.config.name)
            if lease is None:
                self._quiet_at = self.monotonic() if self._quiet_at is None else self._quiet_at
                spec = self._record(now, now, 0)
                created = await self.client.create(API_VERSION, PLURAL, self.config.namespace, {
                    "apiVersion": API_VERSION, "kind": "Lease", "spec": spec,
                    "metadata": {"name": self.config.name, "namespace": self.config.namespace,
                                 "labels": {LEASE_LABEL: self.config.name}}})
                return self._won(created, sent)
            spec = dict(lease.get("spec") or {})
            holder = spec.get("holderIdentity") or ""
            if spec != self._observed:
                self._observed, self._observed_at = spec, sent
                if holder != self.config.identity:
                    self._quiet_at = self.monotonic() + (self.config.renew_deadline if holder else 0.0)
            duration = spec.get("leaseDurationSeconds") or self.config.lease_duration_seconds
            if holder and holder != self.config.identity and self._observed_at + duration > sent:
                if self._renewed_at is not None:
                    log.warning("leader election: Lease %s/%s was taken by %s", self.config.namespace,
                                self.config.name, holder)
                return False  # held by another replica, not expired on our clock
            ours = holder == self.config.identity
            transitions = int(spec.get("leaseTransitions") or 0) + (0 if ours else 1)
            lease["spec"] = self._record(spec.get("acquireTime") if ours and spec.get("acquireTime") else now, now,
                                         transitions)
            updated = await self.client.request("PUT", self.path, body=lease)
        except ApiError as exc:
            if exc.status != 409 or self._renewed_at is not None:  # a follower losing a race is no news
                log.warning("leader election: Lease %s/%s: %s", self.config.namespace, self.config.name, exc)
            return False
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError) as exc:
            log.warning("leader election: Lease %s/%s unreachable: %r", self.config.namespace, self.config.name, exc)
            return False
        return self._won(updated, sent)

    def _record(self, acquire: str, renew: str, transitions: int) -> dict[str, Any]:
        return {"holderIdentity": self.config.identity, "leaseDurationSeconds": self.config.lease_duration_seconds,
                "acquireTime": acquire, "renewTime": renew, "leaseTransitions": transitions}

    def _won(self, lease: dict[str, Any], sent: float) -> bool:
        self._lease = lease
        self._observed, self._observed_at = dict(lease.get("spec") or {}), sent
        self._renewed_at = sent
        return True

    async def _put_released(self, lease: dict[str, Any], now: str) -> bool:
        """PUT ``lease`` with no holder (one request, as client-go's release). On 409 (a renewal cut short by the
        stop may have landed after all) read it again and retry once if it is still ours. False: not ours."""
        for attempt in range(2):
            lease["spec"] = {"holderIdentity": None, "leaseDurationSeconds": 1, "acquireTime": now, "renewTime": now,
                             "leaseTransitions": int((lease.get("spec") or {}).get("leaseTransitions") or 0)}
            try:
                await self.client.request("PUT", self.path, body=lease)
                return True
            except ApiError as exc:
                if exc.status != 409 or attempt:
                    raise
            fresh = await self.client.get(API_VERSION, PLURAL, self.config.namespace, self.config.name)
            if fresh is None or (fresh.get("spec") or {}).get("holderIdentity") != self.config.identity:
                return False
            lease = fresh
        return False

    async def release(self) -> bool:
        """Give the Lease up if this replica still holds it (no holder, ``leaseDurationSeconds: 1``, as client-go's
        ``release``); call only after every writer has stopped. True when released; errors are logged."""
        if not self.is_leader():
            return False
        self._renewed_at = None  # no write of ours may follow the release
        now = format_micro_time(self.wall())
        try:
            if not await self._put_released(dict(self._lease or {}), now):
                return False
        except Exception as exc:  # noqa: BLE001 - best effort: the Lease expires anyway
            log.warning("leader election: could not release Lease %s/%s: %r", self.config.namespace, self.config.name, exc)
            return False
        log.info("leader election: released Lease %s/%s", self.config.namespace, self.config.name)
        return True


class Leadership:
    """Runs a :class:`LeaderElector` for the controller manager in a thread of its own, with its own event loop
    and API session (as client-go runs it in its own goroutine): a controller loop busy for seconds with large
    passes never delays a renewal, so it never loses its Lease for being busy. Its API client has its own
    concurrency slots and queue (:data:`CLIENT_LIMITS`) and metrics label (:data:`CLIENT_NAME`): a controller
    client with all its slots taken and 1,000 calls queued never delays a renewal either.

    ``on_started`` is called (on the manager's loop) once this replica leads: start the reconciles.
    ``on_stopped`` as soon as it lost the Lease: stop them (the fence, :meth:`may_write`, which the API client
    checks before each write, refuses writes from the deadline on whatever the manager's loop is doing);
    :attr:`lost` is set after that, and the controller exits (:class:`LeaderElectionLost`).
    """

    def __init__(self, connection: Connection, config: LeaderElection, *, on_started: Callable[[], None],
                 on_stopped: Callable[[], None]) -> None:
        self.connection, self.config = connection, config
        self.on_started, self.on_stopped = on_started, on_stopped
        self.lost = asyncio.Event()
        self.elector: LeaderElector | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the manager's
        self._own_loop: asyncio.AbstractEventLoop | None = None  # the election thread's
        self._stopping: asyncio.Event | None = None  # on the election thread's loop
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def may_write(self) -> bool:
        """The fence: True while this replica leads (see :meth:`LeaderElector.is_leader`); thread-safe."""
        return self.elector is not None and self.elector.is_leader()

    def quiet_since(self) -> float | None:
        """:meth:`LeaderElector.quiet_since` (None before the election thread runs); thread-safe."""
        return self.elector.quiet_since() if self.elector is not None else None

    async def start(self) -> None:
        """Start campaigning in the election thread (returns once it runs)."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="kubedag-leader-election",
                                        daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)

    async def _main(self) -> None:
        """The election thread: campaign until :meth:`stop`, then release the Lease if held."""
        self._own_loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        client = KubeClient(self.connection, qps=0, burst=1, timeout=self.config.renew_deadline, limits=CLIENT_LIMITS,
                            name=CLIENT_NAME)
        try:
            await client.__aenter__()
            self.elector = LeaderElector(client, self.config)
        finally:
            self._ready.set()
        campaign = asyncio.create_task(self._campaign(), name="kubedag-campaign")
        try:
            await self._stopping.wait()
            campaign.cancel()
            await asyncio.gather(campaign, return_exceptions=True)
            try:
                await asyncio.wait_for(self.elector.release(), RELEASE_TIMEOUT)
            except TimeoutError:
                log.warning("leader election: releasing the Lease took over %ss; it will expire", RELEASE_TIMEOUT)
        finally:
            await client.close()

    async def _campaign(self) -> None:
        try:
            await self._lead()
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not leave a silent follower, nor a leader without renewals
            log.exception("leader election failed")
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.on_stopped)
        self._loop.call_soon_threadsafe(self.lost.set)

    async def _lead(self) -> None:
        assert self.elector is not None and self._loop is not None
        log.info("leader election: %s is a follower; campaigning for Lease %s/%s", self.config.identity,
                 self.config.namespace, self.config.name)
        await self.elector.acquire()
        log.info("leader election: %s became the leader", self.config.identity)
        self._loop.call_soon_threadsafe(self.on_started)
        await self.elector.keep()
        log.error("leader election: %s could not renew Lease %s/%s within %ss; stopped writing, exiting",
                  self.config.identity, self.config.namespace, self.config.name, self.config.renew_deadline)

    async def stop(self) -> None:
        """Stop campaigning; release the Lease if held (call after the reconciles stopped); end the thread."""
        if self._thread is None:
            return
        if self._own_loop is not None and self._stopping is not None:
            self._own_loop.call_soon_threadsafe(self._stopping.set)
        await asyncio.to_thread(self._thread.join, RELEASE_TIMEOUT + 2)
        self._thread = None


__all__ = ["CLIENT_LIMITS", "CLIENT_NAME", "JITTER_FACTOR", "LeaderElection", "LeaderElectionLost", "LeaderElector", "Leadership", "default_identity"]

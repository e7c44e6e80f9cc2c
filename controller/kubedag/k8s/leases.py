"""Reading the controller's leader-election Lease: who leads, and its heartbeat.

The leading controller replica holds a ``coordination.k8s.io/v1`` Lease (:mod:`kubedag.k8s.leader`) labelled
:data:`LEASE_LABEL`, and renews its ``spec.renewTime`` every retry period (2 s by default). That renewal is the
controller's heartbeat: a reader such as ``kubedag dags list --cluster`` or the REST API's health document
calls :func:`find_leaders` (or :func:`read_leader` when it knows the Lease's namespace and name) and shows
``holder`` and ``renew_time`` (:func:`fetch_leader` is the same read with the controller's asynchronous client);
:meth:`LeaderInfo.healthy` says whether the heartbeat is fresh (as Airflow's
``/health`` reports the scheduler's ``latest_scheduler_heartbeat`` and ``healthy``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

DEFAULT_LEASE_NAME = "kubedag-controller"
"""The Lease's name unless ``--leader-elect-lease-name`` says otherwise (the chart passes its full name)."""
LEASE_LABEL = "kubedag.io/leader-election"
"""Label of every Lease the controller creates (value: the Lease name), so readers can find it in any namespace."""
API_VERSION = "coordination.k8s.io/v1"
PLURAL = "leases"


def format_micro_time(when: datetime) -> str:
    """A Kubernetes ``MicroTime``: RFC 3339 UTC with microseconds, ``2026-12-02T14:02:04.123456Z``."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(value: str | None) -> datetime | None:
    """A ``MicroTime`` (or ``Time``) string as a UTC-aware datetime; None for None, empty or unparsable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


@dataclass(frozen=True)
class LeaderInfo:
    """One leader-election Lease as readers see it.

    ``namespace``/``name``: the Lease. ``holder``: ``holderIdentity`` (``<pod name>_<uuid>``; None when released
    or never held). ``renew_time``/``acquire_time``: UTC. ``lease_duration``: seconds the holder is leader after
    a renewal. ``transitions``: how many times leadership changed hands.
    """

    namespace: str
    name: str
    holder: str | None
    renew_time: datetime | None
    acquire_time: datetime | None
    lease_duration: int
    transitions: int

    def healthy(self, now: datetime) -> bool:
        """True when a holder renewed within ``lease_duration`` seconds before ``now`` (UTC-aware): the
        controller's heartbeat is fresh. Wall clocks of reader and controller are compared here (only followers
        taking over use their own clock, as client-go)."""
        if not self.holder or self.renew_time is None:
            return False
        return (now - self.renew_time).total_seconds() <= self.lease_duration

    def pod_name(self) -> str | None:
        """The holder's pod (the identity before its last ``_``), or None without a holder."""
        return self.holder.rsplit("_", 1)[0] if self.holder else None


def parse_lease(obj: dict[str, Any]) -> LeaderInfo:
    """A Lease object (a JSON dict as the API returns it) as :class:`LeaderInfo`."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    return LeaderInfo(
        namespace=meta.get("namespace") or "", name=meta.get("name") or "",
        holder=spec.get("holderIdentity") or None,
        renew_time=parse_micro_time(spec.get("renewTime")), acquire_time=parse_micro_time(spec.get("acquireTime")),
        lease_duration=int(spec.get("leaseDurationSeconds") or 0), transitions=int(spec.get("leaseTransitions") or 0),
    )


def _plain(api_client: Any, answer: Any) -> Any:
    return api_client.sanitize_for_serialization(answer)


def read_leader(api_client: Any, namespace: str, name: str = DEFAULT_LEASE_NAME) -> LeaderInfo | None:
    """The controller's Lease ``namespace/name`` read with the official client's ``api_client``
    (``kubernetes.client.ApiClient``); None when it does not exist (no controller ran with leader election).

    Raises:
        kubernetes.client.ApiException: any other error answer (403 when the caller may not get leases).
    """
    from kubernetes.client import CoordinationV1Api  # the official client loads only where a reader asks
    from kubernetes.client.exceptions import ApiException

    try:
        lease = CoordinationV1Api(api_client).read_namespaced_lease(name, namespace, _request_timeout=10)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return parse_lease(_plain(api_client, lease))


async def fetch_leader(client: Any, namespace: str, name: str = DEFAULT_LEASE_NAME) -> LeaderInfo | None:
    """:func:`read_leader` with the controller's asynchronous client (:class:`kubedag.k8s.client.KubeClient`):
    None when the Lease does not exist.

    Raises:
        kubedag.k8s.client.ApiError: any other error answer.
    """
    lease = await client.get(API_VERSION, PLURAL, namespace, name)
    return None if lease is None else parse_lease(lease)


def find_leaders(api_client: Any, namespace: str | None = None) -> list[LeaderInfo]:
    """Every controller Lease (labelled :data:`LEASE_LABEL`) in ``namespace`` (None: all namespaces), sorted by
    namespace and name; ``[]`` when the caller may not list leases or the server cannot be read (a reader's
    extra line must never fail its command)."""
    from kubernetes.client import CoordinationV1Api  # the official client loads only where a reader asks
    from kubernetes.client.exceptions import ApiException

    api = CoordinationV1Api(api_client)
    try:
        if namespace is None:
            answer = api.list_lease_for_all_namespaces(label_selector=LEASE_LABEL, _request_timeout=10)
        else:
            answer = api.list_namespaced_lease(namespace, label_selector=LEASE_LABEL, _request_timeout=10)
    except (ApiException, OSError, ValueError):
        return []
    except Exception as exc:  # noqa: BLE001 - urllib3 errors: an unreachable server is reported by the command itself
        if type(exc).__module__.startswith("urllib3"):
            return []
        raise
    leases = [parse_lease(item) for item in (_plain(api_client, answer).get("items") or [])]
    return sorted(leases, key=lambda lease: (lease.namespace, lease.name))


__all__ = ["API_VERSION", "DEFAULT_LEASE_NAME", "LEASE_LABEL", "LeaderInfo", "PLURAL", "fetch_leader", "find_leaders",
           "format_micro_time", "parse_lease", "parse_micro_time", "read_leader"]

"""Informers: kopf watches that only update in-memory caches and enqueue keys (level-triggered throughout).

kopf watches DAGs, DAGRuns, Backfills, Pools and kubedag's pods (``@kopf.on.event``). Every handler is
``async``: kopf runs it on the event loop, where the workers run too, so no cache is ever mutated from another
thread (kopf runs plain handlers in worker threads: issue 13's "dictionary changed size during iteration").
Nothing is decided from an event itself: the handler stores the object (if newer than the cached one) and hands
the key to the manager's routing (:class:`Router`), which enqueues it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubedag.core import naming as names
from kubedag.k8s.observe import slim_pod
from kubedag.k8s.workqueue import Key

DAGS = "dags"
DAGRUNS = "dagruns"
POOLS = "pools"
BACKFILLS = "backfills"


def key_of(body: Mapping[str, Any]) -> Key:
    """``(namespace, name)`` of an object."""
    meta = body.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


def newer(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether ``new`` is at least as recent as ``old`` (resourceVersions compared as integers when they are)."""
    if old is None:
        return True
    a, b = (old.get("metadata") or {}).get("resourceVersion"), (new.get("metadata") or {}).get("resourceVersion")
    try:
        return int(b) >= int(a)
    except (TypeError, ValueError):
        return True


@dataclass
class Cache:
    """The latest object of each kind by key, and kubedag's pods by their DAGRun's key then pod name (but those of
    archived tries: :attr:`retained`).

    Written by the informers' handlers and by the reconcilers with the objects their own writes return (a
    write is newer than what the watch delivered so far); always on the event loop.
    """

    dags: dict[Key, dict[str, Any]] = field(default_factory=dict)
    runs: dict[Key, dict[str, Any]] = field(default_factory=dict)
    pools: dict[Key, dict[str, Any]] = field(default_factory=dict)
    backfills: dict[Key, dict[str, Any]] = field(default_factory=dict)
    pods: dict[Key, dict[str, dict[str, Any]]] = field(default_factory=dict)
    retained: Callable[[str, str], bool] = lambda namespace, name: False
    """Whether pod ``(namespace, name)``, not in :attr:`pods`, is kept for its retention only (its try archived:
    handed to the pod reaper and dropped from the cache; the manager sets its reaper's ``holds``)."""

    @staticmethod
    def store(objects: dict[Key, dict[str, Any]], event_type: str | None, body: Mapping[str, Any]) -> bool:
        """Apply a watch event to ``objects``; True when the cache changed (a deletion, or a newer object)."""
        key = key_of(body)
        if event_type == "DELETED":
            return objects.pop(key, None) is not None
        if newer(objects.get(key), body):
            objects[key] = dict(body)
            return True
        return False

    def store_pod(self, event_type: str | None, body: Mapping[str, Any]) -> Key | None:
        """Apply a pod's watch event; the key of its DAGRun (None: not a pod of a run)."""
        meta = body.get("metadata") or {}
        run = (meta.get("labels") or {}).get(names.LABEL_RUN)
        if not run:
            return None
        key = (meta.get("namespace") or "", run)
        pods = self.pods.setdefault(key, {})
        if event_type == "DELETED":
            pods.pop(meta.get("name"), None)
            if not pods:
                del self.pods[key]
        elif newer(pods.get(meta.get("name")), body):
            pods[meta["name"]] = slim_pod(body)  # only what is read: every kept pod is cached
        return key

    def runs_of(self, namespace: str, dag_name: str) -> list[tuple[Key, dict[str, Any]]]:
        """The DAGRuns of a DAG."""
        return [(k, b) for k, b in self.runs.items() if k[0] == namespace and (b.get("spec") or {}).get("dagName") == dag_name]


class Router(Protocol):
    """What the informers call on each event (the manager; see :mod:`kubedag.k8s.manager`)."""

    def on_dag_event(self, event_type: str | None, body: Mapping[str, Any]) -> None: ...
    def on_run_event(self, event_type: str | None, body: Mapping[str, Any]) -> None: ...
    def on_backfill_event(self, event_type: str | None, body: Mapping[str, Any]) -> None: ...
    def on_pool_event(self, event_type: str | None, body: Mapping[str, Any]) -> None: ...
    def on_pod_event(self, event_type: str | None, body: Mapping[str, Any]) -> None: ...


def watch(registry: Any, router: Router) -> None:
    """Register the informers' ``on.event`` handlers on a kopf registry; each is async (see the module docstring)."""
    import kopf  # the controller's entry point only: the CLI never loads kopf

    @kopf.on.event(names.GROUP, names.VERSION, DAGS, registry=registry)
    async def dag_event(event: Mapping[str, Any], **_: Any) -> None:
        router.on_dag_event(event.get("type"), event["object"])

    @kopf.on.event(names.GROUP, names.VERSION, DAGRUNS, registry=registry)
    async def run_event(event: Mapping[str, Any], **_: Any) -> None:
        router.on_run_event(event.get("type"), event["object"])

    @kopf.on.event(names.GROUP, names.VERSION, BACKFILLS, registry=registry)
    async def backfill_event(event: Mapping[str, Any], **_: Any) -> None:
        router.on_backfill_event(event.get("type"), event["object"])

    @kopf.on.event(names.GROUP, names.VERSION, POOLS, registry=registry)
    async def pool_event(event: Mapping[str, Any], **_: Any) -> None:
        router.on_pool_event(event.get("type"), event["object"])

    @kopf.on.event("", "v1", "pods", labels={names.LABEL_RUN: kopf.PRESENT}, registry=registry)
    async def pod_event(event: Mapping[str, Any], **_: Any) -> None:
        router.on_pod_event(event.get("type"), event["object"])


def kopf_memories() -> Any:
    """kopf's per-object memories (``kopf.operator(memories=...)``), remembering no pod: kopf keeps a record of every
    object it watches for as long as the object exists (about 0.9 KiB each: 9 MB with 10,000 kept pods, issue 13),
    for handlers, daemons and indexes that the pod informer does not have (its one ``on.event`` handler keeps no
    memo). Each pod event gets a fresh record instead (kopf's ``ephemeral``, as for admission reviews). Built on
    kopf's ``ResourceMemories`` (not a public name: ``tests/unit_k8s/test_pod_cache.py`` checks it on the installed
    kopf)."""
    from kopf._core.reactor.inventory import ResourceMemories

    class PodlessMemories(ResourceMemories):  # type: ignore[misc]
        async def recall(self, raw_body: Any, **kwargs: Any) -> Any:
            if raw_body.get("kind") == "Pod":
                kwargs["ephemeral"] = True
            return await super().recall(raw_body, **kwargs)

    return PodlessMemories()


def kopf_diffbase() -> Any:
    """kopf's diff-base storage (``settings.persistence.diffbase_storage``) building nothing: for every event kopf
    builds the object's "essence" (a deep copy of it) and diffs it with the last one, for change handlers and
    daemons; the controller registers neither (only the ``on.event`` informers of :func:`watch`, which get no diff).
    At a start listing 10,000 kept pods that copy was about 40 % of kopf's time per event (issue 13, "Bounded
    recovery"; ``tests/unit_k8s/test_pod_cache.py`` checks the registry has no handler that would read it)."""
    import kopf  # the controller's entry point only

    class NoDiffBase(kopf.DiffBaseStorage):  # type: ignore[misc]
        def build(self, *, body: Any, extra_fields: Any = None) -> Any:
            return {}

        def fetch(self, *, body: Any) -> None:
            return None

        def store(self, *, body: Any, patch: Any, essence: Any) -> None:
            return None

    return NoDiffBase()


__all__ = ["BACKFILLS", "Cache", "DAGRUNS", "DAGS", "POOLS", "Router", "key_of", "kopf_diffbase", "kopf_memories",
           "newer", "watch"]

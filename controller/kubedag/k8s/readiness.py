"""The controller's readiness and liveness, as its probes (:mod:`kubedag.http.probes`) ask for them.

* **Informer caches synced** (client-go's ``WaitForCacheSync``): kopf lists then watches each kind but does not
  say when a listing is over, so :class:`CacheSync` lists every watched kind itself (DAGs, DAGRuns, Pools,
  Backfills, kubedag's pods) once the controller has started, and calls the caches synced when each holds every
  object of that listing; until then it looks every ``interval`` seconds at the objects of the listing still
  missing from the caches, and lists again only every ``relist`` seconds (an object deleted meanwhile is gone
  from the next listing): with 10,000 pods kept, listing them all every second kept the controller and the API
  server busy while the pod informer was still filling its cache (issue 13). Once synced it stays synced: later
  events only refresh a complete cache.
* **The event loop answers** (liveness): :func:`loop_answers` runs a no-op on the loop and waits for it.

Both are read from the probe server's threads: :attr:`CacheSync.reason` is a plain attribute written on the
event loop, and :func:`loop_answers` hands its work to the loop with ``run_coroutine_threadsafe``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Iterable
from typing import Any

from kubedag.core import naming as names
from kubedag.k8s.client import KubeClient
from kubedag.k8s.informers import BACKFILLS, DAGRUNS, DAGS, POOLS, Cache, key_of

log = logging.getLogger("kubedag.controller")

SYNC_INTERVAL = 1.0
"""Seconds between looks at the caches while they are not synced."""
RELIST_INTERVAL = 30.0
"""Seconds between listings while the caches are not synced (objects deleted since the last one are forgotten)."""

Listed = tuple[str, tuple[str, str], str]
"""An object of a listing: ``(plural, key in its cache, name)`` (for a pod, the key is its DAGRun's)."""
LOOP_TIMEOUT = 10.0
"""Seconds the event loop may take to run a no-op before the controller counts as not alive."""


class CacheSync:
    """Tells whether the informer caches are synced (see the module docstring). ``client()``: the controller's
    API client (None before it started); ``namespaces``: the watched namespaces (empty: the whole cluster);
    ``on_synced()``: called once, on the event loop, when they are (the manager's finished runs then have their
    passes: :meth:`kubedag.k8s.manager.Manager.hold_finished_runs`). :attr:`reason` is None once synced, else why
    not (one line)."""

    def __init__(self, cache: Cache, client: Callable[[], KubeClient | None], namespaces: Iterable[str] = (),
                 interval: float = SYNC_INTERVAL, relist: float = RELIST_INTERVAL,
                 on_synced: Callable[[], None] | None = None) -> None:
        self.cache, self._client, self.interval, self.relist = cache, client, interval, relist
        self.on_synced = on_synced
        self.namespaces: list[str | None] = list(namespaces) or [None]
        self.reason: str | None = "the controller is starting"

    def check(self) -> str | None:
        """The readiness check: None once the caches are synced, else the reason (thread-safe)."""
        return self.reason

    async def run(self) -> None:
        """List, then look at what the caches still miss, until they hold it all (runs on the controller's event
        loop)."""
        loop = asyncio.get_running_loop()
        pending: list[Listed] | None = None
        listed_at = 0.0
        while self.reason is not None:
            client = self._client()
            if client is not None:
                try:
                    if pending is None or loop.time() - listed_at >= self.relist:
                        pending, listed_at = await self.listing(client), loop.time()
                    pending = [entry for entry in pending if not self._held(entry)]
                    self.reason = self._why(pending[0]) if pending else None
                except Exception as exc:  # noqa: BLE001 - an API error: not synced yet, try again
                    self.reason = f"cannot list objects to check the informer caches: {type(exc).__name__}"
            if self.reason is not None:
                await asyncio.sleep(self.interval)
        log.info("informer caches synced")
        if self.on_synced is not None:
            self.on_synced()

    async def listing(self, client: KubeClient) -> list[Listed]:
        """Every object of the watched kinds the API server lists now, in order (DAGs, DAGRuns, Pools, Backfills,
        pods, by namespace)."""
        out: list[Listed] = []
        for namespace in self.namespaces:
            for plural in (DAGS, DAGRUNS, POOLS, BACKFILLS):
                async for page in client.pages(names.API_VERSION, plural, namespace):
                    out += [(plural, key_of(body), key_of(body)[1]) for body in page]
            async for page in client.pages("v1", "pods", namespace, label_selector=names.LABEL_RUN):
                for pod in page:  # in pages: 10,000 kept pods are never decoded at once
                    meta = pod.get("metadata") or {}
                    run = (meta.get("namespace") or "", (meta.get("labels") or {}).get(names.LABEL_RUN) or "")
                    out.append(("pods", run, meta.get("name") or ""))
        return out

    def _held(self, entry: Listed) -> bool:
        plural, key, name = entry
        if plural == "pods":
            return name in self.cache.pods.get(key, {}) or self.cache.retained(key[0], name)
        objects = {DAGS: self.cache.dags, DAGRUNS: self.cache.runs, POOLS: self.cache.pools,
                   BACKFILLS: self.cache.backfills}[plural]
        return key in objects

    @staticmethod
    def _why(entry: Listed) -> str:
        plural, key, name = entry
        if plural == "pods":
            return f"informer cache not synced: pod {key[0]}/{name} not seen yet"
        return "informer cache not synced: {} {}/{} not seen yet".format(plural, *key)


def loop_answers(loop: asyncio.AbstractEventLoop, timeout: float = LOOP_TIMEOUT) -> Callable[[], str | None]:
    """A liveness check: None when ``loop`` runs a no-op within ``timeout`` seconds, else the reason."""

    def check() -> str | None:
        if loop.is_closed():
            return "the controller's event loop is closed"
        future = asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop)
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return f"the controller's event loop did not answer within {timeout:g}s"
        return None

    return check


def start_sync(sync: CacheSync) -> Any:
    """Run ``sync`` as a task of the running loop; returns the task (cancel it at shutdown)."""
    return asyncio.get_running_loop().create_task(sync.run(), name="kubedag-cache-sync")


__all__ = ["CacheSync", "LOOP_TIMEOUT", "RELIST_INTERVAL", "SYNC_INTERVAL", "loop_answers", "start_sync"]

"""The controller's readiness and liveness, as its probes (:mod:`kubedag.http.probes`) ask for them.

* **Informer caches synced** (client-go's ``WaitForCacheSync``): kopf lists then watches each kind but does not
  say when a listing is over, so :class:`CacheSync` lists every watched kind itself (DAGs, DAGRuns, Pools,
  Backfills, kubedag's pods) once the controller has started, and calls the caches synced when each holds every
  object of that listing; until then it lists again every ``interval`` seconds (an object deleted meanwhile is
  gone from the next listing). Once synced it stays synced: later events only refresh a complete cache.
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
"""Seconds between listings while the caches are not synced."""
LOOP_TIMEOUT = 10.0
"""Seconds the event loop may take to run a no-op before the controller counts as not alive."""


class CacheSync:
    """Tells whether the informer caches are synced (see the module docstring). ``client()``: the controller's
    API client (None before it started); ``namespaces``: the watched namespaces (empty: the whole cluster).
    :attr:`reason` is None once synced, else why not (one line)."""

    def __init__(self, cache: Cache, client: Callable[[], KubeClient | None], namespaces: Iterable[str] = (),
                 interval: float = SYNC_INTERVAL) -> None:
        self.cache, self._client, self.interval = cache, client, interval
        self.namespaces: list[str | None] = list(namespaces) or [None]
        self.reason: str | None = "the controller is starting"

    def check(self) -> str | None:
        """The readiness check: None once the caches are synced, else the reason (thread-safe)."""
        return self.reason

    async def run(self) -> None:
        """List and compare until the caches are synced (runs on the controller's event loop)."""
        while self.reason is not None:
            client = self._client()
            if client is not None:
                try:
                    self.reason = await self.missing(client)
                except Exception as exc:  # noqa: BLE001 - an API error: not synced yet, try again
                    self.reason = f"cannot list objects to check the informer caches: {type(exc).__name__}"
            if self.reason is not None:
                await asyncio.sleep(self.interval)
        log.info("informer caches synced")

    async def missing(self, client: KubeClient) -> str | None:
        """The first listed object the caches do not hold yet (as a reason), None when they hold all."""
        kinds = ((DAGS, self.cache.dags), (DAGRUNS, self.cache.runs), (POOLS, self.cache.pools),
                 (BACKFILLS, self.cache.backfills))
        for namespace in self.namespaces:
            for plural, objects in kinds:
                for body in await client.list(names.API_VERSION, plural, namespace):
                    if key_of(body) not in objects:
                        return "informer cache not synced: {} {}/{} not seen yet".format(plural, *key_of(body))
            for pod in await client.list("v1", "pods", namespace, label_selector=names.LABEL_RUN):
                meta = pod.get("metadata") or {}
                run = (meta.get("namespace") or "", (meta.get("labels") or {}).get(names.LABEL_RUN) or "")
                if meta.get("name") not in self.cache.pods.get(run, {}):
                    return f"informer cache not synced: pod {run[0]}/{meta.get('name')} not seen yet"
        return None


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


__all__ = ["CacheSync", "LOOP_TIMEOUT", "SYNC_INTERVAL", "loop_answers", "start_sync"]

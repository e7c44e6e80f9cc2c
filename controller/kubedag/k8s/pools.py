"""The Pool reconciler: a Pool's status (occupied, queued, running and open slots), as Airflow's pool view.

Usage is counted over every open run of the Pool's namespace (:func:`kubedag.app.pools.pool_usage`); the status
is written when it changed. Runs waiting on a pool are queued again (oldest first) when its slots free up or the
Pool changes (see :mod:`kubedag.k8s.manager`).
"""

from __future__ import annotations

from collections.abc import Callable

from kubedag.app import metrics
from kubedag.app.pools import PoolUsage
from kubedag.app.reconcile import Result
from kubedag.core import naming as names
from kubedag.k8s.client import ApiError, KubeClient
from kubedag.k8s.informers import POOLS, Cache, newer
from kubedag.k8s.workqueue import Key


class PoolReconciler:
    """Writes Pool statuses; ``usage(namespace)`` gives every pool's usage in a namespace."""

    def __init__(self, cache: Cache, client: Callable[[], KubeClient | None],
                 usage: Callable[[str], dict[str, PoolUsage]]) -> None:
        self.cache, self._client, self._usage = cache, client, usage

    async def reconcile(self, key: Key) -> Result:
        """Write the Pool's status if it changed."""
        body = self.cache.pools.get(key)
        client = self._client()
        if body is None or client is None:
            return Result()
        usage = self._usage(key[0]).get(key[1]) or PoolUsage(0)
        metrics.set_pools({key[1]: usage}, f"{key[0]}/")
        status = {"occupied": usage.queued + usage.running, "queued": usage.queued, "running": usage.running,
                  "open": usage.slots - usage.queued - usage.running,
                  "observedGeneration": (body.get("metadata") or {}).get("generation")}
        status = {k: v for k, v in status.items() if v is not None}
        if (body.get("status") or {}) == status:
            return Result()
        try:
            updated = await client.patch(names.API_VERSION, POOLS, key[0], key[1], {"status": status}, sub="status")
        except ApiError as exc:
            if exc.status == 404:
                return Result()
            raise
        if newer(self.cache.pools.get(key), updated):
            self.cache.pools[key] = updated
        return Result()


__all__ = ["PoolReconciler"]

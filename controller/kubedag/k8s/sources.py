"""A DAG's variables and connections on a cluster (:class:`kubedag.app.ports.SourceReader`): the ConfigMaps and
Secrets its ``variablesFrom``/``connectionsFrom`` name, read with GETs by name and cached ``ttl``.

A missing object does not block the DAG: a try whose template needs a value from it fails with a reason naming
it (:func:`kubedag.core.secrets.load_sources`). Every secret value read joins the controller's masker. Connections
reach pods as ``secretKeyRef`` variables (:meth:`SourceCache.secret_env`), never as values in the pod spec.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from kubedag.core.spec.dag import DAG
from kubedag.k8s.client import KubeClient
from kubedag.core.secrets import CONN_ENV_PREFIX, Masker, load_sources


class SourceCache:
    """Reads and caches the sources of each DAG (by namespace and DAG name) for ``ttl``."""

    def __init__(self, client: Callable[[], KubeClient | None], masker: Masker, ttl: timedelta) -> None:
        self._client, self._masker, self._ttl = client, masker, ttl
        self._cache: dict[tuple[str, str], tuple[float, Any, dict[str, tuple[str, str]]]] = {}

    async def __call__(self, namespace: str, dag: DAG) -> Any:
        """The DAG's :class:`kubedag.core.secrets.Sources` (read at most once per ``ttl``)."""
        loop = asyncio.get_running_loop()
        cached = self._cache.get((namespace, dag.dag_id))
        if cached is not None and cached[0] > loop.time():
            return cached[1]
        client = self._client()
        assert client is not None
        objects: dict[tuple[str, str], Any] = {}
        wanted = [("ConfigMap", r["configMapRef"]["name"]) for r in dag.variables_from if r.get("configMapRef")]
        wanted += [("Secret", r["secretRef"]["name"]) for r in (*dag.variables_from, *dag.connections_from) if r.get("secretRef")]
        for kind, name in dict.fromkeys(wanted):
            objects[(kind, name)] = await client.get("v1", "configmaps" if kind == "ConfigMap" else "secrets", namespace, name)
        sources = load_sources(dag.variables_from, dag.connections_from, lambda kind, name: objects.get((kind, name)))
        for secret in sources.masker.secrets:
            self._masker.add(secret)
        secret_env: dict[str, tuple[str, str]] = {}
        for ref in dag.connections_from:
            name = ref["secretRef"]["name"]
            obj = objects.get(("Secret", name)) or {}
            for conn_id in [*(obj.get("data") or {}), *(obj.get("stringData") or {})]:
                secret_env[CONN_ENV_PREFIX + re.sub(r"[^A-Z0-9_]", "_", conn_id.upper())] = (name, conn_id)
        self._cache[(namespace, dag.dag_id)] = (loop.time() + self._ttl.total_seconds(), sources, secret_env)
        return sources

    def secret_env(self, namespace: str, dag: DAG) -> dict[str, tuple[str, str]] | None:
        """``KUBEDAG_CONN_<ID>`` -> ``(Secret name, key)`` of the DAG's connections as last read (None: not read)."""
        if not dag.connections_from:
            return None
        cached = self._cache.get((namespace, dag.dag_id))
        return cached[2] if cached is not None else None


__all__ = ["SourceCache"]

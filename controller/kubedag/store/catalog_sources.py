"""What the local catalog reads from the DAG folder besides DAGs: Pools with their occupancy, the Variables and
Connections the DAGs can read (masked), and each DAG's secrets masker for logs and XComs.

Locally, Variables and Connections are the keys of the ConfigMaps and Secrets that DAGs name in
``spec.variablesFrom`` / ``spec.connectionsFrom`` (:func:`kubedag.core.secrets.load_sources`; the objects are the
folder's, as ``kubectl apply -f folder/`` would create them); Pools are the folder's ``kind: Pool`` manifests plus
``default-pool`` (:attr:`kubedag.local.bag.DagBag.pools`). Pure functions over a
:class:`~kubedag.app.scheduler_ports.FolderScan` and plain rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from kubedag.app.catalog import ConnectionInfo, PoolInfo, VariableInfo
from kubedag.app.scheduler_ports import FolderScan
from kubedag.core.secrets import MASK, Masker, is_sensitive, load_sources, parse_connection, secret_values
from kubedag.core.spec.dag import DAG, DEFAULT_POOL

AIRFLOW_DEFAULT_POOL = "default_pool"
"""The name readers see for kubedag's ``default-pool`` (Airflow's ``default_pool``)."""


def pool_name(name: str) -> str:
    """A pool's name as the catalog shows it: ``default-pool`` is Airflow's ``default_pool``."""
    return AIRFLOW_DEFAULT_POOL if name == DEFAULT_POOL else name


def pools(scan: FolderScan, busy: Iterable[tuple[str, str, str | None]]) -> list[PoolInfo]:
    """Every pool of the folder (``default_pool`` included), ordered by name, with the slots its task instances
    take: ``busy`` holds ``(dag_id, task_id, state)`` of the unfinished task instances of active runs; each counts
    its task's ``poolSlots`` as ``running``, ``queued``, ``scheduled`` or ``deferred`` (Airflow's pool columns)."""
    counts: dict[str, dict[str, int]] = {}
    for dag_id, task_id, state in busy:
        entry = scan.dags.get(dag_id)
        task = entry[0].tasks.get(task_id) if entry is not None else None
        if task is None or state not in ("running", "queued", "scheduled", "deferred"):
            continue
        per = counts.setdefault(task.pool, {})
        per[state] = per.get(state, 0) + task.pool_slots
    out = []
    for name, slots in scan.pools.items():
        c = counts.get(name, {})
        out.append(PoolInfo(name=pool_name(name), slots=slots, running=c.get("running", 0), queued=c.get("queued", 0),
                            scheduled=c.get("scheduled", 0), deferred=c.get("deferred", 0),
                            description="Default pool" if name == DEFAULT_POOL else None))
    return sorted(out, key=lambda p: p.name)


def _refs(scan: FolderScan, attribute: str) -> list[tuple[str, str]]:
    """``(kind, name)`` of every distinct source the folder's DAGs name in ``attribute`` (``variables_from`` or
    ``connections_from``), in DAG order."""
    seen: list[tuple[str, str]] = []
    for dag_id in sorted(scan.dags):
        for ref in getattr(scan.dags[dag_id][0], attribute):
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                name = (ref.get(key) or {}).get("name")
                if name and (kind, name) not in seen:
                    seen.append((kind, name))
    return seen


def variables(scan: FolderScan, masker: Masker) -> list[VariableInfo]:
    """The Variables the folder's DAGs can read, ordered by key: a Secret's values are all ``***``; a ConfigMap's
    under a sensitive key (:func:`kubedag.core.secrets.is_sensitive`) too, and any secret within the others is
    masked (Airflow's masker). A key in several sources: the last one's (as ``envFrom``)."""
    out: dict[str, VariableInfo] = {}
    for kind, name in _refs(scan, "variables_from"):
        obj = scan.objects.get((kind, name))
        if obj is None:
            continue
        if kind == "Secret":
            values = secret_values(obj, f"Secret {name!r}", [])
        else:
            values = {k: "" if v is None else str(v) for k, v in (obj.get("data") or {}).items()}
        for key, value in values.items():
            hidden = kind == "Secret" or is_sensitive(key)
            out[key] = VariableInfo(key=key, value=MASK if hidden else masker.mask(value),
                                    description=f"from {kind} {name}", is_encrypted=kind == "Secret")
    return [out[k] for k in sorted(out)]


def connections(scan: FolderScan) -> list[ConnectionInfo]:
    """The Connections the folder's DAGs can read (the keys of their ``connectionsFrom`` Secrets), ordered by id:
    the password is ``***`` when there is one, and extras under a sensitive key are ``***`` (Airflow's
    ``SecretsMasker.redact``). A value that is not a connection URI shows only its id (``conn_type``
    ``unknown``)."""
    out: dict[str, ConnectionInfo] = {}
    for kind, name in _refs(scan, "connections_from"):
        obj = scan.objects.get((kind, name))
        if obj is None or kind != "Secret":
            continue
        for conn_id, uri in secret_values(obj, f"Secret {name!r}", []).items():
            try:
                conn = parse_connection(uri)
            except ValueError:
                out[conn_id] = ConnectionInfo(connection_id=conn_id, conn_type="unknown",
                                              description=f"from Secret {name} (not a connection URI)")
                continue
            extra = conn.extra_dejson
            own = Masker()
            own.add_connection(uri)
            masked_extra = json.dumps(own.mask_obj(extra)) if conn.extra else None
            out[conn_id] = ConnectionInfo(
                connection_id=conn_id, conn_type=conn.conn_type or "", host=conn.host or None,
                login=conn.login or None, schema=conn.schema or None, port=conn.port,
                password=MASK if conn.password else None, extra=masked_extra,
                description=f"from Secret {name}")
    return [out[k] for k in sorted(out)]


def dag_masker(dag: DAG | None, objects: Mapping[tuple[str, str], Mapping[str, Any]],
               database_url: str | None = None) -> Masker:
    """The secrets of ``dag`` (its ``variablesFrom``/``connectionsFrom`` values, as the runner masks them) and the
    DB URL's password: what a log or XCom of its tries must not show."""
    masker = Masker()
    if dag is not None and (dag.variables_from or dag.connections_from):
        masker = load_sources(dag.variables_from, dag.connections_from,
                              lambda kind, name: objects.get((kind, name))).masker
    if database_url and "@" in database_url:
        masker.add_connection(database_url)
    return masker


__all__ = ["AIRFLOW_DEFAULT_POOL", "connections", "dag_masker", "pool_name", "pools", "variables"]

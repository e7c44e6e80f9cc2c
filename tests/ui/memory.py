"""An in-memory :class:`kubedag.app.catalog.Catalog` and the UI's services around it, for the UI's page tests
and ``benchmarks/ui.py`` (the pages only read; actions are tested end to end on the local metadata DB)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from kubedag.app.catalog import (
    BackfillInfo, ComponentHealth, DagInfo, HealthInfo, Identity, PoolInfo, RunInfo, RunQuery, TaskInstanceInfo,
    TryInfo, Unauthenticated, XComInfo,
)
from kubedag.app.operations import LoadedRun, NotFound
from kubedag.core import engine
from kubedag.core.states import DagRunState, RunType, TaskInstanceState
from kubedag.core.spec.dag import DAG
from kubedag.core.spec.loader import parse_dag

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def chain_dag(dag_id: str = "wide", tasks: int | list[dict[str, Any]] = 5, **spec: Any) -> DAG:
    """A DAG of ``tasks`` command tasks ``t000 -> t001 -> ...`` (or the task manifests given) plus whatever
    ``spec`` adds."""
    if isinstance(tasks, int):
        tasks = [{"name": f"t{i:03d}", "command": ["true"], **({"dependsOn": [f"t{i - 1:03d}"]} if i else {})}
                 for i in range(tasks)]
    body = {"schedule": "@daily", "startDate": "2026-11-01T00:00:00Z", **spec, "tasks": tasks}
    return parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": dag_id},
                      "spec": body})


@dataclass
class MemoryCatalog:
    """DAGs, runs, task instances, tries, logs and XComs held in dicts (see the Catalog port for the meaning)."""

    infos: dict[str, DagInfo] = field(default_factory=dict)
    run_rows: dict[str, list[RunInfo]] = field(default_factory=dict)
    ti_rows: dict[tuple[str, str], list[TaskInstanceInfo]] = field(default_factory=dict)
    try_rows: dict[tuple[str, str, str], list[TryInfo]] = field(default_factory=dict)
    logs: dict[tuple[str, str, str, int], str] = field(default_factory=dict)
    xcom_rows: list[XComInfo] = field(default_factory=list)

    def add_dag(self, dag: DAG | None, *, dag_id: str | None = None, paused: bool = False,
                error: str | None = None) -> None:
        name = dag.dag_id if dag else dag_id
        self.infos[name] = DagInfo(name, dag, paused, error=error,
                                   next_logical_date=None if paused or dag is None else T0 + timedelta(days=30))
        self.run_rows.setdefault(name, [])

    def add_run(self, dag: DAG, index: int, states: dict[str, str | None], *, run_type: str = "scheduled",
                state: str = "success", reasons: dict[str, str] | None = None) -> RunInfo:
        logical = T0 + timedelta(days=index)
        run = RunInfo(dag.dag_id, f"{run_type}__{logical.isoformat()}", run_type, state, logical,
                      start_date=logical, end_date=logical + timedelta(minutes=5) if state in ("success", "failed")
                      else None)
        self.run_rows[dag.dag_id].append(run)
        tis = []
        for task_id in dag.tasks:
            s = states.get(task_id)
            ti = TaskInstanceInfo(dag.dag_id, run.run_id, task_id, s, 1 if s else 0, 1, start_date=logical if s else None,
                                  end_date=logical + timedelta(seconds=42) if s in ("success", "failed") else None,
                                  duration=42.0 if s in ("success", "failed") else None, operator="command",
                                  reason=(reasons or {}).get(task_id))
            tis.append(ti)
            if s:
                self.try_rows[(dag.dag_id, run.run_id, task_id)] = [TryInfo(
                    dag.dag_id, run.run_id, task_id, 1, s, ti.start_date, ti.end_date, ti.duration,
                    exit_code=1 if s == "failed" else 0 if s == "success" else None, hostname="host-1",
                    reason=ti.reason)]
                self.logs[(dag.dag_id, run.run_id, task_id, 1)] = f"log of {task_id} try 1\nstate {s}\n"
        self.ti_rows[(dag.dag_id, run.run_id)] = tis
        return run

    # -- Catalog
    def dags(self) -> list[DagInfo]:
        return [self.infos[k] for k in sorted(self.infos)]

    def dag(self, dag_id: str) -> DagInfo:
        if dag_id not in self.infos:
            raise NotFound(f"no DAG {dag_id!r}")
        return self.infos[dag_id]

    def runs(self, query: RunQuery) -> tuple[list[RunInfo], int]:
        rows = [r for r in self.run_rows.get(query.dag_id, [])]
        rows.sort(key=lambda r: r.logical_date, reverse=query.order_by.startswith("-"))
        return rows[query.offset:query.offset + query.limit], len(rows)

    def run(self, dag_id: str, run_id: str) -> RunInfo:
        for r in self.run_rows.get(dag_id, []):
            if r.run_id == run_id:
                return r
        raise NotFound(f"no run {run_id!r} of DAG {dag_id!r}")

    def task_instances(self, dag_id: str, run_id: str) -> list[TaskInstanceInfo]:
        self.run(dag_id, run_id)
        return self.ti_rows[(dag_id, run_id)]

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[TryInfo]:
        return self.try_rows.get((dag_id, run_id, task_id), [])

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        key = (dag_id, run_id, task_id, try_number)
        if key not in self.logs:
            raise NotFound(f"no try {try_number} of {task_id}")
        return self.logs[key]

    def xcoms(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[XComInfo]:
        return [x for x in self.xcom_rows if (x.dag_id, x.run_id) == (dag_id, run_id)
                and task_id in (None, x.task_id)]

    def pools(self) -> list[PoolInfo]:
        return [PoolInfo("default_pool", 128)]

    def backfills(self, dag_id: str | None = None) -> list[BackfillInfo]:
        return []

    def backfill(self, backfill_id: str) -> BackfillInfo:
        raise NotFound(backfill_id)

    def variables(self) -> list:
        return []

    def connections(self) -> list:
        return []

    def health(self) -> HealthInfo:
        return HealthInfo(ComponentHealth("healthy"), ComponentHealth("healthy"))


@dataclass
class MemoryRuns:
    """``load_run`` of the operations' RunsRepository, read from a :class:`MemoryCatalog` (the task panel's
    "why" plans one engine pass on it); writes are not supported here."""

    catalog: MemoryCatalog

    def load_run(self, dag: DAG, run_id: str) -> LoadedRun:
        info = self.catalog.run(dag.dag_id, run_id)
        run = engine.DagRun(dag.dag_id, run_id, RunType(info.run_type), info.logical_date, info.logical_date,
                            info.logical_date, DagRunState(info.state), info.start_date, info.end_date)
        tis = {ti.task_id: engine.TaskInstance(ti.task_id, TaskInstanceState(ti.state), ti.try_number)
               for ti in self.catalog.task_instances(dag.dag_id, run_id) if ti.state}
        return LoadedRun(run, tis)


class TokenAuth:
    """``Bearer <token>`` -> an identity named after the token's user part (``alice-token`` -> ``alice``)."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens

    def authenticate(self, authorization: str | None) -> Identity:
        if not authorization:
            raise Unauthenticated("no credentials")
        token = authorization.split(" ", 1)[-1]
        if token not in self.tokens:
            raise Unauthenticated("invalid bearer token")
        return Identity(self.tokens[token])


@dataclass
class Rbac:
    """``allowed`` from a set of ``(username, verb, resource)``; records every question asked."""

    grants: set[tuple[str, str, str]] = field(default_factory=set)
    asked: list[tuple[str, str, str, str | None]] = field(default_factory=list)

    def allowed(self, identity: Identity, verb: str, resource: str, namespace: str | None, *,
                name: str | None = None, subresource: str | None = None, group: str = "kubedag.io") -> bool:
        what = f"{resource}/{subresource}" if subresource else resource
        self.asked.append((identity.username, verb, what, namespace))
        return (identity.username, verb, what) in self.grants or (identity.username, "*", "*") in self.grants


@dataclass
class Services:
    """A :class:`kubedag.ui.UiServices` on a :class:`MemoryCatalog` (``runs`` a :class:`MemoryRuns` unless
    given: writes are tested with the metadata DB's)."""

    catalog: MemoryCatalog
    authenticator: Any
    authorizer: Any
    runs: Any = None

    def __post_init__(self) -> None:
        self.runs = self.runs or MemoryRuns(self.catalog)
    dags: Any = None
    pauses: Any = None
    backfills: Any = None
    namespace: str | None = None
    scope: Any = None
    locate: Any = None
    clock: Any = field(default=lambda: T0 + timedelta(days=40))


def with_reason(ti: TaskInstanceInfo, reason: str) -> TaskInstanceInfo:
    return replace(ti, reason=reason)

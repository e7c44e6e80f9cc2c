"""An in-memory kubedag for the REST API's unit tests: one object that is the operations' ports (RunsRepository,
DagSource, PauseFlags), the Catalog over the same runs, and the Backfills port; plus authorizers to test with."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from kubedag.api import ApiServices
from kubedag.api.auth import AllowAll, LocalAuthenticator
from kubedag.app import operations as ops
from kubedag.app.catalog import (
    BackfillInfo, ComponentHealth, ConnectionInfo, DagInfo, HealthInfo, Identity, PoolInfo, RunInfo, RunQuery,
    TaskInstanceInfo, TryInfo, VariableInfo, XComInfo,
)
from kubedag.core import engine
from kubedag.core.spec import parse_dag
from kubedag.core.states import DagRunState, TaskInstanceState

NOW = datetime(2026, 1, 10, 12, tzinfo=UTC)


def dag_doc(name: str, tasks: list[dict], **spec: object) -> dict:
    return {"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": name},
            "spec": {"schedule": "@daily", "startDate": "2026-01-01", "tasks": tasks, **spec}}


ETL = parse_dag(dag_doc("etl", [{"name": "extract", "command": ["true"]},
                                {"name": "load", "dependsOn": ["extract"], "command": ["true"]},
                                {"name": "report", "dependsOn": ["load"], "command": ["true"]}], tags=["sales"]))
OTHER = parse_dag(dag_doc("other", [{"name": "only", "command": ["true"]}]))


@dataclass
class World:
    """The fake kubedag: DAGs, runs (engine objects), paused flags, logs, XComs, backfills."""

    dags: dict = field(default_factory=lambda: {"etl": ETL, "other": OTHER})
    runs: dict = field(default_factory=dict)  # (dag_id, run_id) -> LoadedRun
    paused: dict = field(default_factory=dict)
    logs: dict = field(default_factory=dict)  # (dag, run, task, try) -> text
    xcom: list = field(default_factory=list)
    backfill_rows: dict = field(default_factory=dict)
    order: list = field(default_factory=list)

    # --- DAGs and PauseFlags
    def get_dag(self, name: str):  # noqa: ANN201
        if name not in self.dags:
            raise ops.NotFound(f"DAG {name!r} not found")
        return self.dags[name]

    def is_paused(self, dag) -> bool:  # noqa: ANN001
        return self.paused.get(dag.dag_id if hasattr(dag, "dag_id") else dag, False)

    def set_paused(self, dag, paused: bool) -> bool:  # noqa: ANN001
        name = dag.dag_id if hasattr(dag, "dag_id") else dag
        self.get_dag(name)
        self.paused[name] = paused
        return paused

    # --- RunsRepository
    def create_run(self, dag, run) -> None:  # noqa: ANN001
        if (run.dag_id, run.run_id) in self.runs or any(
                k[0] == run.dag_id and r.run.logical_date == run.logical_date for k, r in self.runs.items()):
            raise ops.AlreadyExists(f"run {run.run_id} exists")
        self.runs[(run.dag_id, run.run_id)] = ops.LoadedRun(run, {})
        self.order.append((run.dag_id, run.run_id))

    def load_run(self, dag, run_id):  # noqa: ANN001, ANN201
        if (dag.dag_id, run_id) not in self.runs:
            raise ops.NotFound(f"run {run_id} not found")
        return self.runs[(dag.dag_id, run_id)]

    def apply(self, dag, change) -> None:  # noqa: ANN001
        old = self.runs[(dag.dag_id, change.run.run_id)]
        self.runs[(dag.dag_id, change.run.run_id)] = ops.LoadedRun(change.run, {**old.tis, **change.updates})

    def delete_run(self, dag_id: str, run_id: str) -> None:
        if self.runs.pop((dag_id, run_id), None) is None:
            raise ops.NotFound(f"run {run_id} not found")

    def runs_by_logical_date(self, dag):  # noqa: ANN001, ANN201
        return {r.run.logical_date: (r.run.run_id, str(r.run.state)) for k, r in self.runs.items() if k[0] == dag.dag_id}

    def set_tis(self, dag_id: str, run_id: str, state: str, **tis: str) -> None:
        """Put a run in ``state`` with task instances ``task=state`` (try 1 each)."""
        loaded = self.runs[(dag_id, run_id)]
        run = replace(loaded.run, state=DagRunState(state), start_date=NOW)
        self.runs[(dag_id, run_id)] = ops.LoadedRun(run, {
            t: engine.TaskInstance(t, TaskInstanceState(s), 1) for t, s in tis.items()})


class Catalog:
    """The Catalog port over a :class:`World`."""

    def __init__(self, world: World) -> None:
        self.w = world

    def dags(self):  # noqa: ANN201
        return [self.dag(n) for n in sorted(self.w.dags)] + [
            DagInfo("broken", None, False, fileloc="/dags/broken.yaml", error="spec.tasks: required")]

    def dag(self, dag_id: str) -> DagInfo:
        if dag_id == "broken":
            return DagInfo("broken", None, False, fileloc="/dags/broken.yaml", error="spec.tasks: required")
        d = self.w.get_dag(dag_id)
        return DagInfo(dag_id, d, self.w.paused.get(dag_id, False), fileloc=f"/dags/{dag_id}.yaml")

    def _info(self, loaded: ops.LoadedRun) -> RunInfo:
        r = loaded.run
        return RunInfo(r.dag_id, r.run_id, str(r.run_type), str(r.state), r.logical_date, r.data_interval_start,
                       r.data_interval_end, start_date=r.start_date, end_date=r.end_date, conf=dict(r.conf))

    def runs(self, query: RunQuery):  # noqa: ANN201
        found = [self._info(self.w.runs[k]) for k in self.w.order if k in self.w.runs
                 and (query.dag_id is None or k[0] == query.dag_id)]
        found = [r for r in found if (not query.states or r.state in query.states)
                 and (not query.run_types or r.run_type in query.run_types)
                 and (query.logical_date_gte is None or r.logical_date >= query.logical_date_gte)
                 and (query.logical_date_lte is None or r.logical_date <= query.logical_date_lte)]
        key = query.order_by.lstrip("-")
        if key != "id":
            found.sort(key=lambda r: getattr(r, key), reverse=query.order_by.startswith("-"))
        elif query.order_by.startswith("-"):
            found.reverse()
        return found[query.offset:query.offset + query.limit], len(found)

    def run(self, dag_id: str, run_id: str) -> RunInfo:
        if (dag_id, run_id) not in self.w.runs:
            raise ops.NotFound(f"run {run_id} of {dag_id} not found")
        return self._info(self.w.runs[(dag_id, run_id)])

    def task_instances(self, dag_id: str, run_id: str):  # noqa: ANN201
        loaded = self.w.runs.get((dag_id, run_id))
        if loaded is None:
            raise ops.NotFound(f"run {run_id} not found")
        out = []
        for task_id, task in sorted(self.w.dags[dag_id].tasks.items()):
            ti = loaded.tis.get(task_id)
            out.append(TaskInstanceInfo(dag_id, run_id, task_id, str(ti.state) if ti else None,
                                        ti.try_number if ti else 0, task.retries + 1, pool=task.pool,
                                        logical_date=loaded.run.logical_date, operator="command",
                                        rendered_fields={"env": {"API_TOKEN": "s3cr3t", "REGION": "eu"}}))
        return out

    def tries(self, dag_id: str, run_id: str, task_id: str):  # noqa: ANN201
        ti = next(t for t in self.task_instances(dag_id, run_id) if t.task_id == task_id)
        return [TryInfo(dag_id, run_id, task_id, n, ti.state if n == ti.try_number else "failed")
                for n in range(1, ti.try_number + 1)]

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        key = (dag_id, run_id, task_id, try_number)
        if key not in self.w.logs:
            raise ops.NotFound(f"no try {try_number} of {task_id}")
        return self.w.logs[key]

    def xcoms(self, dag_id: str, run_id: str, task_id: str | None = None):  # noqa: ANN201
        return [x for x in self.w.xcom if (x.dag_id, x.run_id) == (dag_id, run_id) and task_id in (None, x.task_id)]

    def pools(self):  # noqa: ANN201
        return [PoolInfo("default_pool", 128, running=1), PoolInfo("db", 2, running=2, queued=1)]

    def backfills(self, dag_id: str | None = None):  # noqa: ANN201
        return [b for b in reversed(self.w.backfill_rows.values()) if dag_id in (None, b.dag_id)]

    def backfill(self, backfill_id: str) -> BackfillInfo:
        if backfill_id not in self.w.backfill_rows:
            raise ops.NotFound(f"backfill {backfill_id} not found")
        return self.w.backfill_rows[backfill_id]

    def variables(self):  # noqa: ANN201
        return [VariableInfo("region", "eu-west-1"), VariableInfo("db_password", "***")]

    def connections(self):  # noqa: ANN201
        return [ConnectionInfo("warehouse", "postgres", host="db", login="etl", password="***", port=5432)]

    def health(self) -> HealthInfo:
        return HealthInfo(ComponentHealth("healthy"), ComponentHealth("healthy", NOW))


class Backfills:
    """The Backfills port over a :class:`World` (numbered like Airflow's)."""

    def __init__(self, world: World) -> None:
        self.w = world

    def create(self, request):  # noqa: ANN001, ANN201
        self.w.get_dag(request.dag_id)
        if any(b.dag_id == request.dag_id and b.completed_at is None for b in self.w.backfill_rows.values()):
            raise ops.AlreadyExists(f"an active backfill of {request.dag_id} exists")
        ops.backfill_intervals(self.w.dags[request.dag_id], request.from_date, request.to_date,
                               fields=("from_date", "to_date"))
        bid = str(len(self.w.backfill_rows) + 1)
        info = BackfillInfo(bid, request.dag_id, request.from_date, request.to_date, request.reprocess_behavior,
                            request.max_active_runs, dag_run_conf=dict(request.dag_run_conf), created_at=NOW)
        self.w.backfill_rows[bid] = info
        return info

    def set_paused(self, backfill_id: str, paused: bool):  # noqa: ANN201
        b = self.w.backfill_rows[backfill_id]
        if b.completed_at is not None:
            raise ops.OperationError(f"backfill {backfill_id} has completed")
        self.w.backfill_rows[backfill_id] = replace(b, is_paused=paused)
        return self.w.backfill_rows[backfill_id]

    def cancel(self, backfill_id: str):  # noqa: ANN201
        b = self.w.backfill_rows[backfill_id]
        self.w.backfill_rows[backfill_id] = replace(b, cancelled=True, completed_at=NOW)
        return self.w.backfill_rows[backfill_id]


class DagSource:
    def __init__(self, world: World) -> None:
        self.w = world

    def dag(self, name: str):  # noqa: ANN201
        return self.w.get_dag(name)

    def dags(self):  # noqa: ANN201
        return [self.w.dags[n] for n in sorted(self.w.dags)]


@dataclass
class Deny:
    """An Authorizer refusing exactly ``denied`` (``(verb, resource)`` pairs, ``"*"`` for every one) and recording
    every question asked."""

    denied: set = field(default_factory=set)
    asked: list = field(default_factory=list)

    def allowed(self, identity: Identity, verb: str, resource: str, namespace, *, name=None,  # noqa: ANN001
                subresource=None, group="kubedag.io") -> bool:  # noqa: ANN001
        what = f"{resource}/{subresource}" if subresource else resource
        self.asked.append((identity.username, verb, what, namespace, name))
        return "*" not in self.denied and (verb, what) not in self.denied


def make_services(world: World | None = None, *, authenticator=None, authorizer=None,  # noqa: ANN001
                  namespace: str | None = None) -> tuple[ApiServices, World]:
    w = world or World()
    return ApiServices(catalog=Catalog(w), runs=w, dags=DagSource(w), pauses=w, backfills=Backfills(w),
                       authenticator=authenticator or LocalAuthenticator(), authorizer=authorizer or AllowAll(),
                       clock=lambda: NOW, version="9.9.9", namespace=namespace), w


__all__ = ["NOW", "World", "Catalog", "Backfills", "DagSource", "Deny", "make_services", "XComInfo"]

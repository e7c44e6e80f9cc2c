"""DAG, DAGRun, Pool and Backfill objects read as the records of :mod:`kubedag.app.catalog` (pure functions of
API objects, no I/O), and the namespace <-> ``dag_id`` mapping of the cluster's REST API.

**dag_id on a cluster.** The API server has a *home* namespace (its ``--namespace``, by default its own): a DAG
there is served under its ``metadata.name``, exactly the id an Airflow user knows and the one the CLI takes with
``-n``. DAGs of the other namespaces the API serves are ``<namespace>.<name>``: Kubernetes names and namespaces
are DNS-1123 labels (no dots), Airflow's dag_id allows dots, so the split is unambiguous and no two DAGs share an
id; a URL path segment stays plain (a ``/`` would not). The same rule names pools and backfills. An Airflow user
who runs one API server per team namespace sees plain ids, as with one Airflow per team; a platform team serving
several namespaces from one server sees each DAG once, under a stable id.

**History.** The controller archives runs, tries, logs and XComs in its metadata DB under the DB's dag_id
``<namespace>/<name>`` (:func:`kubedag.store.history.db_dag_id`); :func:`history_dag_id` gives it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from kubedag.app.catalog import BackfillInfo, DagInfo, PoolInfo, RunInfo, RunQuery
from kubedag.core import timetable
from kubedag.core.spec.dag import DAG, DEFAULT_POOL, DEFAULT_POOL_SLOTS, to_utc
from kubedag.core.spec.models import parse_datetime
from kubedag.k8s.backfill import LABEL_BACKFILL
from kubedag.k8s.dags import validate
from kubedag.k8s.observe import parse_time

ANNOTATION_NOTE = "kubedag.io/note"
"""A DAGRun's note (Airflow's ``DagRun.note``), set by the API's trigger or patch."""
ANNOTATION_TRIGGERED_BY = "kubedag.io/triggered-by"


@dataclass(frozen=True)
class Namespaces:
    """The namespaces an API server serves: ``home`` (plain ids) first, then ``others`` (``<ns>.<name>`` ids)."""

    home: str
    others: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return (self.home, *(n for n in self.others if n != self.home))

    def api_id(self, namespace: str, name: str) -> str:
        """The REST API's id of object ``name`` in ``namespace``."""
        return name if namespace == self.home else f"{namespace}.{name}"

    def locate(self, api_id: str) -> tuple[str, str] | None:
        """``(namespace, name)`` of an API id, or None when it names no namespace this server serves."""
        namespace, dot, name = api_id.partition(".")
        if not dot:
            return self.home, api_id
        if namespace in self.all and namespace != self.home and name and "." not in name:
            return namespace, name
        return None


def history_dag_id(namespace: str, name: str) -> str:
    """The metadata DB's dag_id of DAG ``name`` in ``namespace`` (as the controller archives it)."""
    return f"{namespace}/{name}"


def _aware(value: Any, tz: str = "UTC") -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return to_utc(parse_datetime(value), tz)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------------------------------------ DAGs
def dag_info(body: Mapping[str, Any], ns: Namespaces) -> DagInfo:
    """A DAG object as a :class:`DagInfo`: parsed and checked as the controller does
    (:func:`kubedag.k8s.dags.validate`), so an invalid DAG has ``dag`` None and ``error`` its field errors;
    ``is_paused`` from ``spec.paused``; ``next_run_after`` from ``status.nextRunAt`` and the next data interval
    the one ending then (as Airflow's ``next_dagrun_data_interval``)."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    namespace, name = meta.get("namespace") or ns.home, meta.get("name") or ""
    parsed = validate(dict(body))
    error = "; ".join(parsed.errors) if parsed.dag is None else None
    next_at = parse_time(status.get("nextRunAt"))
    start = end = logical = None
    if parsed.dag is not None and next_at is not None and parsed.dag.schedule:
        try:
            interval = parsed.dag.timetable.infer_manual_data_interval(run_after=next_at)
            start, end = interval.start, interval.end
            logical = start
        except (ValueError, OverflowError):
            pass
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return DagInfo(
        dag_id=ns.api_id(namespace, name), dag=parsed.dag, is_paused=bool((body.get("spec") or {}).get("paused")),
        namespace=namespace, fileloc=f"{namespace}/{name}", error=error,
        last_parsed_time=parse_time(ready.get("lastTransitionTime")) or parse_time(meta.get("creationTimestamp")),
        next_logical_date=logical, next_data_interval_start=start, next_data_interval_end=end,
        next_run_after=next_at,
    )


# ------------------------------------------------------------------------------------------------ runs
def run_info(body: Mapping[str, Any], ns: Namespaces, dag: DAG | None = None, *, tz: str | None = None) -> RunInfo:
    """A DAGRun object as a :class:`RunInfo`. Missing fields are filled as the controller fills them
    (:func:`kubedag.k8s.observe.run_from_object`): run type ``manual``, logical date the creation time, run id
    ``<type>__<logical date>``; the data interval from the spec, else from ``dag``'s timetable when given
    (:func:`fill_interval`; else None). Naive dates are read in ``tz`` (default: the DAG's timezone, else UTC).
    ``queued_at``: the object's creation; ``run_after``: the data interval's end for a scheduled or backfill run,
    the logical date for a manual one."""
    meta, spec, status = body.get("metadata") or {}, body.get("spec") or {}, body.get("status") or {}
    tz = tz or (dag.timezone if dag is not None else "UTC")
    created = parse_time(meta.get("creationTimestamp"))
    run_type = spec.get("runType") if spec.get("runType") in timetable.RUN_TYPES else "manual"
    logical = _aware(spec.get("logicalDate"), tz) or created
    start, end = _aware(spec.get("dataIntervalStart"), tz), _aware(spec.get("dataIntervalEnd"), tz)
    run_id = spec.get("runId") or (timetable.run_id(run_type, logical) if logical is not None else meta.get("name"))
    annotations = meta.get("annotations") or {}
    namespace = meta.get("namespace") or ns.home
    backfill = (meta.get("labels") or {}).get(LABEL_BACKFILL)
    run = RunInfo(
        dag_id=ns.api_id(namespace, spec.get("dagName") or ""), run_id=str(run_id), run_type=run_type,
        state=status.get("phase") or "queued", logical_date=logical, data_interval_start=start,
        data_interval_end=end, run_after=logical if run_type == "manual" else (end or logical), queued_at=created,
        start_date=parse_time(status.get("startedAt")), end_date=parse_time(status.get("finishedAt")),
        conf=dict(spec.get("conf") or {}), note=annotations.get(ANNOTATION_NOTE),
        triggered_by=annotations.get(ANNOTATION_TRIGGERED_BY) and "dag_trigger" or None,
        namespace=namespace, object_name=meta.get("name"),
        backfill_id=ns.api_id(namespace, backfill) if backfill else None,
    )
    return fill_interval(run, dag) if dag is not None else run


def fill_interval(run: RunInfo, dag: DAG) -> RunInfo:
    """``run`` with the data interval its spec left out inferred from ``dag``'s timetable, as the controller
    does (a manual run: ``infer_manual_data_interval``; else the interval starting at the logical date), and
    ``run_after`` following it. Costs a timetable step (cron): a listing does it for its page only."""
    if (run.data_interval_start is not None and run.data_interval_end is not None) or run.logical_date is None:
        return run
    try:
        interval = (dag.timetable.infer_manual_data_interval(run_after=run.logical_date) if run.run_type == "manual"
                    else timetable.infer_automated_data_interval(dag.timetable, run.logical_date))
    except (ValueError, OverflowError):
        return run
    return replace(run, data_interval_start=interval.start, data_interval_end=interval.end,
                   run_after=run.logical_date if run.run_type == "manual" else interval.end)


INTERVAL_ORDERS = frozenset({"data_interval_start", "data_interval_end", "run_after"})
"""``order_by`` fields that need every run's data interval before paging."""


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ORDER_FIELDS = {"id": "queued_at", "run_id": "run_id", "dag_run_id": "run_id", "state": "state",
                 "logical_date": "logical_date", "start_date": "start_date", "end_date": "end_date",
                 "run_after": "run_after", "queued_at": "queued_at", "dag_id": "dag_id", "run_type": "run_type",
                 "data_interval_start": "data_interval_start", "data_interval_end": "data_interval_end"}


def _between(value: datetime | None, low: datetime | None, high: datetime | None) -> bool:
    if low is None and high is None:
        return True
    return value is not None and (low is None or value >= low) and (high is None or value <= high)


def matches(run: RunInfo, query: RunQuery) -> bool:
    """Whether ``run`` passes the filters of ``query`` (every bound inclusive), paging aside."""
    return ((not query.states or run.state in query.states)
            and (not query.run_types or run.run_type in query.run_types)
            and _between(run.logical_date, query.logical_date_gte, query.logical_date_lte)
            and _between(run.start_date, query.start_date_gte, query.start_date_lte)
            and _between(run.end_date, query.end_date_gte, query.end_date_lte))


def order_and_page(runs: Sequence[RunInfo], query: RunQuery) -> tuple[list[RunInfo], int]:
    """Sort by ``query.order_by`` (``-`` first: descending; ``id``: creation order, as Airflow's row id; None
    values last) with the run id as tie-break, then page. Raises ValueError naming ``order_by`` for an unknown
    field."""
    descending = query.order_by.startswith("-")
    field_name = _ORDER_FIELDS.get(query.order_by.lstrip("-"))
    if field_name is None:
        raise ValueError(f"order_by: {query.order_by!r} is not one of {', '.join(sorted(_ORDER_FIELDS))}")
    present = [r for r in runs if getattr(r, field_name) is not None]
    absent = [r for r in runs if getattr(r, field_name) is None]
    present.sort(key=lambda r: (getattr(r, field_name), r.dag_id, r.run_id), reverse=descending)
    ordered = present + sorted(absent, key=lambda r: (r.dag_id, r.run_id))
    return ordered[query.offset: query.offset + query.limit], len(ordered)


def from_history(record: Any, ns: Namespaces, visible: Sequence[str]) -> Any:
    """A history record (any catalog record with a ``dag_id``) with its DB dag_id ``<ns>/<name>`` turned into
    the API's id, or None when its namespace is not among ``visible``."""
    namespace, slash, name = str(record.dag_id).partition("/")
    if not slash or namespace not in visible:
        return None
    return replace(record, dag_id=ns.api_id(namespace, name))


# ------------------------------------------------------------------------------------------------ pools, backfills
def pool_info(body: Mapping[str, Any], ns: Namespaces) -> PoolInfo:
    """A Pool object with its status' usage (written by the controller)."""
    meta, spec, status = body.get("metadata") or {}, body.get("spec") or {}, body.get("status") or {}
    namespace = meta.get("namespace") or ns.home
    return PoolInfo(name=ns.api_id(namespace, meta.get("name") or ""), slots=int(spec.get("slots") or 0),
                    running=int(status.get("running") or 0), queued=int(status.get("queued") or 0),
                    description=spec.get("description"), namespace=namespace)


def default_pool(namespace: str, ns: Namespaces) -> PoolInfo:
    """The default pool a namespace always has (128 slots, as Airflow's ``default_pool``)."""
    return PoolInfo(name=ns.api_id(namespace, DEFAULT_POOL), slots=DEFAULT_POOL_SLOTS,
                    description="the default pool (always exists)", namespace=namespace)


def reprocess_behavior(spec: Mapping[str, Any]) -> str:
    """Airflow 3's reprocess_behavior of a Backfill spec (``resetDagRuns`` reads as ``completed``)."""
    return spec.get("reprocessBehavior") or ("completed" if spec.get("resetDagRuns") else "none")


def backfill_info(body: Mapping[str, Any], ns: Namespaces, tz: str = "UTC") -> BackfillInfo:
    """A Backfill object as a :class:`BackfillInfo` (``completed_at``: its ``status.finishedAt``; ``runs_done``:
    its finished runs)."""
    meta, spec, status = body.get("metadata") or {}, body.get("spec") or {}, body.get("status") or {}
    namespace = meta.get("namespace") or ns.home
    created = parse_time(meta.get("creationTimestamp"))
    return BackfillInfo(
        id=ns.api_id(namespace, meta.get("name") or ""), dag_id=ns.api_id(namespace, spec.get("dagName") or ""),
        from_date=_aware(spec.get("startDate"), tz) or _EPOCH, to_date=_aware(spec.get("endDate"), tz) or _EPOCH,
        reprocess_behavior=reprocess_behavior(spec), max_active_runs=spec.get("maxActiveRuns"),
        is_paused=bool(spec.get("paused")), cancelled=bool(spec.get("cancelled")),
        dag_run_conf=dict(spec.get("conf") or {}), created_at=created,
        updated_at=parse_time(next((c.get("lastTransitionTime") for c in status.get("conditions") or []), None)) or created,
        completed_at=parse_time(status.get("finishedAt")) if status.get("phase") in ("success", "failed", "cancelled") else None,
        runs_total=int(status.get("total") or 0),
        runs_done=int(status.get("succeeded") or 0) + int(status.get("failed") or 0), namespace=namespace,
    )


__all__ = ["ANNOTATION_NOTE", "Namespaces", "backfill_info", "dag_info", "default_pool", "from_history",
           "fill_interval", "history_dag_id", "matches", "order_and_page", "pool_info", "reprocess_behavior", "run_info"]

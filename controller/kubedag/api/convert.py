"""From the catalog's records (:mod:`kubedag.app.catalog`) to Airflow 3's response models
(:mod:`kubedag.api.schemas`). Pure functions; every datetime stays UTC-aware."""

from __future__ import annotations

import base64
import uuid
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from kubedag.api.schemas.dags import (
    DAGDetailsResponse, DAGResponse, DagTagResponse, TaskInstanceState, TaskResponse, TimeDelta,
)
from kubedag.api.schemas.other import BackfillResponse
from kubedag.api.schemas.runs import (
    DAGRunResponse, TaskInstanceHistoryResponse, TaskInstanceResponse, TriggeredBy, XComResponseNative,
)
from kubedag.app.catalog import BackfillInfo, DagInfo, RunInfo, TaskInstanceInfo, TryInfo, XComInfo
from kubedag.core.secrets import MASK, is_sensitive
from kubedag.core.spec.dag import DAG, Task

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TI_STATES = frozenset(get_args(TaskInstanceState))
TRIGGERED_BY = frozenset(get_args(TriggeredBy))
TI_NAMESPACE = uuid.UUID("6f1d8a52-3c1e-4e6b-9a57-2b0f4d1c9e11")
"""The namespace of the task instances' UUIDs (uuid5 of ``dag/run/task``)."""


def task_kind(task: Task) -> str:
    """A task's kind, Airflow's operator name: ``sensor``, ``trigger``, ``branch``, ``empty`` or ``command``."""
    if task.sensor is not None:
        return "sensor"
    if task.trigger is not None:
        return "trigger"
    if task.branch:
        return "branch"
    return "empty" if task.empty else "command"


def timedelta_model(value: timedelta | None) -> TimeDelta | None:
    """Airflow's ``TimeDelta`` document of ``value``."""
    if value is None:
        return None
    return TimeDelta(days=value.days, seconds=value.seconds, microseconds=value.microseconds)


def file_token(fileloc: str) -> str:
    """The fileloc, URL-safe base64 (Airflow's ``file_token`` is a signed fileloc)."""
    return base64.urlsafe_b64encode(fileloc.encode()).decode()


def owners(dag: DAG) -> list[str]:
    """The DAG's owners: its own, else its tasks' (sorted, unique), else ``airflow`` (Airflow's default)."""
    found = sorted({o for o in [dag.owner, *(t.owner for t in dag.tasks.values())] if o})
    return found or ["airflow"]


def dag_response(info: DagInfo) -> DAGResponse:
    """``DAGResponse`` of a valid DAG (``info.dag`` not None)."""
    dag = info.dag
    assert dag is not None
    fileloc = info.fileloc or f"{info.namespace or ''}/{info.dag_id}"
    return DAGResponse(
        dag_id=info.dag_id, dag_display_name=info.dag_id, is_paused=info.is_paused, is_stale=False,
        last_parsed_time=info.last_parsed_time, fileloc=fileloc, description=dag.description,
        timetable_summary=dag.schedule, timetable_description=dag.schedule, timetable_partitioned=False,
        timetable_periodic=dag.schedule is not None,
        tags=[DagTagResponse(name=t, dag_id=info.dag_id, dag_display_name=info.dag_id) for t in dag.tags],
        max_active_tasks=dag.max_active_tasks, max_active_runs=dag.max_active_runs,
        max_consecutive_failed_dag_runs=0, has_task_concurrency_limits=False, has_import_errors=False,
        next_dagrun_logical_date=info.next_logical_date, next_dagrun_data_interval_start=info.next_data_interval_start,
        next_dagrun_data_interval_end=info.next_data_interval_end, next_dagrun_run_after=info.next_run_after,
        owners=owners(dag), is_backfillable=dag.schedule is not None, file_token=file_token(fileloc),
    )


def dag_details(info: DagInfo) -> DAGDetailsResponse:
    """``DAGDetailsResponse``: :func:`dag_response` with the schedule's details."""
    dag = info.dag
    assert dag is not None
    timeout = dag.dagrun_timeout
    return DAGDetailsResponse(
        **dag_response(info).model_dump(), catchup=dag.catchup, start_date=dag.start_date, end_date=dag.end_date,
        dag_run_timeout=f"PT{timeout.total_seconds():g}S" if timeout else None, params=dict(dag.params),
        render_template_as_native_obj=False, timezone=dag.timezone, last_parsed=info.last_parsed_time,
        concurrency=dag.max_active_tasks, is_paused_upon_creation=dag.paused,
    )


def task_response(dag: DAG, task: Task) -> TaskResponse:
    """``TaskResponse`` of one task of ``dag``."""
    downstream = sorted(t.task_id for t in dag.tasks.values() if task.task_id in t.upstream)
    return TaskResponse(
        task_id=task.task_id, task_display_name=task.task_id, owner=task.owner or dag.owner or "airflow",
        start_date=dag.start_date, end_date=dag.end_date, trigger_rule=str(task.trigger_rule),
        depends_on_past=False, wait_for_downstream=False, retries=task.retries, pool=task.pool,
        pool_slots=task.pool_slots, execution_timeout=timedelta_model(task.execution_timeout),
        retry_delay=timedelta_model(task.retry_delay),
        retry_exponential_backoff=2.0 if task.retry_exponential_backoff else 0.0,
        priority_weight=task.priority_weight, weight_rule=task.weight_rule, ui_color="#fff", ui_fgcolor="#000",
        template_fields=["command", "args", "env"], downstream_task_ids=downstream, operator_name=task_kind(task),
        params={}, is_mapped=False, extra_links=[],
    )


def run_after(run: RunInfo) -> datetime:
    """When ``run`` was due: its ``run_after``, else its logical date, else when it was queued or started."""
    return run.run_after or run.logical_date or run.queued_at or run.start_date or EPOCH


def duration(start: datetime | None, end: datetime | None) -> float | None:
    """Seconds from ``start`` to ``end`` when both are known."""
    return (end - start).total_seconds() if start and end else None


def triggered_by(run: RunInfo) -> str | None:
    """Airflow's ``triggered_by`` of ``run``: the catalog's when it is one of Airflow's, else from the run type."""
    if run.triggered_by in TRIGGERED_BY:
        return run.triggered_by
    return {"scheduled": "timetable", "backfill": "backfill"}.get(run.run_type)


def run_response(run: RunInfo) -> DAGRunResponse:
    """``DAGRunResponse`` of one run."""
    return DAGRunResponse(
        dag_run_id=run.run_id, dag_id=run.dag_id, logical_date=run.logical_date, queued_at=run.queued_at,
        start_date=run.start_date, end_date=run.end_date, duration=duration(run.start_date, run.end_date),
        data_interval_start=run.data_interval_start, data_interval_end=run.data_interval_end,
        run_after=run_after(run), run_type=run.run_type, state=run.state, triggered_by=triggered_by(run),
        conf=mask_values(dict(run.conf)), note=run.note, dag_versions=[], dag_display_name=run.dag_id,
    )


def ti_state(state: str | None) -> str | None:
    """A task instance state Airflow knows, or None (Airflow's "no status", kubedag's ``none``)."""
    return state if state in TI_STATES else None


def ti_id(dag_id: str, run_id: str, task_id: str) -> str:
    """A stable UUID of one task instance (Airflow's ``TaskInstance.id``)."""
    return str(uuid.uuid5(TI_NAMESPACE, f"{dag_id}/{run_id}/{task_id}"))


def mask_values(obj: Any, key: object = None) -> Any:
    """``obj`` with every value under a sensitive key (:func:`kubedag.core.secrets.is_sensitive`, Airflow's
    ``should_hide_value_for_key``) replaced by ``***``, recursively. Defence in depth: the catalog masks the
    secrets it knows by value."""
    if is_sensitive(key) and obj is not None and not isinstance(obj, (dict, list)):
        return MASK
    if isinstance(obj, Mapping):
        return {k: mask_values(v, k) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [mask_values(v) for v in obj]
    return obj


def ti_response(ti: TaskInstanceInfo, executor: str) -> TaskInstanceResponse:
    """``TaskInstanceResponse`` of one task instance; ``executor``: ``local`` or ``kubernetes``."""
    return TaskInstanceResponse(
        id=ti_id(ti.dag_id, ti.run_id, ti.task_id), task_id=ti.task_id, dag_id=ti.dag_id, dag_run_id=ti.run_id,
        map_index=-1, logical_date=ti.logical_date, run_after=ti.run_after or ti.logical_date or EPOCH,
        start_date=ti.start_date, end_date=ti.end_date, duration=ti.duration, state=ti_state(ti.state),
        try_number=ti.try_number, max_tries=ti.max_tries, task_display_name=ti.task_id, dag_display_name=ti.dag_id,
        hostname=ti.hostname, pool=ti.pool, pool_slots=ti.pool_slots, priority_weight=ti.priority_weight,
        operator=ti.operator, operator_name=ti.operator, queued_when=ti.queued_at, executor=executor,
        executor_config="{}", rendered_fields=mask_values(dict(ti.rendered_fields)),
    )


def try_response(t: TryInfo, ti: TaskInstanceInfo | None, executor: str) -> TaskInstanceHistoryResponse:
    """``TaskInstanceHistoryResponse`` of one try (``ti``: its task instance, for pool and max tries)."""
    return TaskInstanceHistoryResponse(
        task_id=t.task_id, dag_id=t.dag_id, dag_run_id=t.run_id, map_index=-1, start_date=t.start_date,
        end_date=t.end_date, duration=t.duration if t.duration is not None else duration(t.start_date, t.end_date),
        state=ti_state(t.state), try_number=t.try_number, max_tries=ti.max_tries if ti else t.try_number,
        task_display_name=t.task_id, dag_display_name=t.dag_id, hostname=t.hostname,
        pool=ti.pool if ti else "default_pool", pool_slots=ti.pool_slots if ti else 1,
        priority_weight=ti.priority_weight if ti else None, operator=ti.operator if ti else None,
        operator_name=ti.operator if ti else None, queued_when=t.queued_at, pid=t.pid, executor=executor,
        executor_config="{}",
    )


def xcom_response(x: XComInfo, run: RunInfo | None) -> XComResponseNative:
    """``XComResponseNative`` of one XCom (``run``: its run, for ``run_after``)."""
    return XComResponseNative(
        key=x.key, timestamp=x.timestamp or (run.end_date or run.start_date if run else None) or EPOCH,
        logical_date=x.logical_date or (run.logical_date if run else None), map_index=x.map_index,
        task_id=x.task_id, dag_id=x.dag_id, run_id=x.run_id, dag_display_name=x.dag_id, task_display_name=x.task_id,
        run_after=run_after(run) if run else (x.logical_date or EPOCH), value=mask_values(x.value, x.key),
    )


def backfill_number(backfill_id: str) -> int:
    """Airflow's integer backfill id of a backfill: its name when it is a number, else the CRC-32 of its name."""
    return int(backfill_id) if backfill_id.isdigit() else zlib.crc32(backfill_id.encode())


def backfill_response(b: BackfillInfo) -> BackfillResponse:
    """``BackfillResponse`` of one backfill."""
    created = b.created_at or EPOCH
    return BackfillResponse(
        id=backfill_number(b.id), dag_id=b.dag_id, from_date=b.from_date, to_date=b.to_date,
        dag_run_conf=mask_values(dict(b.dag_run_conf)), is_paused=b.is_paused,
        reprocess_behavior=b.reprocess_behavior if b.reprocess_behavior in ("failed", "completed") else "none",
        max_active_runs=b.max_active_runs if b.max_active_runs is not None else 10, created_at=created,
        completed_at=b.completed_at, updated_at=b.updated_at or created, dag_display_name=b.dag_id,
    )

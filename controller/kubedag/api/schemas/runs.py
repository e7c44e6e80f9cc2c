"""Airflow 3's REST API models for DAG runs, task instances, their tries, logs and XComs, field for field as in
its OpenAPI document, so that ``apache-airflow-client`` 3.x reads our answers and sends us its bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kubedag.api.schemas.dags import Body, DagRunState, DagRunType, TaskInstanceState

TriggeredBy = Literal["cli", "operator", "rest_api", "ui", "test", "timetable", "asset", "backfill"]


class DagVersionResponse(BaseModel):
    id: str
    version_number: int
    dag_id: str
    bundle_name: str | None = None
    bundle_version: str | None = None
    created_at: datetime
    dag_display_name: str
    bundle_url: str | None = None


class DAGRunResponse(BaseModel):
    """Airflow's ``DAGRunResponse``. ``dag_versions`` is empty: kubedag keeps no DAG versions.
    ``run_after``: when the run was due (its logical date, or when it was queued)."""

    dag_run_id: str
    dag_id: str
    logical_date: datetime | None = None
    queued_at: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    duration: float | None = None
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    run_after: datetime
    last_scheduling_decision: datetime | None = None
    run_type: DagRunType
    state: DagRunState
    triggered_by: TriggeredBy | None = None
    triggering_user_name: str | None = None
    conf: dict[str, Any] | None = None
    note: str | None = None
    dag_versions: list[DagVersionResponse]
    bundle_version: str | None = None
    dag_display_name: str
    partition_key: str | None = None
    partition_date: datetime | None = None


class CursorPage(BaseModel):
    """The paging fields of Airflow 3's cursor-paged collections (``dagRuns``, ``taskInstances``): a total that
    may be omitted past ``total_entries_limit``, and opaque cursors to the next and previous pages."""

    total_entries: int | None = None
    next_cursor: str | None = None
    previous_cursor: str | None = None
    total_entries_limit: int | None = None


class DAGRunCollectionResponse(CursorPage):
    dag_runs: list[DAGRunResponse]


class TriggerDAGRunPostBody(Body):
    """``POST /dags/{dag_id}/dagRuns``. ``logical_date`` null or absent: now (Airflow 2's default; kubedag runs
    always have one). ``note`` is kept on a cluster (the DAGRun's ``kubedag.io/note``), dropped locally."""

    dag_run_id: str | None = None
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    logical_date: datetime | None = None
    run_after: datetime | None = None
    conf: dict[str, Any] | None = None
    note: str | None = None
    partition_key: str | None = None


class DAGRunPatchBody(Body):
    """``PATCH /dags/{dag_id}/dagRuns/{dag_run_id}``: ``state`` success/failed (``queued`` is refused, 400);
    ``note``: kept on a cluster (the DAGRun's ``kubedag.io/note``), refused locally (400)."""

    state: Literal["queued", "success", "failed"] | None = None
    note: str | None = Field(None, max_length=1000)


class DAGRunClearBody(Body):
    """``POST …/dagRuns/{dag_run_id}/clear``: every task instance (only the failed ones with ``only_failed``);
    ``dry_run`` (Airflow's default: true) lists them without clearing."""

    dry_run: bool = True
    only_failed: bool = False
    only_new: bool = False
    run_on_latest_version: bool | None = None
    note: str | None = Field(None, max_length=1000)


class ClearTaskInstancesBody(Body):
    """``POST /dags/{dag_id}/clearTaskInstances``. Supported: ``dry_run``, ``task_ids`` (names, or
    ``[name, map_index]`` pairs whose index is -1), ``dag_run_id`` (else every run whose logical date is in
    ``[start_date, end_date]``), ``only_failed``, ``include_upstream``/``include_downstream``, ``reset_dag_runs``
    (a finished run is always reopened, as Airflow's default true). ``include_past``/``include_future``/
    ``only_running``/``prevent_running_task`` true are refused (400)."""

    dry_run: bool = True
    start_date: datetime | None = None
    end_date: datetime | None = None
    only_failed: bool = True
    only_running: bool = False
    reset_dag_runs: bool = True
    task_ids: list[str | tuple[str, int]] | None = None
    dag_run_id: str | None = None
    include_upstream: bool = False
    include_downstream: bool = False
    include_future: bool = False
    include_past: bool = False
    run_on_latest_version: bool | None = None
    prevent_running_task: bool = False
    note: str | None = Field(None, max_length=1000)


class TaskInstanceHistoryResponse(BaseModel):
    """One try (Airflow's task instance history row)."""

    task_id: str
    dag_id: str
    dag_run_id: str
    map_index: int
    start_date: datetime | None = None
    end_date: datetime | None = None
    duration: float | None = None
    state: TaskInstanceState | None = None
    try_number: int
    max_tries: int
    task_display_name: str
    dag_display_name: str
    hostname: str | None = None
    unixname: str | None = None
    pool: str
    pool_slots: int
    queue: str | None = None
    priority_weight: int | None = None
    operator: str | None = None
    operator_name: str | None = None
    queued_when: datetime | None = None
    scheduled_when: datetime | None = None
    pid: int | None = None
    executor: str | None = None
    executor_config: str
    dag_version: DagVersionResponse | None = None


class TaskInstanceResponse(TaskInstanceHistoryResponse):
    """Airflow's ``TaskInstanceResponse``: a try's fields and the task instance's own. ``id``: a UUID derived from
    (dag, run, task) so it is stable; ``executor``: ``local`` or ``kubernetes``; ``operator``: the task's kind."""

    id: str
    logical_date: datetime | None = None
    run_after: datetime
    note: str | None = None
    rendered_map_index: str | None = None
    rendered_fields: dict[str, Any] = {}
    trigger: dict[str, Any] | None = None
    triggerer_job: dict[str, Any] | None = None


class TaskInstanceCollectionResponse(CursorPage):
    task_instances: list[TaskInstanceResponse]


class ClearTaskInstanceCollectionResponse(BaseModel):
    """A dry run's answer of ``POST …/dagRuns/{dag_run_id}/clear``."""

    task_instances: list[TaskInstanceResponse]
    total_entries: int


class TaskInstanceHistoryCollectionResponse(BaseModel):
    task_instances: list[TaskInstanceHistoryResponse]
    total_entries: int


class PatchTaskInstanceBody(Body):
    """``PATCH …/taskInstances/{task_id}``: ``new_state`` success, failed or skipped (Airflow's mark);
    ``include_*`` true and ``note`` are refused (400)."""

    new_state: TaskInstanceState | None = None
    note: str | None = Field(None, max_length=1000)
    include_upstream: bool = False
    include_downstream: bool = False
    include_future: bool = False
    include_past: bool = False


class StructuredLogMessage(BaseModel):
    """One log line (``event``); ``timestamp`` absent: kubedag's logs are plain text."""

    model_config = ConfigDict(extra="allow")

    timestamp: datetime | None = None
    event: str


class TaskInstancesLogResponse(BaseModel):
    """A try's log, line by line; no continuation (the whole log at once)."""

    content: list[StructuredLogMessage] | list[str]
    continuation_token: str | None = None


class XComResponse(BaseModel):
    key: str
    timestamp: datetime
    logical_date: datetime | None = None
    map_index: int
    task_id: str
    dag_id: str
    run_id: str
    dag_display_name: str
    task_display_name: str
    run_after: datetime


class XComResponseNative(XComResponse):
    """An XCom with its JSON value (masked where it holds a secret)."""

    value: Any


class XComResponseString(XComResponse):
    """An XCom with its value as a string (``stringify=true``)."""

    value: str | None = None


class XComCollectionResponse(BaseModel):
    xcom_entries: list[XComResponse]
    total_entries: int

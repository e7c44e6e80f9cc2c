"""Airflow 3's REST API models for DAGs and their tasks (``DAGResponse``, ``TaskResponse`` …), field for field as
in its OpenAPI document (names, types, required-ness), so that ``apache-airflow-client`` 3.x reads our answers.

Fields kubedag has no notion of keep Airflow's neutral value (documented per field where it matters)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DagRunType = Literal["backfill", "scheduled", "manual", "operator_triggered", "asset_triggered",
                     "asset_materialization"]
DagRunState = Literal["queued", "running", "success", "failed"]
TaskInstanceState = Literal["removed", "scheduled", "queued", "running", "success", "restarting", "failed",
                            "up_for_retry", "up_for_reschedule", "upstream_failed", "skipped", "deferred",
                            "awaiting_input"]


class Body(BaseModel):
    """A request body: unknown fields are refused (422), as Airflow's ``StrictBaseModel``."""

    model_config = ConfigDict(extra="forbid")


class DagTagResponse(BaseModel):
    name: str
    dag_id: str
    dag_display_name: str


class DAGResponse(BaseModel):
    """Airflow's ``DAGResponse``. ``fileloc``: the manifest (locally) or ``<namespace>/<name>`` (cluster);
    ``file_token``: the fileloc, URL-safe base64 (Airflow signs it; kubedag serves no DAG source by token)."""

    dag_id: str
    dag_display_name: str
    is_paused: bool
    is_stale: bool
    last_parsed_time: datetime | None = None
    last_parse_duration: float | None = None
    last_expired: datetime | None = None
    bundle_name: str | None = None
    bundle_version: str | None = None
    relative_fileloc: str | None = None
    fileloc: str
    description: str | None = None
    timetable_summary: str | None = None
    timetable_description: str | None = None
    timetable_partitioned: bool
    timetable_periodic: bool
    tags: list[DagTagResponse]
    max_active_tasks: int
    max_active_runs: int | None = None
    max_consecutive_failed_dag_runs: int
    has_task_concurrency_limits: bool
    has_import_errors: bool
    next_dagrun_logical_date: datetime | None = None
    next_dagrun_data_interval_start: datetime | None = None
    next_dagrun_data_interval_end: datetime | None = None
    next_dagrun_run_after: datetime | None = None
    allowed_run_types: list[DagRunType] | None = None
    owners: list[str]
    is_backfillable: bool
    file_token: str


class DAGDetailsResponse(DAGResponse):
    """Airflow's ``DAGDetailsResponse``: the DAG with its schedule's details."""

    catchup: bool
    dag_run_timeout: str | None = None
    doc_md: str | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    is_paused_upon_creation: bool | None = None
    params: dict[str, Any] | None = None
    render_template_as_native_obj: bool
    template_search_path: list[str] | None = None
    timezone: str | None = None
    last_parsed: datetime | None = None
    default_args: dict[str, Any] | None = None
    owner_links: dict[str, str] | None = None
    is_favorite: bool = False
    active_runs_count: int = 0
    concurrency: int
    asset_expression: dict[str, Any] | None = None
    latest_dag_version: dict[str, Any] | None = None
    rerun_with_latest_version: bool | None = None


class DAGCollectionResponse(BaseModel):
    dags: list[DAGResponse]
    total_entries: int


class DAGPatchBody(Body):
    """``PATCH /dags/{dag_id}`` and ``PATCH /dags``: only ``is_paused`` can change."""

    is_paused: bool


class TimeDelta(BaseModel):
    """Airflow's serialised ``timedelta``."""

    model_config = ConfigDict(populate_by_name=True)

    type_: str = Field("TimeDelta", alias="__type")
    days: int
    seconds: int
    microseconds: int


class TaskResponse(BaseModel):
    """Airflow's ``TaskResponse``. ``operator_name``: the task's kind (``command``, ``sensor``, ``trigger``,
    ``empty``, ``branch``). ``retry_exponential_backoff``: Airflow 3.1's multiplier (2.0 when on, 0 off)."""

    task_id: str | None = None
    task_display_name: str | None = None
    owner: str | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    trigger_rule: str | None = None
    depends_on_past: bool
    wait_for_downstream: bool
    retries: float | None = None
    queue: str | None = None
    pool: str | None = None
    pool_slots: float | None = None
    execution_timeout: TimeDelta | None = None
    retry_delay: TimeDelta | None = None
    retry_exponential_backoff: float
    priority_weight: float | None = None
    weight_rule: str | None = None
    ui_color: str | None = None
    ui_fgcolor: str | None = None
    template_fields: list[str] | None = None
    downstream_task_ids: list[str] | None = None
    doc_md: str | None = None
    operator_name: str | None = None
    params: dict[str, Any] | None = None
    class_ref: dict[str, Any] | None = None
    is_mapped: bool | None = None
    extra_links: list[str]


class TaskCollectionResponse(BaseModel):
    tasks: list[TaskResponse]
    total_entries: int


class ImportErrorResponse(BaseModel):
    """An invalid DAG manifest (Airflow's import error): ``import_error_id`` is its position in the list of
    invalid DAGs ordered by file (stable while the folder does not change)."""

    import_error_id: int
    timestamp: datetime
    filename: str
    bundle_name: str | None = None
    stack_trace: str


class ImportErrorCollectionResponse(BaseModel):
    import_errors: list[ImportErrorResponse]
    total_entries: int

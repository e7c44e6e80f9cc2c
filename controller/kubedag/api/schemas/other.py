"""Airflow 3's REST API models for backfills, pools, variables, connections, version and health; Airflow 2's
DAG run and health documents for the seeds' ``/api/v1`` calls; and ``/auth/token``'s body and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from kubedag.api.schemas.dags import Body

ReprocessBehavior = Literal["failed", "completed", "none"]


class BackfillPostBody(Body):
    """``POST /backfills``: logical dates in ``[from_date, to_date]``; ``max_active_runs`` Airflow's default 10;
    ``run_backwards`` newest first."""

    dag_id: str
    from_date: datetime
    to_date: datetime
    run_backwards: bool = False
    dag_run_conf: dict[str, Any] | None = None
    reprocess_behavior: ReprocessBehavior = "none"
    max_active_runs: int = 10
    run_on_latest_version: bool | None = None


class BackfillResponse(BaseModel):
    """Airflow's ``BackfillResponse``. ``id`` is an integer in Airflow: a backfill whose name is not a number
    (a Backfill object named by hand) gets the CRC-32 of its name (:func:`kubedag.api.convert.backfill_number`)."""

    id: int = Field(ge=0)
    dag_id: str
    from_date: datetime
    to_date: datetime
    dag_run_conf: dict[str, Any] | None = None
    is_paused: bool
    reprocess_behavior: ReprocessBehavior
    max_active_runs: int
    created_at: datetime
    completed_at: datetime | None = None
    updated_at: datetime
    dag_display_name: str


class BackfillCollectionResponse(BaseModel):
    backfills: list[BackfillResponse]
    total_entries: int


class PoolResponse(BaseModel):
    name: str
    slots: int
    description: str | None = None
    include_deferred: bool
    occupied_slots: int
    running_slots: int
    queued_slots: int
    scheduled_slots: int
    open_slots: int
    deferred_slots: int
    team_name: str | None = None


class PoolCollectionResponse(BaseModel):
    pools: list[PoolResponse]
    total_entries: int


class VariableResponse(BaseModel):
    """A variable; ``value`` masked (``***``) when sensitive."""

    key: str
    value: str | None = None
    description: str | None = None
    is_encrypted: bool
    team_name: str | None = None


class VariableCollectionResponse(BaseModel):
    variables: list[VariableResponse]
    total_entries: int


class ConnectionResponse(BaseModel):
    """A connection; ``password`` and secret extras masked."""

    connection_id: str
    conn_type: str
    description: str | None = None
    host: str | None = None
    login: str | None = None
    schema_: str | None = Field(None, alias="schema")
    port: int | None = None
    password: str | None = None
    extra: str | None = None
    team_name: str | None = None

    model_config = {"populate_by_name": True}


class ConnectionCollectionResponse(BaseModel):
    connections: list[ConnectionResponse]
    total_entries: int


class VersionInfo(BaseModel):
    version: str
    git_version: str | None = None


class BaseInfoResponse(BaseModel):
    status: str | None = None


class SchedulerInfoResponse(BaseModel):
    status: str | None = None
    latest_scheduler_heartbeat: str | None = None


class TriggererInfoResponse(BaseModel):
    status: str | None = None
    latest_triggerer_heartbeat: str | None = None


class DagProcessorInfoResponse(BaseModel):
    status: str | None = None
    latest_dag_processor_heartbeat: str | None = None


class HealthInfoResponse(BaseModel):
    """Airflow's health document. kubedag has no triggerer or DAG processor of their own (the scheduler does
    both): their status is null, as Airflow reports a component that does not run."""

    metadatabase: BaseInfoResponse
    scheduler: SchedulerInfoResponse
    triggerer: TriggererInfoResponse
    dag_processor: DagProcessorInfoResponse | None = None


class V1DAGRunBody(BaseModel):
    """Airflow 2's ``POST /api/v1/dags/{dag_id}/dagRuns`` body (``execution_date`` is its old name of
    ``logical_date``)."""

    dag_run_id: str | None = None
    logical_date: datetime | None = None
    execution_date: datetime | None = None
    conf: dict[str, Any] | None = None
    note: str | None = None
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None


class V1DAGRun(BaseModel):
    """Airflow 2's ``DAGRun`` document."""

    dag_run_id: str
    dag_id: str
    logical_date: datetime | None = None
    execution_date: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    last_scheduling_decision: datetime | None = None
    run_type: str
    state: str
    external_trigger: bool
    conf: dict[str, Any]
    note: str | None = None


class V1DAGRunCollection(BaseModel):
    dag_runs: list[V1DAGRun]
    total_entries: int


class TokenBody(BaseModel):
    """``POST /auth/token`` (Airflow 3's simple auth manager)."""

    username: str
    password: str


class TokenResponse(BaseModel):
    access_token: str

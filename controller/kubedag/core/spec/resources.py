"""The ``Pool`` and ``Backfill`` custom resources (``apiVersion: kubedag.io/v1alpha1``), as pydantic v2 models.

A Pool (Airflow's pool) caps the slots that tasks naming it take across every DAG of its namespace::

    apiVersion: kubedag.io/v1alpha1
    kind: Pool
    metadata: {name: warehouse}
    spec: {slots: 4, description: "connections to the warehouse"}

A Backfill (Airflow's ``airflow dags backfill``) asks the controller for runs of type ``backfill`` for every
interval of a DAG's schedule between ``startDate`` and ``endDate``; its status tracks them, so a backfill
survives a controller restart::

    apiVersion: kubedag.io/v1alpha1
    kind: Backfill
    metadata: {name: supermarket-november}
    spec: {dagName: supermarket-promotions, startDate: 2026-11-01, endDate: 2026-11-30, maxActiveRuns: 4}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StrictBool, StrictInt, model_validator

from kubedag.core.spec.dagrun import Condition, StatusModel, _conditions
from kubedag.core.spec.models import DAGName, DateTimeField, KubeMeta, StrictModel


class PoolSpec(StrictModel):
    """A pool's size: at most ``slots`` slots are taken at once by queued and running tries (Airflow counts both)."""

    slots: Annotated[StrictInt, Field(ge=0)] = Field(description="Slots available to tasks naming this pool.")
    description: str | None = None


class PoolStatus(StatusModel):
    """How the pool is used, written by the controller: slots taken by ``queued`` and ``running`` tries."""

    occupied: int = Field(0, ge=0, description="Slots taken (queued + running).")
    queued: int = Field(0, ge=0, description="Slots taken by queued tries.")
    running: int = Field(0, ge=0, description="Slots taken by running tries.")
    open: int = Field(0, description="Slots free (`slots - occupied`, may be negative after the pool shrank).")
    observed_generation: int | None = Field(None, ge=0)


class PoolManifest(StrictModel):
    """A Pool as ``kubectl apply`` takes it."""

    api_version: Literal["kubedag.io/v1alpha1"]
    kind: Literal["Pool"]
    metadata: KubeMeta = Field(default_factory=KubeMeta)
    spec: PoolSpec
    status: PoolStatus | None = None


REPROCESS_BEHAVIORS = ("none", "failed", "completed")
"""Airflow 3's ``ReprocessBehavior``: which existing runs in range a backfill runs again."""


class BackfillSpec(StrictModel):
    """What to backfill: runs of ``dagName`` for every schedule interval whose start (the logical date) is within
    ``[startDate, endDate]`` (Airflow 2.10's ``dags backfill`` range). A run that exists at a logical date is left
    alone unless ``resetDagRuns`` (Airflow 2's ``--reset-dagruns``: cleared whatever its state) or
    ``reprocessBehavior`` (Airflow 3's: ``failed`` clears the existing failed runs, ``completed`` the failed and
    successful ones; ``none``, the default, none). ``maxActiveRuns`` caps the backfill's running runs (default: the
    DAG's ``maxActiveRuns``). ``paused`` (Airflow 3's pause): no new run is started or cleared until it is false
    again. ``cancelled`` (Airflow 3's cancel, for good): no new run; the backfill's runs still queued are deleted,
    running ones finish; the status phase becomes ``cancelled``."""

    dag_name: DAGName
    start_date: DateTimeField
    end_date: DateTimeField
    reset_dag_runs: StrictBool = False
    reprocess_behavior: Literal["none", "failed", "completed"] | None = Field(
        None, description="Airflow 3's reprocess_behavior: existing runs in range run again when `failed` "
        "(failed ones) or `completed` (failed and successful ones); `none` (default) leaves them alone.")
    max_active_runs: Annotated[StrictInt, Field(ge=1)] | None = None
    conf: dict[str, Any] = Field(default_factory=dict)
    paused: StrictBool = Field(False, description="No new run starts while true (Airflow 3's paused backfill).")
    cancelled: StrictBool = Field(False, description="Cancelled for good: no new run; its queued runs are deleted.")

    def reprocess(self, phase: str | None) -> bool:
        """Whether an existing run (not this backfill's) in ``phase`` is cleared to run again: any phase with
        ``resetDagRuns``, else by ``reprocessBehavior`` (a queued or running run is never reprocessed, as
        Airflow 3 skips runs in flight)."""
        if self.reset_dag_runs:
            return True
        if self.reprocess_behavior == "completed":
            return phase in ("success", "failed")
        return self.reprocess_behavior == "failed" and phase == "failed"

    @model_validator(mode="after")
    def _order(self) -> BackfillSpec:
        if (self.start_date.tzinfo is None) == (self.end_date.tzinfo is None) and self.end_date < self.start_date:
            raise ValueError(f"endDate {self.end_date.isoformat()} is before startDate {self.start_date.isoformat()}")
        return self


class BackfillStatus(StatusModel):
    """A backfill's progress, written by the controller. ``phase``: running until every run is finished, then
    ``success`` (all runs succeeded) or ``failed`` (some failed); ``cancelled`` once ``spec.cancelled``."""

    phase: Literal["pending", "running", "success", "failed", "cancelled"] | None = None
    total: int = Field(0, ge=0, description="Runs the backfill covers.")
    created: int = Field(0, ge=0, description="Runs created (or found, or reset) so far.")
    queued: int = Field(0, ge=0)
    running: int = Field(0, ge=0)
    succeeded: int = Field(0, ge=0)
    failed: int = Field(0, ge=0)
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    observed_generation: int | None = Field(None, ge=0)
    conditions: list[Condition] = _conditions()


class BackfillManifest(StrictModel):
    """A Backfill as ``kubectl apply`` (or ``kubedag dags backfill --cluster``) creates it."""

    api_version: Literal["kubedag.io/v1alpha1"]
    kind: Literal["Backfill"]
    metadata: KubeMeta = Field(default_factory=KubeMeta)
    spec: BackfillSpec
    status: BackfillStatus | None = None

"""The engine's immutable inputs and outputs: task instances, DAG runs and the actions of a plan.

Every datetime is timezone-aware (UTC by convention); naive datetimes are rejected with ValueError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from types import MappingProxyType
from typing import Any

from kubedag.core.states import DagRunState, RunType, TaskInstanceState


def _check_aware(obj: Any) -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError(f"{type(obj).__name__}.{f.name} must be timezone-aware, got {value!r}")


@dataclass(frozen=True)
class TaskInstance:
    """One task of one DAG run (Airflow's ``TaskInstance`` without the keys the caller holds).

    ``try_number``: the number of the current or last try; 0 = never tried. As in Airflow 2.10 it is
    incremented when a try is started (scheduled), not when it fails, so a failing first try fails
    with ``try_number == 1``. ``start_date``/``end_date``: of the current or last try.
    ``next_retry_at``: while ``up_for_retry``, when the retry is due (also the reschedule date while
    ``up_for_reschedule``). ``reason``: why it is in its state, for a user, e.g. ``"exit code 1"``,
    ``"execution timeout after 30s"``, ``"upstream_failed: trigger rule all_success requires ..."``.
    ``exit_code``: of the last try's container or process, when known.
    """

    task_id: str
    state: TaskInstanceState = TaskInstanceState.NONE
    try_number: int = 0
    start_date: datetime | None = None
    end_date: datetime | None = None
    next_retry_at: datetime | None = None
    reason: str | None = None
    exit_code: int | None = None
    max_tries: int | None = None
    """Airflow's ``max_tries``: a failure of a try numbered ``<= max_tries`` is retried. None means the task's
    ``retries`` (Airflow's initial value); clearing sets it to ``try_number + retries``, as Airflow's
    ``clear_task_instances``, so a cleared task gets its retries again."""

    def __post_init__(self) -> None:
        _check_aware(self)


@dataclass(frozen=True)
class DagRun:
    """One run of a DAG (Airflow's ``DagRun``).

    ``logical_date``: Airflow's ``execution_date``; ``data_interval_start``/``_end``: the interval
    the run covers. ``start_date``/``end_date``: when it started running / finished. ``reason``:
    why a finished run ended in its state (Airflow's callback message: ``task_failure``, ``success``,
    ``all_tasks_deadlocked``, with details), None while unfinished. ``conf``: the trigger's conf.
    """

    dag_id: str
    run_id: str
    run_type: RunType
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    state: DagRunState = DagRunState.QUEUED
    start_date: datetime | None = None
    end_date: datetime | None = None
    conf: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    reason: str | None = None

    def __post_init__(self) -> None:
        _check_aware(self)

    @property
    def finished(self) -> bool:
        """True once the run is ``success`` or ``failed`` (Airflow's ``State.finished_dr_states``)."""
        return self.state in (DagRunState.SUCCESS, DagRunState.FAILED)


@dataclass(frozen=True)
class StartTry:
    """Start try ``try_number`` (1 = first) of ``task_id``: the executor launches it, then reports
    it running with :func:`~kubedag.core.engine.plan.mark_running` and its end with
    :func:`~kubedag.core.engine.plan.apply_outcome`."""

    task_id: str
    try_number: int


@dataclass(frozen=True)
class KillTry:
    """Stop try ``try_number`` of ``task_id`` now (its outcome is already recorded in the plan)."""

    task_id: str
    try_number: int
    reason: str


@dataclass(frozen=True)
class Plan:
    """What :func:`~kubedag.core.engine.plan.plan` decided.

    ``updates``: task_id -> the task instances that changed (new ones included); apply them all.
    ``starts``: tries to launch, in priority (topological) order; their task instances are in
    ``updates`` as ``queued``. ``kills``: tries to stop. ``run``: the run with its new state.
    ``waiting``: task_id -> why each task not started yet is waiting (for a CLI that explains).
    ``wake_at``: the earliest future instant at which time alone changes the plan (a retry or
    reschedule falling due, a running try reaching its execution timeout); None if there is none.
    """

    updates: Mapping[str, TaskInstance]
    starts: tuple[StartTry, ...]
    kills: tuple[KillTry, ...]
    run: DagRun
    waiting: Mapping[str, tuple[str, ...]]
    wake_at: datetime | None = None

    @property
    def idle(self) -> bool:
        """True when the plan asks for nothing: no update, start or kill."""
        return not (self.updates or self.starts or self.kills)

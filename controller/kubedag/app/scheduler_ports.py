"""The ports of the local scheduler (:mod:`kubedag.local.scheduler`): what it needs from the metadata DB.

The scheduler is an adapter (local processes, a DAG folder) and must not import the store adapter; the
entry point (:mod:`kubedag.cli.standalone`) hands it a :class:`SchedulerStore` implemented by
:class:`kubedag.store.scheduler_store.SqlSchedulerStore`. Datetimes are UTC-aware throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from kubedag.core import engine
from kubedag.core.spec.dag import DAG
from kubedag.core.timetable import DataInterval
from kubedag.core.tries import TryRecord


@dataclass(frozen=True)
class SchedulerJob:
    """A scheduler process as the ``job`` table records it (Airflow's ``Job`` with ``SchedulerJob``)."""

    id: int
    hostname: str | None
    pid: int | None
    state: str
    start_date: datetime | None
    latest_heartbeat: datetime | None


@dataclass
class StoredRun:
    """An active DAG run read back from the DB: the run, its task instances (task_id -> TaskInstance) and the
    XComs its tries pushed (``(task_id, key) -> value``, the newest try's)."""

    run: engine.DagRun
    tis: dict[str, engine.TaskInstance] = field(default_factory=dict)
    xcoms: dict[tuple[str, str], Any] = field(default_factory=dict)


class SchedulerLocked(RuntimeError):
    """Another scheduler holds the metadata DB (the message names its host, pid and last heartbeat)."""


class SchedulerStore(Protocol):
    """The metadata DB as the local scheduler uses it. Each method is one transaction."""

    def acquire(self, hostname: str, pid: int, now: datetime, is_stale: Callable[[SchedulerJob], bool]) -> int:
        """Register this scheduler as the only running one and return its job id. Running schedulers for
        which ``is_stale`` is True are marked ``failed`` first.

        Raises:
            SchedulerLocked: another scheduler is running (not stale).
        """

    def heartbeat(self, job_id: int, now: datetime) -> None:
        """Record that the scheduler ``job_id`` is alive at ``now``."""

    def release(self, job_id: int, now: datetime) -> None:
        """Mark the scheduler ``job_id`` stopped (``success``) at ``now``."""

    def sync_dag(self, dag: DAG, fileloc: str, paused_upon_creation: bool) -> bool:
        """Insert or update the DAG's row (spec, file); a new DAG starts paused if ``paused_upon_creation``
        (Airflow's ``is_paused_upon_creation``), an existing one keeps its flag. Returns ``is_paused``."""

    def paused(self) -> Mapping[str, bool]:
        """dag_id -> ``is_paused`` of every DAG row (the DB's flag is the truth locally)."""

    def last_scheduled_interval(self, dag_id: str) -> DataInterval | None:
        """The data interval of the DAG's latest scheduled run (by logical date), None without one."""

    def create_run(self, run: engine.DagRun, queued_at: datetime) -> bool:
        """Create a queued run; False when the DAG already has a run with its run id or logical date."""

    def active_runs(self) -> list[StoredRun]:
        """Every queued or running DAG run, oldest logical date first, with task instances and XComs."""

    def save(self, dag: DAG, run: engine.DagRun, tis: list[engine.TaskInstance], tries: list[TryRecord],
             xcoms: list[tuple[str, int, dict[str, Any]]] | None = None) -> None:
        """Record one pass of a run: its state, the changed task instances, try rows and XComs."""

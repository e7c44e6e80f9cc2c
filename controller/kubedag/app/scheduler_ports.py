"""The ports of the local scheduler (:mod:`kubedag.local.scheduler`): what it needs from the metadata DB, and
what a reader of local mode needs from the DAG folder.

The scheduler is an adapter (local processes, a DAG folder) and must not import the store adapter; the
entry point (:mod:`kubedag.cli.standalone`) hands it a :class:`SchedulerStore` implemented by
:class:`kubedag.store.scheduler_store.SqlSchedulerStore`. The other way round, the local catalog
(:class:`kubedag.store.catalog.SqlCatalog`) reads the DAG folder through a :class:`DagFolder`, implemented by
:class:`kubedag.local.folder.LocalDagFolder`. Datetimes are UTC-aware throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from kubedag.app.operations.backfill import PlannedRun
from kubedag.app.operations.ports import NotFound, OperationError
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
    backfill_id: int | None = None
    """The backfill that created or re-ran the run (``dag_run.backfill_id``), None for others."""


@dataclass(frozen=True)
class OpenBackfill:
    """A backfill not completed yet (a ``backfill`` row with no ``completed_at``), as the scheduler carries it
    out: ``[from_date, to_date]`` logical dates (UTC), Airflow 3's ``reprocess_behavior`` (``none``/``failed``/
    ``completed``), ``max_active_runs`` of its runs at once, ``is_paused`` (no new run starts),
    ``run_backwards`` (newest first) and the ``dag_run_conf`` of its runs."""

    id: int
    dag_id: str
    from_date: datetime
    to_date: datetime
    reprocess_behavior: str
    max_active_runs: int
    is_paused: bool
    run_backwards: bool = False
    dag_run_conf: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunAtDate:
    """A run of a DAG at one logical date, as a backfill sees it: its id, state and backfill (None: not one)."""

    run_id: str
    state: str
    backfill_id: int | None = None


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

    # -- backfills (Airflow 3's, kept in the ``backfill`` table) --------------------------------------------
    def open_backfills(self) -> list[OpenBackfill]:
        """Every backfill not completed yet, oldest first."""

    def runs_at_dates(self, dag_id: str, start: datetime, end: datetime) -> Mapping[datetime, RunAtDate]:
        """The DAG's runs whose logical date is in ``[start, end]``: logical date (UTC) -> :class:`RunAtDate`."""

    def start_backfill_run(self, backfill_id: int, dag: DAG, planned: PlannedRun, now: datetime) -> bool:
        """In one transaction, unless the backfill was paused, cancelled or completed meanwhile: create the
        queued ``backfill`` run of ``planned`` (action ``create``, conf from the backfill), or clear every task of
        the existing run ``planned.run_id`` so that it runs again (action ``reset``, as Airflow 3's
        ``_handle_clear_run``: it becomes a ``backfill`` run of this backfill). Returns whether it did."""

    def complete_backfill(self, backfill_id: int, now: datetime) -> None:
        """Set the backfill's ``completed_at`` (every run of it has ended), unless it is set already."""


@dataclass(frozen=True)
class FolderProblem:
    """A DAG file that could not be read: its path, why (Airflow's import error: invalid YAML, every
    validation problem of the manifest, a DAG name used twice), and the DAG's name when it could be read."""

    fileloc: str
    message: str
    dag_id: str | None = None


@dataclass(frozen=True)
class FolderScan:
    """The DAG folder as last read. ``dags``: dag_id -> (DAG, its file); ``problems``: the files that failed;
    ``pools``: Pool name -> slots (``default-pool`` included); ``objects``: the folder's ConfigMaps and Secrets
    by ``(kind, name)`` (the ``get`` of :func:`kubedag.core.secrets.load_sources`); ``scanned_at``: when the
    files were read (UTC)."""

    dags: Mapping[str, tuple[DAG, str]] = field(default_factory=dict)
    problems: tuple[FolderProblem, ...] = ()
    pools: Mapping[str, int] = field(default_factory=dict)
    objects: Mapping[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    scanned_at: datetime | None = None

    def dag(self, dag_id: str) -> DAG:
        """The valid DAG ``dag_id`` of this scan: how the REST API's DAG source and the backfills find a DAG.

        Raises:
            NotFound: no file of the folder defines it (Airflow's 404 message).
            InvalidDag: a file defining it failed to read (the message names the file and why).
        """
        if dag_id in self.dags:
            return self.dags[dag_id][0]
        for problem in self.problems:
            if problem.dag_id == dag_id:
                raise InvalidDag(f"DAG {dag_id!r} is invalid ({problem.fileloc}): {problem.message}")
        raise NotFound(f"The Dag with ID: `{dag_id}` was not found")


class InvalidDag(OperationError):
    """The DAG named is in the folder, but its file failed to read (an import error, in Airflow's words)."""


class DagFolder(Protocol):
    """The local DAG folder, read for a reader (the REST API, the web UI) of local mode."""

    def scan(self) -> FolderScan:
        """The folder now (read again only when a file changed). Never raises for a bad file: it is a problem."""

"""Backfills of local mode, kept in the ``backfill`` table (Airflow 3's) and carried out by ``kubedag scheduler``.

* :class:`SqlBackfills`: the :class:`kubedag.app.catalog.Backfills` write port (create, pause/unpause, cancel), as
  Airflow 3's ``/api/v2/backfills``: a DAG has at most one active (not completed) backfill (a second is refused,
  :class:`~kubedag.app.operations.ports.AlreadyExists`, HTTP 409); cancelling pauses it, fails its ``queued`` runs
  (running ones finish) and sets ``completed_at``, as Airflow 3's ``cancel_backfill``.
* :class:`BackfillRunsMixin`: the backfill half of :class:`kubedag.app.scheduler_ports.SchedulerStore` (mixed into
  :class:`kubedag.store.scheduler_store.SqlSchedulerStore`): the open backfills, the runs at their dates, creating
  or re-running one run in a transaction that re-checks the backfill under a row lock, completing a backfill.
* :func:`list_backfills`, :func:`get_backfill`, :func:`backfill_info`: the read side, for
  :class:`kubedag.store.catalog.SqlCatalog`.

Datetimes are UTC-aware; a backfill's id is its integer primary key, shown as a string in
:class:`~kubedag.app.catalog.BackfillInfo`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from kubedag.app.catalog import BackfillInfo, BackfillRequest
from kubedag.app.operations.backfill import PlannedRun, backfill_intervals
from kubedag.app.operations.ports import AlreadyExists, InvalidRequest, NotFound, OperationError
from kubedag.app.scheduler_ports import DagFolder, InvalidDag, OpenBackfill, RunAtDate
from kubedag.core import engine
from kubedag.core.runpass import ti_from_row
from kubedag.core.spec.dag import DAG
from kubedag.core.states import DagRunState, RunType
from kubedag.store import repository
from kubedag.store.models import BackfillRow, DagRunRow
from kubedag.store.rows import pass_rows, run_from_row

REPROCESS_BEHAVIORS = ("none", "failed", "completed")
"""Airflow 3's ``ReprocessBehavior`` values."""
FIELDS = ("from_date", "to_date")
"""How errors name a backfill's range (Airflow 3's request fields)."""
_UNFINISHED = (str(DagRunState.QUEUED), str(DagRunState.RUNNING))


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


# ------------------------------------------------------------------------------------------ reading
def get_backfill(session: Session, backfill_id: str | int) -> BackfillRow:
    """The backfill row of ``backfill_id`` (its integer id, or that id as a string). Raises NotFound."""
    try:
        key = int(backfill_id)
    except (TypeError, ValueError):
        raise NotFound(f"no backfill {backfill_id!r} (a backfill id is an integer)") from None
    row = session.get(BackfillRow, key)
    if row is None:
        raise NotFound(f"no backfill {backfill_id!r}")
    return row


def backfill_info(session: Session, row: BackfillRow) -> BackfillInfo:
    """The :class:`~kubedag.app.catalog.BackfillInfo` of a row; ``runs_total``: the runs it created or re-ran so far,
    ``runs_done``: those finished."""
    total, done = session.execute(
        sa.select(sa.func.count(), sa.func.count().filter(DagRunRow.state.not_in(_UNFINISHED)))
        .where(DagRunRow.backfill_id == row.id)).one()
    return BackfillInfo(
        id=str(row.id), dag_id=row.dag_id, from_date=row.from_date, to_date=row.to_date,
        reprocess_behavior=row.reprocess_behavior, max_active_runs=row.max_active_runs, is_paused=row.is_paused,
        cancelled=row.is_cancelled, dag_run_conf=dict(row.dag_run_conf or {}), created_at=row.created_at,
        updated_at=row.updated_at, completed_at=row.completed_at, runs_total=int(total), runs_done=int(done or 0),
        run_backwards=row.run_backwards)


def list_backfills(session: Session, dag_id: str | None = None) -> list[BackfillInfo]:
    """The backfills (of ``dag_id``), newest first."""
    stmt = sa.select(BackfillRow).order_by(BackfillRow.id.desc())
    if dag_id is not None:
        stmt = stmt.where(BackfillRow.dag_id == dag_id)
    return [backfill_info(session, r) for r in session.scalars(stmt)]


# ------------------------------------------------------------------------------------------ the write port
class SqlBackfills:
    """:class:`kubedag.app.catalog.Backfills` on the metadata DB (see the module docstring); the scheduler carries
    them out. ``folder``: the DAG folder (the DAG is planned from its file); ``clock``: UTC-aware now."""

    def __init__(self, sessions: sessionmaker[Session], folder: DagFolder, *, clock: Any = _utcnow) -> None:
        self.sessions, self.folder, self.clock = sessions, folder, clock

    def _dag(self, dag_id: str) -> DAG:
        """The DAG (:meth:`kubedag.app.scheduler_ports.FolderScan.dag`). Raises NotFound, or InvalidRequest naming
        ``dag_id`` for an invalid one (the request names a DAG that cannot be planned)."""
        try:
            return self.folder.scan().dag(dag_id)
        except InvalidDag as exc:
            raise InvalidRequest(f"dag_id: {exc}") from None

    def create(self, request: BackfillRequest) -> BackfillInfo:
        """Create a backfill (see :meth:`kubedag.app.catalog.Backfills.create`): ``max_active_runs`` None is the
        DAG's ``maxActiveRuns``. Raises NotFound (DAG), InvalidRequest (naming ``reprocess_behavior``,
        ``max_active_runs``, ``from_date``/``to_date``, or a DAG without a schedule), AlreadyExists (the DAG has an
        active backfill, as Airflow 3's 409)."""
        if request.reprocess_behavior not in REPROCESS_BEHAVIORS:
            raise InvalidRequest(f"reprocess_behavior: {request.reprocess_behavior!r} is not one of "
                                 f"{', '.join(REPROCESS_BEHAVIORS)}")
        if request.max_active_runs is not None and request.max_active_runs < 1:
            raise InvalidRequest(f"max_active_runs: must be >= 1, got {request.max_active_runs}")
        for name in FIELDS:
            value = getattr(request, name)
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise InvalidRequest(f"{name}: expected a timezone-aware datetime, got {value!r}")
        dag = self._dag(request.dag_id)
        if dag.schedule is None:
            raise InvalidRequest(f"dag_id: DAG {dag.dag_id!r} has no schedule: there is nothing to backfill")
        if not backfill_intervals(dag, request.from_date, request.to_date, fields=FIELDS):
            raise InvalidRequest(f"{FIELDS[0]}/{FIELDS[1]}: no schedule interval of DAG {dag.dag_id!r} starts in "
                                 "that range")
        now = self.clock()
        with self.sessions.begin() as session:
            _lock_dag(session, dag.dag_id)
            if repository.get_dag(session, dag.dag_id) is None:
                repository.upsert_dag(session, dag.dag_id, dict(dag.spec), dag.namespace, is_paused=dag.paused)
                _lock_dag(session, dag.dag_id)
            active = session.scalars(sa.select(BackfillRow.id).where(
                BackfillRow.dag_id == dag.dag_id, BackfillRow.completed_at.is_(None))).first()
            if active is not None:
                raise AlreadyExists(f"DAG {dag.dag_id!r} has an active backfill ({active}): cancel it or wait until "
                                    "it completes")
            row = BackfillRow(dag_id=dag.dag_id, from_date=request.from_date, to_date=request.to_date,
                              dag_run_conf=dict(request.dag_run_conf), reprocess_behavior=request.reprocess_behavior,
                              max_active_runs=request.max_active_runs or dag.max_active_runs,
                              run_backwards=request.run_backwards, created_at=now, updated_at=now)
            session.add(row)
            session.flush()
            return backfill_info(session, row)

    def set_paused(self, backfill_id: str, paused: bool) -> BackfillInfo:
        """Pause (no new run of it starts; running ones go on) or unpause. Raises NotFound, OperationError if it has
        completed (Airflow 3's 409)."""
        with self.sessions.begin() as session:
            row = _locked(session, backfill_id)
            if row.completed_at is not None:
                raise OperationError(f"backfill {backfill_id} has completed: it cannot be "
                                     f"{'paused' if paused else 'unpaused'}")
            if row.is_paused != paused:
                row.is_paused, row.updated_at = paused, self.clock()
            return backfill_info(session, row)

    def cancel(self, backfill_id: str) -> BackfillInfo:
        """Cancel: paused, its ``queued`` runs failed (running ones finish), ``completed_at`` set, as Airflow 3's
        ``cancel_backfill``; a completed backfill is returned as it is. Raises NotFound."""
        now = self.clock()
        with self.sessions.begin() as session:
            row = _locked(session, backfill_id)
            if row.completed_at is not None:
                return backfill_info(session, row)
            session.execute(sa.update(DagRunRow).where(DagRunRow.backfill_id == row.id,
                                                       DagRunRow.state == str(DagRunState.QUEUED))
                            .values(state=str(DagRunState.FAILED), end_date=now)
                            .execution_options(synchronize_session=False))
            row.is_paused, row.is_cancelled, row.completed_at, row.updated_at = True, True, now, now
            return backfill_info(session, row)


def _lock_dag(session: Session, dag_id: str) -> None:
    """Serialise backfill creations of one DAG (PostgreSQL: lock its ``dag`` row; SQLite has one writer)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT 1 FROM dag WHERE dag_id = :d FOR UPDATE"), {"d": dag_id})


def _locked(session: Session, backfill_id: str | int) -> BackfillRow:
    """The backfill row, locked for this transaction on PostgreSQL (a cancel and the scheduler's run creation
    never interleave). Raises NotFound."""
    row = get_backfill(session, backfill_id)
    if session.get_bind().dialect.name == "postgresql":
        session.refresh(row, with_for_update=True)
    return row


# ------------------------------------------------------------------------------------------ the scheduler's side
class BackfillRunsMixin:
    """The backfill methods of :class:`kubedag.app.scheduler_ports.SchedulerStore` (see there); needs
    ``self.sessions``."""

    sessions: sessionmaker[Session]

    def open_backfills(self) -> list[OpenBackfill]:
        """See :meth:`kubedag.app.scheduler_ports.SchedulerStore.open_backfills`."""
        with self.sessions() as session:
            rows = session.scalars(sa.select(BackfillRow).where(BackfillRow.completed_at.is_(None))
                                   .order_by(BackfillRow.id)).all()
            return [OpenBackfill(r.id, r.dag_id, r.from_date, r.to_date, r.reprocess_behavior, r.max_active_runs,
                                 r.is_paused, r.run_backwards, dict(r.dag_run_conf or {})) for r in rows]

    def runs_at_dates(self, dag_id: str, start: datetime, end: datetime) -> Mapping[datetime, RunAtDate]:
        """See :meth:`kubedag.app.scheduler_ports.SchedulerStore.runs_at_dates`."""
        with self.sessions() as session:
            rows = session.execute(sa.select(DagRunRow.logical_date, DagRunRow.run_id, DagRunRow.state,
                                             DagRunRow.backfill_id)
                                   .where(DagRunRow.dag_id == dag_id, DagRunRow.logical_date >= start,
                                          DagRunRow.logical_date <= end))
            return {r.logical_date: RunAtDate(r.run_id, r.state, r.backfill_id) for r in rows}

    def start_backfill_run(self, backfill_id: int, dag: DAG, planned: PlannedRun, now: datetime) -> bool:
        """See :meth:`kubedag.app.scheduler_ports.SchedulerStore.start_backfill_run`."""
        with self.sessions.begin() as session:
            row = session.get(BackfillRow, backfill_id)
            if row is not None and session.get_bind().dialect.name == "postgresql":
                session.refresh(row, with_for_update=True)
            if row is None or row.completed_at is not None or row.is_paused:
                return False
            if planned.action == "create":
                clash = session.scalars(sa.select(DagRunRow.id).where(DagRunRow.dag_id == dag.dag_id, sa.or_(
                    DagRunRow.run_id == planned.run_id, DagRunRow.logical_date == planned.logical_date))).first()
                if clash is not None:
                    return False
                run = repository.create_dag_run(
                    session, dag_id=dag.dag_id, run_id=planned.run_id, run_type=str(RunType.BACKFILL),
                    logical_date=planned.logical_date, data_interval_start=planned.data_interval_start,
                    data_interval_end=planned.data_interval_end, conf=dict(row.dag_run_conf or {}), queued_at=now)
                run.backfill_id = backfill_id
                return True
            return _rerun(session, dag, planned.run_id, backfill_id, now)

    def complete_backfill(self, backfill_id: int, now: datetime) -> None:
        """See :meth:`kubedag.app.scheduler_ports.SchedulerStore.complete_backfill`."""
        with self.sessions.begin() as session:
            session.execute(sa.update(BackfillRow).where(BackfillRow.id == backfill_id,
                                                         BackfillRow.completed_at.is_(None))
                            .values(completed_at=now, updated_at=now))


def _rerun(session: Session, dag: DAG, run_id: str, backfill_id: int, now: datetime) -> bool:
    """Clear every task of the finished run ``run_id`` so that it runs again as a run of the backfill (Airflow 3's
    ``_handle_clear_run``: ``dag.clear`` to ``queued``, then ``backfill_id`` and ``run_type`` set); False when the
    run is gone or not finished."""
    row = repository.get_dag_run(session, dag.dag_id, run_id)
    if row is None or row.state in _UNFINISHED:
        return False
    tis = {r.task_id: ti_from_row(r) for r in repository.get_task_instances(session, dag.dag_id, run_id)}
    result = engine.clear(dag, run_from_row(row), tis, [], now=now)
    run = result.run
    row.state, row.start_date, row.end_date = str(run.state), run.start_date, run.end_date
    row.run_type, row.backfill_id, row.queued_at = str(RunType.BACKFILL), backfill_id, now
    if result.updates:
        rows = pass_rows(dag, run, list(result.updates.values()), [])
        repository.record_pass(session, dag.dag_id, run_id, task_instances=rows.task_instances, tries=[])
    repository.clear_xcoms(session, dag.dag_id, run_id, result.task_ids)
    return True


__all__ = ["BackfillRunsMixin", "REPROCESS_BEHAVIORS", "SqlBackfills", "backfill_info", "get_backfill",
           "list_backfills"]

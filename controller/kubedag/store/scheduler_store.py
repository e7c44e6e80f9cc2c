"""The metadata DB behind the local scheduler's port (:class:`kubedag.app.scheduler_ports.SchedulerStore`).

The single-scheduler lock is a ``job`` row (Airflow's ``job`` table): :meth:`SqlSchedulerStore.acquire` runs in
one transaction, which on SQLite begins with ``BEGIN IMMEDIATE`` (SQLite's single write lock, see
:mod:`kubedag.store.db`) and on PostgreSQL takes a transaction-level advisory lock first, so two schedulers
starting at once are serialised and the second one sees the first one's row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from kubedag.app.records import pass_rows
from kubedag.app.scheduler_ports import SchedulerJob, SchedulerLocked, StoredRun
from kubedag.core import engine
from kubedag.core.runpass import ti_from_row
from kubedag.core.spec.dag import DAG
from kubedag.core.states import DagRunState, RunType
from kubedag.core.timetable import DataInterval
from kubedag.core.tries import TryRecord
from kubedag.store import repository
from kubedag.store.backfills import BackfillRunsMixin
from kubedag.store.models import DagRow, DagRunRow, JobRow
from kubedag.store.rows import run_from_row

SCHEDULER_JOB = "SchedulerJob"
"""``job.job_type`` of a scheduler, as Airflow's."""
_ADVISORY_LOCK_KEY = 0x6B756265  # "kube": one PostgreSQL advisory lock id for "a scheduler is starting"


def _job(row: JobRow) -> SchedulerJob:
    return SchedulerJob(row.id, row.hostname, row.pid, row.state, row.start_date, row.latest_heartbeat)


class SqlSchedulerStore(BackfillRunsMixin):
    """:class:`~kubedag.app.scheduler_ports.SchedulerStore` on a SQLAlchemy ``sessionmaker`` (see
    :func:`kubedag.store.db.open_store`)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # -- the lock and the heartbeat ---------------------------------------------------------------
    def acquire(self, hostname: str, pid: int, now: datetime, is_stale: Callable[[SchedulerJob], bool]) -> int:
        """See :meth:`kubedag.app.scheduler_ports.SchedulerStore.acquire`."""
        with self.sessions.begin() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})
            running = session.scalars(sa.select(JobRow).where(JobRow.job_type == SCHEDULER_JOB,
                                                              JobRow.state == "running")).all()
            for row in running:
                if not is_stale(_job(row)):
                    beat = row.latest_heartbeat.isoformat() if row.latest_heartbeat else "never"
                    raise SchedulerLocked(f"another scheduler is running on this metadata DB: pid {row.pid} on "
                                          f"{row.hostname}, last heartbeat {beat} (job {row.id})")
                row.state, row.end_date = "failed", now
            job = JobRow(job_type=SCHEDULER_JOB, state="running", hostname=hostname, pid=pid, start_date=now,
                         latest_heartbeat=now)
            session.add(job)
            session.flush()
            return job.id

    def heartbeat(self, job_id: int, now: datetime) -> None:
        """See :meth:`kubedag.app.scheduler_ports.SchedulerStore.heartbeat`."""
        with self.sessions.begin() as session:
            session.execute(sa.update(JobRow).where(JobRow.id == job_id).values(latest_heartbeat=now))

    def release(self, job_id: int, now: datetime) -> None:
        """See :meth:`kubedag.app.scheduler_ports.SchedulerStore.release`."""
        with self.sessions.begin() as session:
            session.execute(sa.update(JobRow).where(JobRow.id == job_id, JobRow.state == "running")
                            .values(state="success", end_date=now, latest_heartbeat=now))

    def running_scheduler(self) -> SchedulerJob | None:
        """The running scheduler with the newest heartbeat (for a health check: compare its ``latest_heartbeat``
        with now), None when no scheduler is running."""
        with self.sessions() as session:
            row = session.scalars(sa.select(JobRow).where(JobRow.job_type == SCHEDULER_JOB, JobRow.state == "running")
                                  .order_by(JobRow.latest_heartbeat.desc()).limit(1)).first()
            return _job(row) if row is not None else None

    # -- DAGs -------------------------------------------------------------------------------------
    def sync_dag(self, dag: DAG, fileloc: str, paused_upon_creation: bool) -> bool:
        """See :meth:`kubedag.app.scheduler_ports.SchedulerStore.sync_dag`."""
        with self.sessions.begin() as session:
            new = session.get(DagRow, dag.dag_id) is None
            row = repository.upsert_dag(session, dag.dag_id, dict(dag.spec), dag.namespace, fileloc,
                                        is_paused=paused_upon_creation if new else None)
            return bool(row.is_paused)

    def paused(self) -> Mapping[str, bool]:
        """See :meth:`kubedag.app.scheduler_ports.SchedulerStore.paused`."""
        with self.sessions() as session:
            return {dag_id: bool(paused) for dag_id, paused in session.execute(sa.select(DagRow.dag_id, DagRow.is_paused))}

    # -- runs -------------------------------------------------------------------------------------
    def last_scheduled_interval(self, dag_id: str) -> DataInterval | None:
        """See :meth:`kubedag.app.scheduler_ports.SchedulerStore.last_scheduled_interval`."""
        with self.sessions() as session:
            row = session.scalars(sa.select(DagRunRow).where(DagRunRow.dag_id == dag_id,
                                                             DagRunRow.run_type == str(RunType.SCHEDULED))
                                  .order_by(DagRunRow.logical_date.desc()).limit(1)).first()
            if row is None:
                return None
            return DataInterval(row.data_interval_start or row.logical_date, row.data_interval_end or row.logical_date)

    def create_run(self, run: engine.DagRun, queued_at: datetime) -> bool:
        """See :meth:`kubedag.app.scheduler_ports.SchedulerStore.create_run`."""
        with self.sessions.begin() as session:
            clash = session.scalars(sa.select(DagRunRow.id).where(
                DagRunRow.dag_id == run.dag_id,
                sa.or_(DagRunRow.run_id == run.run_id, DagRunRow.logical_date == run.logical_date))).first()
            if clash is not None:
                return False
            repository.create_dag_run(
                session, dag_id=run.dag_id, run_id=run.run_id, run_type=str(run.run_type),
                logical_date=run.logical_date, data_interval_start=run.data_interval_start,
                data_interval_end=run.data_interval_end, conf=dict(run.conf), queued_at=queued_at)
            return True

    def active_runs(self) -> list[StoredRun]:
        """See :meth:`kubedag.app.scheduler_ports.SchedulerStore.active_runs`."""
        with self.sessions() as session:
            rows = session.scalars(sa.select(DagRunRow).where(
                DagRunRow.state.in_([str(DagRunState.QUEUED), str(DagRunState.RUNNING)]))
                .order_by(DagRunRow.logical_date, DagRunRow.id)).all()
            out = []
            for row in rows:
                tis = {r.task_id: ti_from_row(r) for r in repository.get_task_instances(session, row.dag_id, row.run_id)}
                out.append(StoredRun(run_from_row(row), tis, repository.latest_xcoms(session, row.dag_id, row.run_id),
                                     row.backfill_id))
            return out

    def save(self, dag: DAG, run: engine.DagRun, tis: list[engine.TaskInstance], tries: list[TryRecord],
             xcoms: list[tuple[str, int, dict[str, Any]]] | None = None) -> None:
        """See :meth:`kubedag.app.scheduler_ports.SchedulerStore.save`."""
        rows = pass_rows(dag, run, tis, tries, xcoms)
        with self.sessions.begin() as session:
            repository.set_dag_run_state(session, rows.dag_id, rows.run_id, rows.run_state,
                                         start_date=rows.run_start, end_date=rows.run_end)
            repository.record_pass(session, rows.dag_id, rows.run_id, task_instances=rows.task_instances,
                                   tries=rows.tries)
            for task_id, try_number, values in rows.xcoms:
                repository.set_xcoms(session, rows.dag_id, rows.run_id, task_id, try_number, values)

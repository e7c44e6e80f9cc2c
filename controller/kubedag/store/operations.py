"""The operations' ports on the metadata DB (:mod:`kubedag.app.operations`), for this machine's commands.

* :class:`DbRuns`: :class:`~kubedag.app.operations.RunsRepository` and :class:`~kubedag.app.operations.PauseFlags`
  on the metadata DB (the same one ``kubedag dags test`` and ``kubedag scheduler`` write). A clear deletes the
  cleared tasks' XComs, as Airflow's ``clear_task_instances``. Writes are serialised by one lock (SQLite has
  one writer). :meth:`DbRuns.recorder` gives the :class:`DBRecorder` of a run that ``dags backfill -f`` or
  ``tasks clear -f`` carries to completion (:mod:`kubedag.local.operations`).
* :func:`open_db`: a sessionmaker on the migrated metadata DB.

Composed with the local adapter by the entry points (:mod:`kubedag.cli`); moved here from
``kubedag.local.operations`` so that the local adapter does not import the store (issue 9).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kubedag.app import operations as ops
from kubedag.core import engine
from kubedag.core.runpass import ti_from_row
from kubedag.core.spec.dag import DAG
from kubedag.store import repository
from kubedag.store.db import open_store
from kubedag.store.models import DagRunRow
from kubedag.store.rows import pass_rows, write_rows
from kubedag.store.scheduler_store import run_from_row


def open_db(database_url: str | None = None) -> Any:
    """A SQLAlchemy sessionmaker on the metadata DB (``database_url`` or the default), migrated to head."""
    return open_store(database_url)[1]


def _no_run(dag_id: str, run_id: str) -> ops.NotFound:
    return ops.NotFound(f"no run {run_id!r} of DAG {dag_id!r} in the metadata DB "
                        f"(see `kubedag runs list --dag {dag_id}`)")


class DBRecorder:
    """A :class:`~kubedag.local.runner.Recorder` writing each pass in its own transaction, synchronously,
    one writer at a time (``lock`` is shared by every runner of a backfill)."""

    def __init__(self, sessionmaker: Any, dag: DAG, lock: threading.Lock) -> None:
        self.sessionmaker = sessionmaker
        self.dag = dag
        self.lock = lock

    def save(self, run: engine.DagRun, tis: list[engine.TaskInstance], tries: list[Any],
             xcoms: list[tuple[str, int, dict[str, Any]]] | None = None) -> None:
        """Persist one runner pass with its XComs (see :func:`kubedag.store.rows.pass_rows`)."""
        rows = pass_rows(self.dag, run, tis, tries, xcoms) if xcoms else pass_rows(self.dag, run, tis, tries)
        with self.lock, self.sessionmaker.begin() as session:
            write_rows(session, rows)


class DbRuns:
    """The runs, task instances and paused flags of the metadata DB (see the module docstring).

    ``sessionmaker``: from :func:`open_db`. ``lock``: held around every write (shared with the
    :class:`DBRecorder` of runs going on at the same time).
    """

    def __init__(self, sessionmaker: Any, lock: threading.Lock | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.lock = lock or threading.Lock()

    # -- RunsRepository -------------------------------------------------------------------------------
    def create_run(self, dag: DAG | str, run: engine.DagRun) -> None:
        """Insert ``run`` (queued, ``queued_at`` now), and the DAG's row when it has none (not paused).

        Raises:
            AlreadyExists: a run of the DAG with that run id, or at that logical date, exists.
            NotFound: only a DAG's name is given and the DB does not know it.
        """
        dag_id = dag if isinstance(dag, str) else dag.dag_id
        with self.lock, self.sessionmaker.begin() as session:
            stmt = sa.select(DagRunRow).where(DagRunRow.dag_id == dag_id, sa.or_(
                DagRunRow.run_id == run.run_id, DagRunRow.logical_date == run.logical_date))
            found = session.scalars(stmt).first()
            if found is not None:
                same = "run id" if found.run_id == run.run_id else "logical date"
                raise ops.AlreadyExists(
                    f"DAG {dag_id!r} already has run {found.run_id!r} with that {same} (logical date "
                    f"{found.logical_date.isoformat()}); pass another --run-id or --logical-date")
            if repository.get_dag(session, dag_id) is None:
                if isinstance(dag, str):
                    raise ops.NotFound(f"no DAG {dag_id!r} in the metadata DB")
                repository.upsert_dag(session, dag_id, dict(dag.spec), dag.namespace)
            repository.create_dag_run(
                session, dag_id=dag_id, run_id=run.run_id, run_type=str(run.run_type), logical_date=run.logical_date,
                data_interval_start=run.data_interval_start, data_interval_end=run.data_interval_end,
                conf=dict(run.conf), state=str(run.state),
            )

    def load_run(self, dag: DAG, run_id: str) -> ops.LoadedRun:
        """The run and its task instances. Raises :class:`~kubedag.app.operations.NotFound`."""
        with self.sessionmaker() as session:
            return self._load(session, dag, run_id)

    @staticmethod
    def _load(session: Any, dag: DAG, run_id: str) -> ops.LoadedRun:
        row = repository.get_dag_run(session, dag.dag_id, run_id)
        if row is None:
            raise _no_run(dag.dag_id, run_id)
        tis = {r.task_id: ti_from_row(r) for r in repository.get_task_instances(session, dag.dag_id, run_id)}
        return ops.LoadedRun(run_from_row(row), tis)

    def apply(self, dag: DAG, change: ops.RunChange) -> None:
        """Write a clear or mark: the run's state and dates (None clears them), the changed task instances and,
        for a clear, the deletion of the cleared tasks' XComs."""
        run = change.run
        with self.lock, self.sessionmaker.begin() as session:
            row = repository.get_dag_run(session, dag.dag_id, run.run_id)
            if row is None:
                raise _no_run(dag.dag_id, run.run_id)
            if not change.updates:
                return
            if row.state != str(run.state):
                repository.set_dag_run_state(session, dag.dag_id, run.run_id, str(run.state))
            row.start_date, row.end_date = run.start_date, run.end_date
            rows = pass_rows(dag, run, list(change.updates.values()), [])
            repository.record_pass(session, dag.dag_id, run.run_id, task_instances=rows.task_instances, tries=[])
            if change.kind == "clear":
                repository.clear_xcoms(session, dag.dag_id, run.run_id, change.affected)

    def delete_run(self, dag_id: str, run_id: str) -> None:
        """Delete the run with its task instances, tries and XComs (log files are kept)."""
        with self.lock, self.sessionmaker.begin() as session:
            if repository.delete_dag_run(session, dag_id, run_id) == 0:
                raise _no_run(dag_id, run_id)

    def runs_by_logical_date(self, dag: DAG) -> dict[datetime, tuple[str, str]]:
        """The DAG's runs in the DB: logical date (UTC) -> ``(run_id, state)``."""
        with self.sessionmaker() as session:
            return {r.logical_date: (r.run_id, r.state) for r in repository.list_dag_runs(session, dag.dag_id, limit=None)}

    # -- PauseFlags -----------------------------------------------------------------------------------
    def is_paused(self, dag: DAG) -> bool:
        """``dag.is_paused`` of the DB; a DAG the DB does not know yet: its manifest's ``spec.paused``."""
        with self.sessionmaker() as session:
            row = repository.get_dag(session, dag.dag_id)
            return dag.paused if row is None else bool(row.is_paused)

    def set_paused(self, dag: DAG, paused: bool) -> bool:
        """Set ``dag.is_paused`` (the row is created from the manifest when the DB has none)."""
        with self.lock, self.sessionmaker.begin() as session:
            if repository.get_dag(session, dag.dag_id) is None:
                repository.upsert_dag(session, dag.dag_id, dict(dag.spec), dag.namespace, is_paused=paused)
                return paused
            return bool(repository.set_dag_paused(session, dag.dag_id, paused).is_paused)

    def last_runs(self, run_types: tuple[str, ...] | None = None) -> dict[str, Any]:
        """dag_id -> its run with the newest logical date (a :class:`kubedag.store.models.DagRunRow`), among runs
        of ``run_types`` (None: any type; ``("scheduled",)`` gives the last automated data interval)."""
        newest = sa.select(DagRunRow.dag_id, sa.func.max(DagRunRow.logical_date).label("ld")).group_by(DagRunRow.dag_id)
        if run_types is not None:
            newest = newest.where(DagRunRow.run_type.in_(run_types))
        sub = newest.subquery()
        stmt = sa.select(DagRunRow).join(sub, sa.and_(DagRunRow.dag_id == sub.c.dag_id, DagRunRow.logical_date == sub.c.ld))
        with self.sessionmaker() as session:
            return {r.dag_id: r for r in session.scalars(stmt)}

    def paused_flags(self) -> dict[str, bool]:
        """dag_id -> ``is_paused`` of every DAG the DB knows."""
        with self.sessionmaker() as session:
            return {r.dag_id: bool(r.is_paused) for r in repository.list_dags(session)}

    def recorder(self, dag: DAG) -> DBRecorder:
        """The recorder of a run of ``dag`` carried to completion here: each pass in its own transaction, under
        :attr:`lock`."""
        return DBRecorder(self.sessionmaker, dag, self.lock)


__all__ = ["DBRecorder", "DbRuns", "open_db"]

"""Recording local runs in the metadata DB without slowing them down.

:class:`DBWriter` is a forked child process that owns the DB connection. It is started first thing
by ``kubedag dags test``, so it imports SQLAlchemy and checks migrations on another core while the
parent parses the manifest; afterwards the runner hands it each pass as plain rows and never waits
for a commit. Passes that queue up while a transaction is being written are written together in the
next one. :func:`pass_rows` (pure) turns a runner pass into those rows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kubedag.core.states import TaskInstanceState

if TYPE_CHECKING:  # this module stays light: the CLI imports it before anything heavy, then forks
    from kubedag.core import engine
    from kubedag.local.runner import TryRecord
    from kubedag.core.spec.dag import DAG

HOSTNAME = os.uname().nodename if hasattr(os, "uname") else "localhost"


@dataclass(frozen=True)
class RunSetup:
    """What the writer does before the first pass: upsert the DAG, replace any run at the same
    logical date (as Airflow's ``dag.test``), create the run."""

    dag_id: str
    spec: Mapping[str, Any]
    namespace: str | None
    run_id: str
    run_type: str
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    conf: Mapping[str, Any]
    queued_at: datetime


@dataclass(frozen=True)
class PassRows:
    """One runner pass as rows: the run's state fields, task instance fields by task_id, and
    ``(task_id, try_number, fields)`` for tries (shapes as :func:`kubedag.store.repository.record_pass`)."""

    dag_id: str
    run_id: str
    run_state: str
    run_start: datetime | None
    run_end: datetime | None
    task_instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    tries: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    xcoms: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    """``(task_id, try_number, {key: JSON value})`` pushed by tries that ended in this pass."""


def pass_rows(
    dag: DAG,
    run: engine.DagRun,
    tis: list[engine.TaskInstance],
    tries: list[TryRecord],
    xcoms: list[tuple[str, int, dict[str, Any]]] | None = None,
) -> PassRows:
    """Turn a runner pass into :class:`PassRows`. Durations in seconds; datetimes stay UTC-aware.
    ``xcoms``: ``(task_id, try_number, {key: value})`` of tries that ended in the pass (see
    :func:`kubedag.core.execution.finish_try`)."""
    ti_rows: dict[str, dict[str, Any]] = {}
    for ti in tis:
        task = dag.tasks.get(ti.task_id)
        duration = (ti.end_date - ti.start_date).total_seconds() if ti.start_date and ti.end_date else None
        ti_rows[ti.task_id] = {
            "state": None if ti.state == TaskInstanceState.NONE else str(ti.state),
            "try_number": ti.try_number,
            "max_tries": ti.max_tries if ti.max_tries is not None else task.retries if task else 0,
            "reason": ti.reason,
            "start_date": ti.start_date, "end_date": ti.end_date, "next_retry_at": ti.next_retry_at,
            "duration": duration, "exit_code": ti.exit_code, "hostname": HOSTNAME,
        }
    try_rows = []
    for t in tries:
        fields: dict[str, Any] = {"state": str(t.state), "hostname": HOSTNAME}
        for name in ("start_date", "end_date", "exit_code", "reason", "log_location"):
            value = getattr(t, name)
            if value is not None:
                fields[name] = value
        if t.start_date and t.end_date:
            fields["duration"] = (t.end_date - t.start_date).total_seconds()
        try_rows.append((t.task_id, t.try_number, fields))
    return PassRows(run.dag_id, run.run_id, str(run.state), run.start_date, run.end_date, ti_rows, try_rows,
                    list(xcoms or ()))


def write_setup(session: Any, setup: RunSetup) -> None:
    """Apply a :class:`RunSetup` in ``session`` (never commits)."""
    from kubedag.store import repository

    repository.upsert_dag(session, setup.dag_id, dict(setup.spec), setup.namespace)
    repository.delete_dag_run(session, setup.dag_id, setup.run_id, logical_date=setup.logical_date)
    repository.create_dag_run(
        session, dag_id=setup.dag_id, run_id=setup.run_id, run_type=setup.run_type,
        logical_date=setup.logical_date, data_interval_start=setup.data_interval_start,
        data_interval_end=setup.data_interval_end, conf=dict(setup.conf), queued_at=setup.queued_at,
    )


def write_rows(session: Any, rows: PassRows) -> None:
    """Apply one :class:`PassRows` in ``session`` (never commits; idempotent)."""
    from kubedag.store import repository

    repository.set_dag_run_state(session, rows.dag_id, rows.run_id, rows.run_state, start_date=rows.run_start, end_date=rows.run_end)
    repository.record_pass(session, rows.dag_id, rows.run_id, task_instances=rows.task_instances, tries=rows.tries)
    for task_id, try_number, values in rows.xcoms:
        repository.set_xcoms(session, rows.dag_id, rows.run_id, task_id, try_number, values)


class DBWriter:
    """A child process that writes to the metadata DB (``database_url`` or the default).

    Protocol: :meth:`setup` once, then :meth:`save` per pass, then :meth:`close`. Any method raises
    ``RuntimeError`` naming the writer's error once it has failed, so the caller stops the run.
    Start it before threads exist in the parent (it forks).
    """

    def __init__(self, database_url: str | None = None) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_writer_main, args=(child, database_url), name="kubedag-db-writer", daemon=True)
        self._process.start()
        child.close()
        self._error: str | None = None
        self._closed = False
        self.dag: DAG | None = None

    def _check(self, block: bool = False) -> None:
        while self._error is None and (block or self._conn.poll()):
            try:
                kind, detail = self._conn.recv()
            except EOFError:
                kind, detail = "error", f"the writer process exited with code {self._process.exitcode}"
            if kind == "error":
                self._error = detail
            if kind == "done" or block:
                break
        if self._error is not None:
            raise RuntimeError(f"the metadata DB writer failed: {self._error}")

    def setup(self, dag: DAG, setup: RunSetup) -> None:
        """Send the run's set-up (see :class:`RunSetup`); ``dag`` is used to build pass rows."""
        self.dag = dag
        self._check()
        self._conn.send(setup)

    def save(
        self,
        run: engine.DagRun,
        tis: list[engine.TaskInstance],
        tries: list[TryRecord],
        xcoms: list[tuple[str, int, dict[str, Any]]] | None = None,
    ) -> None:
        """Queue one pass (see :class:`~kubedag.local.runner.Recorder`); written in one transaction."""
        assert self.dag is not None, "DBWriter.setup() first"
        self._check()
        self._conn.send(pass_rows(self.dag, run, tis, tries, xcoms))

    def close(self) -> None:
        """Wait until everything sent is written, then end the child. Raises RuntimeError if it failed."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._error is None:
                self._conn.send(None)
            self._check(block=True)
        finally:
            self._process.join(timeout=30)
            self._conn.close()


def _writer_main(conn: Any, database_url: str | None) -> None:
    """The writer process: open the DB, then apply messages until ``None`` arrives."""
    try:
        from kubedag.store.db import open_store

        db, sessionmaker = open_store(database_url)
        done = False
        while not done:
            batch = [conn.recv()]
            while conn.poll():
                batch.append(conn.recv())
            done = None in batch
            with sessionmaker.begin() as session:
                for item in batch:
                    if isinstance(item, RunSetup):
                        write_setup(session, item)
                    elif isinstance(item, PassRows):
                        write_rows(session, item)
        db.dispose()
        conn.send(("done", None))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which stops the run
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        except OSError:
            pass
    finally:
        conn.close()

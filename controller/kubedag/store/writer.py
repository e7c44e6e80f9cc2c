"""Recording local runs in the metadata DB without slowing them down.

:class:`DBWriter` is a forked child process that owns the DB connection. It is started first thing
by ``kubedag dags test`` (:mod:`kubedag.cli.dags`, which hands it to the local runner as its recorder), so it
imports SQLAlchemy and checks migrations on another core while the
parent parses the manifest; afterwards the runner hands it each pass as plain rows and never waits
for a commit. Passes that queue up while a transaction is being written are written together in the
next one. :func:`kubedag.store.rows.pass_rows` (pure) turns a runner pass into those rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kubedag.app.records import HOSTNAME, PassRows, pass_rows
from kubedag.store.rows import write_rows

if TYPE_CHECKING:  # this module stays light: the CLI imports it before anything heavy, then forks
    from kubedag.core import engine
    from kubedag.core.tries import TryRecord
    from kubedag.core.spec.dag import DAG

__all__ = ["HOSTNAME", "DBWriter", "PassRows", "RunSetup", "pass_rows", "write_rows", "write_setup"]


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
    state: str = "running"
    """Created ``running``: the run belongs to the process that runs it (``dags test``, a local trigger), never
    ``queued``, which would let a scheduler on the same DB pick it up too."""


def write_setup(session: Any, setup: RunSetup) -> None:
    """Apply a :class:`RunSetup` in ``session`` (never commits)."""
    from kubedag.store import repository

    repository.upsert_dag(session, setup.dag_id, dict(setup.spec), setup.namespace)
    repository.delete_dag_run(session, setup.dag_id, setup.run_id, logical_date=setup.logical_date)
    repository.create_dag_run(
        session, dag_id=setup.dag_id, run_id=setup.run_id, run_type=setup.run_type,
        logical_date=setup.logical_date, data_interval_start=setup.data_interval_start,
        data_interval_end=setup.data_interval_end, conf=dict(setup.conf), queued_at=setup.queued_at,
        state=setup.state,
    )


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

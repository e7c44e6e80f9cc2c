"""The operations on this machine: the ports of :mod:`kubedag.app.operations` on the metadata DB and a DAG
folder, and the local runs that ``dags backfill -f`` and ``tasks clear -f`` carry to completion.

* :class:`DbRuns`: :class:`~kubedag.app.operations.RunsRepository` and :class:`~kubedag.app.operations.PauseFlags`
  on the metadata DB (the same one ``kubedag dags test`` and ``kubedag scheduler`` write). A clear deletes the
  cleared tasks' XComs, as Airflow's ``clear_task_instances``. Writes are serialised by one lock (SQLite has
  one writer).
* :class:`FolderDags`: :class:`~kubedag.app.operations.DagSource` on a DAG folder (:class:`kubedag.local.bag.DagBag`).
* :func:`run_backfill`: the ``create`` and ``reset`` runs of :func:`kubedag.app.operations.plan_backfill` run
  to completion with :class:`kubedag.local.runner.LocalRunner`, at most ``max_active_runs`` at once, each in
  its own thread; :func:`resume_run`: a reopened run (after a clear) run to completion.

The runner's options (:class:`~kubedag.local.runner.RunOptions`) come from the caller, built by
:func:`kubedag.local.session.local_options`, so the DAG's ``variablesFrom``/``connectionsFrom``, Pools,
notifiers and the DB URL of trigger and ``externalTask`` tasks apply as in ``dags test``.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kubedag.app import operations as ops
from kubedag.core import engine
from kubedag.core.spec.dag import DAG
from kubedag.core.states import DagRunState, RunType
from kubedag.local.runner import LocalRunner, RunOptions, utcnow


_KIND_DAG = re.compile(r"^\s*kind:\s*[\"']?DAG\b", re.MULTILINE)


def open_db(database_url: str | None = None) -> Any:
    """A SQLAlchemy sessionmaker on the metadata DB (``database_url`` or the default), migrated to head."""
    from kubedag.store.db import open_store

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
        from kubedag.store.rows import pass_rows, write_rows

        rows = pass_rows(self.dag, run, tis, tries, xcoms) if xcoms else pass_rows(self.dag, run, tis, tries)
        with self.lock, self.sessionmaker.begin() as session:
            write_rows(session, rows)


def _run_from_row(row: Any) -> engine.DagRun:
    return engine.DagRun(
        dag_id=row.dag_id, run_id=row.run_id, run_type=RunType(row.run_type), logical_date=row.logical_date,
        data_interval_start=row.data_interval_start or row.logical_date,
        data_interval_end=row.data_interval_end or row.logical_date,
        state=DagRunState(row.state), start_date=row.start_date, end_date=row.end_date, conf=dict(row.conf or {}),
    )


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
        import sqlalchemy as sa

        from kubedag.store import repository
        from kubedag.store.models import DagRunRow

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
        from kubedag.core.runpass import ti_from_row
        from kubedag.store import repository

        row = repository.get_dag_run(session, dag.dag_id, run_id)
        if row is None:
            raise _no_run(dag.dag_id, run_id)
        tis = {r.task_id: ti_from_row(r) for r in repository.get_task_instances(session, dag.dag_id, run_id)}
        return ops.LoadedRun(_run_from_row(row), tis)

    def apply(self, dag: DAG, change: ops.RunChange) -> None:
        """Write a clear or mark: the run's state and dates (None clears them), the changed task instances and,
        for a clear, the deletion of the cleared tasks' XComs."""
        from kubedag.store.rows import pass_rows
        from kubedag.store import repository

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
        from kubedag.store import repository

        with self.lock, self.sessionmaker.begin() as session:
            if repository.delete_dag_run(session, dag_id, run_id) == 0:
                raise _no_run(dag_id, run_id)

    def runs_by_logical_date(self, dag: DAG) -> dict[datetime, tuple[str, str]]:
        """The DAG's runs in the DB: logical date (UTC) -> ``(run_id, state)``."""
        from kubedag.store import repository

        with self.sessionmaker() as session:
            return {r.logical_date: (r.run_id, r.state) for r in repository.list_dag_runs(session, dag.dag_id, limit=None)}

    # -- PauseFlags -----------------------------------------------------------------------------------
    def is_paused(self, dag: DAG) -> bool:
        """``dag.is_paused`` of the DB; a DAG the DB does not know yet: its manifest's ``spec.paused``."""
        from kubedag.store import repository

        with self.sessionmaker() as session:
            row = repository.get_dag(session, dag.dag_id)
            return dag.paused if row is None else bool(row.is_paused)

    def set_paused(self, dag: DAG, paused: bool) -> bool:
        """Set ``dag.is_paused`` (the row is created from the manifest when the DB has none)."""
        from kubedag.store import repository

        with self.lock, self.sessionmaker.begin() as session:
            if repository.get_dag(session, dag.dag_id) is None:
                repository.upsert_dag(session, dag.dag_id, dict(dag.spec), dag.namespace, is_paused=paused)
                return paused
            return bool(repository.set_dag_paused(session, dag.dag_id, paused).is_paused)

    def last_runs(self, run_types: tuple[str, ...] | None = None) -> dict[str, Any]:
        """dag_id -> its run with the newest logical date (a :class:`kubedag.store.models.DagRunRow`), among runs
        of ``run_types`` (None: any type; ``("scheduled",)`` gives the last automated data interval)."""
        import sqlalchemy as sa

        from kubedag.store.models import DagRunRow

        newest = sa.select(DagRunRow.dag_id, sa.func.max(DagRunRow.logical_date).label("ld")).group_by(DagRunRow.dag_id)
        if run_types is not None:
            newest = newest.where(DagRunRow.run_type.in_(run_types))
        sub = newest.subquery()
        stmt = sa.select(DagRunRow).join(sub, sa.and_(DagRunRow.dag_id == sub.c.dag_id, DagRunRow.logical_date == sub.c.ld))
        with self.sessionmaker() as session:
            return {r.dag_id: r for r in session.scalars(stmt)}

    def paused_flags(self) -> dict[str, bool]:
        """dag_id -> ``is_paused`` of every DAG the DB knows."""
        from kubedag.store import repository

        with self.sessionmaker() as session:
            return {r.dag_id: bool(r.is_paused) for r in repository.list_dags(session)}


class FolderDags:
    """The DAGs of a folder's YAML manifests (:class:`kubedag.local.bag.DagBag`), as Airflow's DAG bag."""

    def __init__(self, folder: Path) -> None:
        from kubedag.local.bag import DagBag

        self.folder = Path(folder)
        self.bag = DagBag(self.folder)
        self.errors: dict[str, str] = {}
        """File name -> why it was skipped by :meth:`dags`."""

    def dag(self, name: str) -> DAG:
        """The DAG ``name``. Raises :class:`~kubedag.app.operations.NotFound` (or
        :class:`~kubedag.app.operations.OperationError` when its manifest is invalid)."""
        from kubedag.local.bag import DagBagError

        try:
            return self.bag.dag(name)
        except DagBagError as exc:
            if "is invalid" in str(exc):
                raise ops.OperationError(str(exc)) from None
            raise ops.NotFound(str(exc)) from None

    def dags(self) -> list[DAG]:
        """Every valid DAG of the folder's ``*.yaml``/``*.yml`` files (not recursive), by name; a file that
        does not parse or holds an invalid DAG is skipped and recorded in :attr:`errors`."""
        from kubedag.core.spec import DAGValidationError
        from kubedag.core.spec.loader import load_dags

        found: dict[str, DAG] = {}
        self.errors = {}
        try:
            files = sorted(p for p in self.folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        except OSError as exc:
            raise ops.NotFound(f"DAG folder {self.folder}: {exc.strerror or exc}") from None
        for path in files:
            try:
                if not _KIND_DAG.search(path.read_text(encoding="utf-8", errors="replace")):
                    continue
                for dag in load_dags(path):
                    found.setdefault(dag.dag_id, dag)
            except DAGValidationError as exc:
                self.errors[path.name] = "; ".join(str(e) for e in exc.errors)
            except OSError as exc:
                self.errors[path.name] = str(exc.strerror or exc)
        return [found[name] for name in sorted(found)]


# --- running runs on this machine ----------------------------------------------------------------------


@dataclass
class BackfillResult:
    """A finished backfill: run id -> final state of each run it ran (created or reset)."""

    states: dict[str, str]

    @property
    def failed(self) -> list[str]:
        """Run ids that failed."""
        return [run_id for run_id, state in self.states.items() if state != DagRunState.SUCCESS]


def _prepare(runs: DbRuns, dag: DAG, planned: ops.PlannedRun, conf: Mapping[str, Any]) -> ops.LoadedRun:
    """Create a backfill run (queued), or clear every task of an existing run; the run and its task instances."""
    if planned.action == "create":
        run = engine.DagRun(dag_id=dag.dag_id, run_id=planned.run_id, run_type=RunType.BACKFILL,
                            logical_date=planned.logical_date, data_interval_start=planned.data_interval_start,
                            data_interval_end=planned.data_interval_end, conf=dict(conf))
        runs.create_run(dag, run)
    else:
        ops.clear(dag, runs, planned.run_id, [], now=utcnow())
    return runs.load_run(dag, planned.run_id)


def run_backfill(
    dag: DAG,
    planned: Iterable[ops.PlannedRun],
    *,
    runs: DbRuns,
    options: RunOptions,
    max_active_runs: int,
    conf: Mapping[str, Any] | None = None,
    on_start: Callable[[str], None] | None = None,
    on_finish: Callable[[str, str], None] | None = None,
) -> BackfillResult:
    """Run the ``create`` and ``reset`` runs of ``planned`` to completion, oldest first, at most
    ``max_active_runs`` (>= 1) at once, each with a :class:`~kubedag.local.runner.LocalRunner` in its own
    thread (with ``options``). ``on_start(run_id)`` and ``on_finish(run_id, state)`` are called from those
    threads. Ctrl-C kills every running try and re-raises.
    """
    todo = [p for p in planned if p.action in ("create", "reset")]
    pending: queue.Queue[ops.PlannedRun] = queue.Queue()
    for p in todo:
        pending.put(p)
    results: queue.Queue[tuple[str, str | BaseException]] = queue.Queue()
    active: dict[str, LocalRunner] = {}

    def worker() -> None:
        while True:
            try:
                item = pending.get_nowait()
            except queue.Empty:
                return
            try:
                loaded = _prepare(runs, dag, item, conf or {})
                runner = LocalRunner(dag, loaded.run, DBRecorder(runs.sessionmaker, dag, runs.lock), options,
                                     tis=loaded.tis)
                active[item.run_id] = runner
                if on_start is not None:
                    on_start(item.run_id)
                final = runner.run()
                active.pop(item.run_id, None)
                if on_finish is not None:
                    on_finish(item.run_id, str(final.state))
                results.put((item.run_id, str(final.state)))
            except BaseException as exc:  # noqa: BLE001 - reported to the main thread
                results.put((item.run_id, exc))

    threads = [threading.Thread(target=worker, name=f"kubedag-backfill-{i}", daemon=True)
               for i in range(min(max_active_runs, len(todo)))]
    for thread in threads:
        thread.start()
    states: dict[str, str] = {}
    try:
        while len(states) < len(todo):
            try:
                run_id, outcome = results.get(timeout=0.5)  # a timeout, so that Ctrl-C is seen
            except queue.Empty:
                continue
            if isinstance(outcome, BaseException):
                raise outcome
            states[run_id] = outcome
    except BaseException:
        while not pending.empty():
            try:
                pending.get_nowait()
            except queue.Empty:
                break
        for runner in list(active.values()):
            runner.launcher.kill_all("backfill interrupted")
        raise
    for thread in threads:
        thread.join()
    return BackfillResult({p.run_id: states[p.run_id] for p in todo})


def resume_run(dag: DAG, run: engine.DagRun, tis: Mapping[str, engine.TaskInstance], *, runs: DbRuns,
               options: RunOptions,
               on_update: Callable[[engine.DagRun, Mapping[str, engine.TaskInstance]], None] | None = None
               ) -> tuple[engine.DagRun, dict[str, engine.TaskInstance]]:
    """Run a reopened run to completion on this machine with ``options``; returns the finished run and its task
    instances. Task instances already finished are left as they are."""
    runner = LocalRunner(dag, run, DBRecorder(runs.sessionmaker, dag, runs.lock), options, tis=tis,
                         on_update=on_update)
    final = runner.run()
    return final, dict(runner.tis)


__all__ = ["BackfillResult", "DBRecorder", "DbRuns", "FolderDags", "open_db", "resume_run", "run_backfill"]

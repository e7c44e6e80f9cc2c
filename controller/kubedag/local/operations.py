"""Airflow's operations commands on this machine: ``dags backfill``, ``tasks clear``, ``tasks mark``, ``runs delete``.

The DAG comes from its manifest, the runs and task instances from the metadata DB (the same one ``kubedag
dags test`` writes). There is no scheduler on this machine, so a command that makes tasks runnable again
(backfill, clear) runs them itself, to completion, with :class:`kubedag.local.runner.LocalRunner`; every
pass is written to the DB by :class:`DBRecorder` (one transaction at a time: SQLite has one writer).

* :func:`plan_backfill` (pure) + :func:`run_backfill`: runs of type ``backfill`` (run id
  ``backfill__<logical date>``) for every schedule interval whose logical date is in ``[start, end]``
  (:func:`kubedag.core.timetable.backfill_infos`, Airflow 2.10's ``dags backfill`` range), at most
  ``max_active_runs`` at once, each in its own thread. A run that exists at a logical date is left alone,
  or with ``reset`` cleared (every task) and run again.
* :func:`clear_tasks` + :func:`resume_run`: :func:`kubedag.core.engine.clear` in the DB (and the cleared tasks'
  XComs deleted), then the reopened run is run to completion: exactly the cleared tasks run again, with
  the next try number.
* :func:`mark_tasks`: :func:`kubedag.core.engine.mark`, then the run's state re-evaluated by one engine plan that
  starts nothing.
* :func:`delete_run`: the run with its task instances, tries and XComs.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from kubedag.core import engine, timetable
from kubedag.core.spec.dag import DAG, to_utc
from kubedag.core.states import DagRunState, RunType, TaskInstanceState

FINISHED = (DagRunState.SUCCESS, DagRunState.FAILED)


class OperationError(Exception):
    """A local operation cannot be done (unknown run or task, bad range); the message is for the user."""


def open_db(database_url: str | None = None) -> Any:
    """A SQLAlchemy sessionmaker on the metadata DB (``database_url`` or the default), migrated to head."""
    from kubedag.store.db import open_store

    return open_store(database_url)[1]


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


def load_run(session: Any, dag: DAG, run_id: str) -> tuple[engine.DagRun, dict[str, engine.TaskInstance]]:
    """The run ``run_id`` of ``dag`` and its task instances, from the DB.

    Raises:
        OperationError: no such run (naming the command that lists runs).
    """
    from kubedag.core.runpass import ti_from_row
    from kubedag.store import repository

    row = repository.get_dag_run(session, dag.dag_id, run_id)
    if row is None:
        raise OperationError(f"no run {run_id!r} of DAG {dag.dag_id!r} in the metadata DB "
                             f"(see `kubedag runs list --dag {dag.dag_id}`)")
    tis = {r.task_id: ti_from_row(r) for r in repository.get_task_instances(session, dag.dag_id, run_id)}
    return _run_from_row(row), tis


def _write_reopened(session: Any, dag: DAG, run: engine.DagRun, updates: Mapping[str, engine.TaskInstance]) -> None:
    """Write a run reopened by clear/mark: its state and dates (None clears them) and the changed task instances."""
    from kubedag.store.rows import pass_rows
    from kubedag.store import repository

    row = repository.get_dag_run(session, dag.dag_id, run.run_id)
    assert row is not None
    if row.state != str(run.state):
        repository.set_dag_run_state(session, dag.dag_id, run.run_id, str(run.state))
    row.start_date, row.end_date = run.start_date, run.end_date
    rows = pass_rows(dag, run, list(updates.values()), [])
    repository.record_pass(session, dag.dag_id, run.run_id, task_instances=rows.task_instances, tries=[])


# --- backfill -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedRun:
    """One interval of a backfill. ``action``: ``create`` (a new backfill run), ``reset`` (an existing run
    cleared and run again) or ``exists`` (an existing run, left alone). ``state``: the existing run's."""

    run_id: str
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    action: str
    state: str | None = None

    def as_json(self) -> dict[str, Any]:
        """``{run_id, logical_date, data_interval_start, data_interval_end, action, state}``, instants ISO 8601 UTC."""
        return {"run_id": self.run_id, "logical_date": timetable.iso_utc(self.logical_date),
                "data_interval_start": timetable.iso_utc(self.data_interval_start),
                "data_interval_end": timetable.iso_utc(self.data_interval_end), "action": self.action,
                "state": self.state}


def plan_backfill(dag: DAG, start: datetime, end: datetime, existing: Mapping[datetime, tuple[str, str]],
                  *, reset: bool = False) -> list[PlannedRun]:
    """The runs of ``airflow dags backfill -s START -e END`` (Airflow 2.10), oldest first.

    ``start``/``end``: naive ones are read in the DAG's timezone; every interval whose logical date is in
    ``[start, end]`` (:func:`kubedag.core.timetable.backfill_infos`). ``existing``: logical date (UTC) ->
    ``(run_id, state)`` of the DAG's runs in the DB. A new run gets id ``backfill__<logical date>``.

    Raises:
        OperationError: ``end`` before ``start``, or too many intervals.
    """
    start_utc, end_utc = to_utc(start, dag.timezone), to_utc(end, dag.timezone)
    assert start_utc is not None and end_utc is not None
    if end_utc < start_utc:
        raise OperationError(f"--end-date {timetable.iso_utc(end_utc)} is before --start-date {timetable.iso_utc(start_utc)}")
    try:
        infos = timetable.backfill_infos(dag.timetable, start_utc, end_utc)
    except ValueError as exc:
        raise OperationError(str(exc)) from None
    out = []
    for info in infos:
        found = existing.get(info.logical_date)
        interval = info.data_interval
        if found is None:
            out.append(PlannedRun(timetable.run_id("backfill", info.logical_date), info.logical_date,
                                  interval.start, interval.end, "create"))
        else:
            out.append(PlannedRun(found[0], info.logical_date, interval.start, interval.end,
                                  "reset" if reset else "exists", found[1]))
    return out


def existing_runs(sessionmaker: Any, dag_id: str) -> dict[datetime, tuple[str, str]]:
    """The DAG's runs in the DB: logical date (UTC) -> ``(run_id, state)``."""
    from kubedag.store import repository

    with sessionmaker() as session:
        return {r.logical_date: (r.run_id, r.state) for r in repository.list_dag_runs(session, dag_id, limit=None)}


@dataclass
class BackfillResult:
    """A finished backfill: run id -> final state of each run it ran (created or reset)."""

    states: dict[str, str]

    @property
    def failed(self) -> list[str]:
        """Run ids that failed."""
        return [run_id for run_id, state in self.states.items() if state != DagRunState.SUCCESS]


def _prepare(sessionmaker: Any, dag: DAG, planned: PlannedRun, conf: Mapping[str, Any]
             ) -> tuple[engine.DagRun, dict[str, engine.TaskInstance]]:
    """Create a backfill run's row, or clear every task of an existing run; the run and its task instances."""
    from kubedag.store import repository

    with sessionmaker.begin() as session:
        if planned.action == "create":
            repository.upsert_dag(session, dag.dag_id, dict(dag.spec), dag.namespace)
            repository.create_dag_run(
                session, dag_id=dag.dag_id, run_id=planned.run_id, run_type="backfill",
                logical_date=planned.logical_date, data_interval_start=planned.data_interval_start,
                data_interval_end=planned.data_interval_end, conf=dict(conf),
            )
            return load_run(session, dag, planned.run_id)
        run, tis = load_run(session, dag, planned.run_id)
        result = engine.clear(dag, run, tis, [], now=_now())
        _write_reopened(session, dag, result.run, result.updates)
        repository.clear_xcoms(session, dag.dag_id, run.run_id, result.task_ids)
        return result.run, {**tis, **result.updates}


def _now() -> datetime:
    from kubedag.local.runner import utcnow

    return utcnow()


def run_backfill(
    dag: DAG,
    planned: Iterable[PlannedRun],
    *,
    workdir: Path,
    max_active_runs: int,
    conf: Mapping[str, Any] | None = None,
    database_url: str | None = None,
    no_retry_delay: bool = False,
    on_start: Callable[[str], None] | None = None,
    on_finish: Callable[[str, str], None] | None = None,
) -> BackfillResult:
    """Run the ``create`` and ``reset`` runs of ``planned`` to completion, oldest first, at most
    ``max_active_runs`` (>= 1) at once, each with a :class:`~kubedag.local.runner.LocalRunner` in its own
    thread (tasks as local processes in ``workdir``, logs in the data directory). ``on_start(run_id)`` and
    ``on_finish(run_id, state)`` are called from those threads. Ctrl-C kills every running try and re-raises.
    """
    from kubedag.local.runner import LocalRunner, RunOptions
    from kubedag.store import config

    todo = [p for p in planned if p.action in ("create", "reset")]
    sessionmaker = open_db(database_url)
    lock = threading.Lock()
    options = RunOptions(workdir=workdir, logs_dir=config.logs_dir(), no_retry_delay=no_retry_delay)
    pending: queue.Queue[PlannedRun | None] = queue.Queue()
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
                with lock:
                    run, tis = _prepare(sessionmaker, dag, item, conf or {})
                runner = LocalRunner(dag, run, DBRecorder(sessionmaker, dag, lock), options, tis=tis)
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


# --- clear, mark, delete --------------------------------------------------------------------------------


def _clear(session, dag: DAG, run_id: str, task_ids: Iterable[str], upstream: bool, downstream: bool,  # noqa: ANN001
           only_failed: bool) -> tuple[engine.DagRun, dict[str, engine.TaskInstance], engine.ClearResult]:
    """The run, its task instances as the DB holds them, and :func:`kubedag.core.engine.clear` of them (nothing written).

    Raises:
        OperationError: unknown run or task.
    """
    run, tis = load_run(session, dag, run_id)
    try:
        return run, tis, engine.clear(dag, run, tis, list(task_ids), upstream=upstream, downstream=downstream,
                                      only_failed=only_failed, now=_now())
    except ValueError as exc:
        raise OperationError(str(exc)) from None


def preview_clear(dag: DAG, run_id: str, task_ids: Iterable[str], *, upstream: bool = False, downstream: bool = False,
                  only_failed: bool = False, database_url: str | None = None) -> list[tuple[str, str, int]]:
    """The task instances :func:`clear_tasks` would reset, as ``(task_id, state, try_number)``, changing nothing.

    Raises:
        OperationError: unknown run or task.
    """
    sessionmaker = open_db(database_url)
    with sessionmaker() as session:
        _, tis, result = _clear(session, dag, run_id, task_ids, upstream, downstream, only_failed)
    out = []
    for task_id in result.task_ids:
        ti = tis.get(task_id) or engine.TaskInstance(task_id)
        out.append((task_id, str(ti.state), ti.try_number))
    return out


def clear_tasks(dag: DAG, run_id: str, task_ids: Iterable[str], *, upstream: bool = False, downstream: bool = False,
                only_failed: bool = False, database_url: str | None = None
                ) -> tuple[engine.ClearResult, dict[str, engine.TaskInstance]]:
    """Clear task instances of run ``run_id`` in the DB, as ``airflow tasks clear``: :func:`kubedag.core.engine.clear`
    (the tasks named, all when none is, with their upstream/downstream tasks, only the failed ones with
    ``only_failed``), their XComs deleted, the run reopened (``queued``). Returns the clear and every task
    instance after it (for :func:`resume_run`).

    Raises:
        OperationError: unknown run or task.
    """
    from kubedag.store import repository

    sessionmaker = open_db(database_url)
    with sessionmaker.begin() as session:
        _, tis, result = _clear(session, dag, run_id, task_ids, upstream, downstream, only_failed)
        if result.updates:
            _write_reopened(session, dag, result.run, result.updates)
            repository.clear_xcoms(session, dag.dag_id, run_id, result.task_ids)
    return result, {**tis, **result.updates}


def resume_run(dag: DAG, run: engine.DagRun, tis: Mapping[str, engine.TaskInstance], *, workdir: Path,
               database_url: str | None = None, no_retry_delay: bool = False,
               on_update: Callable[[engine.DagRun, Mapping[str, engine.TaskInstance]], None] | None = None
               ) -> tuple[engine.DagRun, dict[str, engine.TaskInstance]]:
    """Run a reopened run to completion on this machine (there is no local scheduler); returns the finished
    run and its task instances. Task instances already finished are left as they are."""
    from kubedag.local.runner import LocalRunner, RunOptions
    from kubedag.store import config

    options = RunOptions(workdir=workdir, logs_dir=config.logs_dir(), no_retry_delay=no_retry_delay)
    runner = LocalRunner(dag, run, DBRecorder(open_db(database_url), dag, threading.Lock()), options, tis=tis,
                         on_update=on_update)
    final = runner.run()
    return final, dict(runner.tis)


def mark_tasks(dag: DAG, run_id: str, task_ids: Iterable[str], state: str, *, database_url: str | None = None
               ) -> tuple[engine.DagRun, tuple[str, ...]]:
    """Set task instances of run ``run_id`` to ``state`` (``success``, ``failed`` or ``skipped``), as Airflow's
    mark success/failed (:func:`kubedag.core.engine.mark`), then re-evaluate the run's state with one engine plan
    that starts nothing (so downstream tasks may become ``upstream_failed``/``skipped`` and the run finish).
    Returns the run (its new state) and the tasks whose state changed.

    Raises:
        OperationError: unknown run, task or state.
    """
    sessionmaker = open_db(database_url)
    now = _now()
    with sessionmaker.begin() as session:
        run, tis = load_run(session, dag, run_id)
        try:
            result = engine.mark(dag, run, tis, list(task_ids), TaskInstanceState(state), now=now)
        except ValueError as exc:
            raise OperationError(str(exc)) from None
        tis = {**tis, **result.updates}
        run = result.run
        if run.state == DagRunState.QUEUED:
            run = replace(run, state=DagRunState.RUNNING, start_date=run.start_date or now)
        plan = engine.plan(dag, run, tis, now, free_slots=0)
        settled = {t: ti for t, ti in plan.updates.items()
                   if ti.state not in (TaskInstanceState.SCHEDULED, TaskInstanceState.QUEUED)}
        _write_reopened(session, dag, plan.run, {**result.updates, **settled})
    return plan.run, result.task_ids


def delete_run(dag_id: str, run_id: str, *, database_url: str | None = None) -> None:
    """Delete run ``run_id`` of ``dag_id`` with its task instances, tries and XComs (log files are kept).

    Raises:
        OperationError: no such run.
    """
    from kubedag.store import repository

    sessionmaker = open_db(database_url)
    with sessionmaker.begin() as session:
        if repository.delete_dag_run(session, dag_id, run_id) == 0:
            raise OperationError(f"no run {run_id!r} of DAG {dag_id!r} in the metadata DB "
                                 f"(see `kubedag runs list --dag {dag_id}`)")


__all__ = [
    "BackfillResult", "DBRecorder", "OperationError", "PlannedRun", "clear_tasks", "delete_run", "existing_runs",
    "load_run", "mark_tasks", "plan_backfill", "preview_clear", "resume_run", "run_backfill",
]

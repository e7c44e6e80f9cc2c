"""The metadata DB's reads and writes of this machine's commands: ``runs list``, ``logs``, ``tasks test``'s
recorded run, and a local ``trigger`` task's run (``python -m kubedag.cli.trigger``).

Each function opens the store (``database_url`` or :func:`kubedag.store.config.database_url`), does one unit of
work and returns plain values (dicts, :mod:`kubedag.core` objects, strings): the entry points
(:mod:`kubedag.cli`) compose them with the local adapter, which never imports the store (issue 9). Datetimes are
timezone-aware UTC.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from kubedag.core import engine, timetable
from kubedag.core.spec import parse_dag
from kubedag.store import repository
from kubedag.store.db import open_store
from kubedag.store.models import DagRunRow
from kubedag.store.scheduler_store import run_from_row

__all__ = ["LogNotFound", "existing_run", "keep_xcoms", "list_runs", "queue_run", "read_log", "recorded_run",
           "wait_for_run"]


# -------------------------------------------------------------------------------- runs list, logs
def list_runs(dag_id: str | None = None, limit: int = 50, database_url: str | None = None) -> list[dict[str, Any]]:
    """DAG runs from the metadata DB, newest logical date first, as JSON-ready dicts."""
    _, sessionmaker = open_store(database_url)
    with sessionmaker() as session:
        rows = repository.list_dag_runs(session, dag_id, limit)
        return [
            {
                "dag_id": r.dag_id, "run_id": r.run_id, "run_type": r.run_type, "state": r.state,
                "logical_date": timetable.iso_utc(r.logical_date), "data_interval_start": timetable.iso_utc(r.data_interval_start),
                "data_interval_end": timetable.iso_utc(r.data_interval_end), "start_date": timetable.iso_utc(r.start_date),
                "end_date": timetable.iso_utc(r.end_date),
            }
            for r in rows
        ]


class LogNotFound(LookupError):
    """No log for that DAG, run, task and try."""


def read_log(dag_id: str, run_id: str, task_id: str, try_number: int | None = None, database_url: str | None = None) -> str:
    """The log text of one try (the latest when ``try_number`` is None): the archived copy in the DB if
    there is one, else the file at the try's log location.

    Raises:
        LogNotFound: naming what is missing (run, task instance, try, or the log file).
    """
    _, sessionmaker = open_store(database_url)
    with sessionmaker() as session:
        if repository.get_dag_run(session, dag_id, run_id) is None:
            raise LogNotFound(f"no DAG run {run_id!r} of DAG {dag_id!r}")
        row = repository.get_try(session, dag_id, run_id, task_id, try_number)
        if row is None:
            which = f"try {try_number}" if try_number else "any try"
            raise LogNotFound(f"no {which} of task {task_id!r} in run {run_id!r}")
        if row.log:
            return row.log
        if row.log_location and Path(row.log_location).exists():
            return Path(row.log_location).read_text(encoding="utf-8", errors="replace")
        raise LogNotFound(f"the log of try {row.try_number} is gone (was at {row.log_location})")


# ------------------------------------------------------------------------------------- tasks test
def recorded_run(dag_id: str, logical_date: datetime, database_url: str | None) -> tuple[engine.DagRun | None, dict]:
    """The run of ``dag_id`` recorded at ``logical_date`` in the metadata DB, if any, with its XComs
    (``{(task_id, key): value}``, each from the newest try that pushed it); ``(None, {})`` without one."""
    _, sessionmaker = open_store(database_url)
    with sessionmaker() as session:
        row = session.scalars(sa.select(DagRunRow).where(DagRunRow.dag_id == dag_id,
                                                         DagRunRow.logical_date == logical_date)).first()
        if row is None:
            return None, {}
        return run_from_row(row), repository.latest_xcoms(session, dag_id, row.run_id)


def keep_xcoms(dag_id: str, run_id: str, task_id: str, xcoms: Mapping[str, Any], database_url: str | None) -> None:
    """Store the XComs a tested task pushed into the recorded run it was tested in (as Airflow's ``tasks test``
    in an existing DAG run), so that a downstream task tested next pulls them."""
    _, sessionmaker = open_store(database_url)
    with sessionmaker.begin() as session:
        ti = repository.get_task_instance(session, dag_id, run_id, task_id)
        if ti is None:
            ti = repository.upsert_task_instance(session, dag_id, run_id, task_id, state=None)
        repository.set_xcoms(session, dag_id, run_id, task_id, max(ti.try_number, 1), dict(xcoms))


# ----------------------------------------------------------------------------- a local trigger task
def existing_run(database_url: str | None, dag_id: str, run_id: str, logical_date: datetime) -> str | None:
    """The run id of a run of ``dag_id`` with ``run_id`` or at ``logical_date``, if there is one."""
    db, sessionmaker = open_store(database_url)
    try:
        with sessionmaker() as session:
            stmt = sa.select(DagRunRow.run_id).where(
                DagRunRow.dag_id == dag_id, sa.or_(DagRunRow.run_id == run_id, DagRunRow.logical_date == logical_date)
            )
            return session.scalars(stmt).first()
    finally:
        db.dispose()


def queue_run(database_url: str | None, dag_id: str, run_id: str, logical_date: datetime, conf: dict,
              reset: bool) -> str | None:
    """Create a queued manual run of ``dag_id`` (replacing one at that logical date when ``reset``), its data
    interval inferred by the DAG's timetable from the spec the DB holds; the error message when the DAG is not in
    the metadata DB, else None."""
    db, sessionmaker = open_store(database_url)
    try:
        with sessionmaker.begin() as session:
            row = repository.get_dag(session, dag_id)
            if row is None:
                return f"no DAG named {dag_id!r} in the metadata DB (is its manifest in the scheduler's --dags-folder?)"
            dag = parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": dag_id},
                             "spec": row.spec}, f"DAG {dag_id!r} in the metadata DB")
            interval = dag.timetable.infer_manual_data_interval(run_after=logical_date)
            if reset:
                repository.delete_dag_run(session, dag_id, run_id, logical_date=logical_date)
            repository.create_dag_run(session, dag_id=dag_id, run_id=run_id, run_type="manual",
                                      logical_date=logical_date, data_interval_start=interval.start,
                                      data_interval_end=interval.end, conf=conf)
        return None
    finally:
        db.dispose()


def wait_for_run(database_url: str | None, dag_id: str, run_id: str, poke_interval: float) -> str:
    """Poll the run's state every ``poke_interval`` seconds until it is finished; returns it (``failed`` when the
    run is gone)."""
    db, sessionmaker = open_store(database_url)
    try:
        while True:
            with sessionmaker() as session:
                row = repository.get_dag_run(session, dag_id, run_id)
                state = row.state if row is not None else "failed"
            if state not in ("queued", "running"):
                return state
            time.sleep(poke_interval)
    finally:
        db.dispose()

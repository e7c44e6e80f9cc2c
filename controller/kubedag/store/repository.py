"""Reads and writes of kubedag's metadata DB, as plain functions over a Session.

Transactions belong to the caller (as in Airflow, where ``@provide_session``
functions never commit a session they were given): every function here takes
a :class:`~sqlalchemy.orm.Session`, may ``flush()`` so that errors surface at
the call, and NEVER commits or rolls back. Typical use::

    with Session.begin() as session:   # commit on success, rollback on error
        run = create_dag_run(session, dag_id="etl", run_id="manual__...", ...)
        upsert_task_instance(session, "etl", run.run_id, "extract", state="scheduled")

Conventions for every function:

* Datetimes must be timezone-aware (naive ones raise ``ValueError``); they are
  stored and returned in UTC. Durations are ``float`` seconds.
* States are the values of :class:`~kubedag.store.models.DagRunState`,
  :class:`~kubedag.store.models.DagRunType` and
  :class:`~kubedag.store.models.TaskInstanceState` (plain strings or the
  enums); a task instance's ``None`` state (Airflow's ``none``) may also be
  given as ``"none"``. Other values raise ``ValueError``.
* Writes are idempotent: repeating a write with the same arguments changes
  nothing (``updated_at`` moves only when a value changes). Inserts use
  ``INSERT ... ON CONFLICT DO NOTHING`` so concurrent writers of the same key
  do not fail.
* A missing parent row raises :class:`DagNotFound`, :class:`DagRunNotFound`
  or :class:`TaskInstanceNotFound` (all ``LookupError``). Other constraint
  violations raise ``sqlalchemy.exc.IntegrityError``; on PostgreSQL the
  caller must then roll back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ._helpers import TI_FIELDS, TRY_FIELDS, apply_changes, as_utc, check_enum, insert_ignore, json_object, upsert_row
from .errors import DagNotFound, DagRunNotFound, StoreError, TaskInstanceNotFound
from .models import DagRow, DagRunRow, DagRunState, DagRunType, utcnow

# Task instances, tries and XComs live in their own modules; re-exported so that ``repository.<name>`` keeps working.
from .task_instances import (
    current_rendered_fields, get_task_instance, get_task_instances, get_tries, get_try, record_pass, record_try,
    upsert_task_instance,
)
from .xcoms import RETURN_KEY, clear_xcoms, get_xcom, latest_xcoms, list_xcoms, set_xcoms

__all__ = [
    "StoreError",
    "DagNotFound",
    "DagRunNotFound",
    "TaskInstanceNotFound",
    "TI_FIELDS",
    "TRY_FIELDS",
    "upsert_dag",
    "get_dag",
    "list_dags",
    "set_dag_paused",
    "create_dag_run",
    "get_dag_run",
    "list_dag_runs",
    "set_dag_run_state",
    "upsert_task_instance",
    "get_task_instance",
    "get_task_instances",
    "record_try",
    "get_tries",
    "get_try",
    "current_rendered_fields",
    "delete_dag_run",
    "record_pass",
    "RETURN_KEY",
    "set_xcoms",
    "get_xcom",
    "latest_xcoms",
    "list_xcoms",
    "clear_xcoms",
]


# ------------------------------------------------------------------------ dags
def upsert_dag(
    session: Session,
    dag_id: str,
    spec: Mapping[str, Any],
    namespace: str | None = None,
    fileloc: str | None = None,
    *,
    is_paused: bool | None = None,
) -> DagRow:
    """Insert or update the ``dag`` row of ``dag_id``; return it.

    ``spec`` (a JSON-serialisable mapping: the manifest's spec), ``namespace``
    and ``fileloc`` replace the stored values. ``is_paused`` None keeps the
    stored flag (False for a new DAG). ``created_at`` is set once;
    ``updated_at`` (UTC) moves only when something changed.
    Raises ``TypeError`` if ``spec`` is not JSON-serialisable.
    """
    now = utcnow()
    values: dict[str, Any] = {
        "spec": json_object("spec", spec),
        "namespace": namespace,
        "fileloc": fileloc,
    }
    if is_paused is not None:
        values["is_paused"] = bool(is_paused)
    new = {"is_paused": False, **values, "created_at": now, "updated_at": now}
    return upsert_row(session, DagRow, {"dag_id": dag_id}, new, values, updated_at=now)


def get_dag(session: Session, dag_id: str) -> DagRow | None:
    """The ``dag`` row of ``dag_id``, or None."""
    return session.get(DagRow, dag_id)


def list_dags(session: Session) -> list[DagRow]:
    """All ``dag`` rows, ordered by dag_id."""
    return list(session.scalars(sa.select(DagRow).order_by(DagRow.dag_id)))


def set_dag_paused(session: Session, dag_id: str, is_paused: bool) -> DagRow:
    """Pause or unpause a DAG; return its row. Raises :class:`DagNotFound`."""
    row = session.get(DagRow, dag_id)
    if row is None:
        raise DagNotFound(dag_id)
    if apply_changes(row, {"is_paused": bool(is_paused)}):
        row.updated_at = utcnow()
        session.flush()
    return row


# -------------------------------------------------------------------- dag runs
def create_dag_run(
    session: Session,
    *,
    dag_id: str,
    run_id: str,
    run_type: str,
    logical_date: dt.datetime,
    data_interval_start: dt.datetime | None = None,
    data_interval_end: dt.datetime | None = None,
    conf: Mapping[str, Any] | None = None,
    state: str = DagRunState.QUEUED,
    queued_at: dt.datetime | None = None,
) -> DagRunRow:
    """Create the dag run ``(dag_id, run_id)``, or return it unchanged if it exists.

    Idempotent on ``(dag_id, run_id)``: for an existing run the other
    arguments are ignored. ``run_type``: scheduled | manual | backfill;
    ``state``: queued | running | success | failed; ``conf``: JSON-serialisable
    mapping (default ``{}``); ``queued_at`` defaults to now (UTC) when
    ``state`` is queued, else None. Datetimes: aware, stored UTC.

    Raises :class:`DagNotFound` if the DAG has no ``dag`` row; ``ValueError``
    for a bad run_type / state / naive datetime;
    ``sqlalchemy.exc.IntegrityError`` if another run of the DAG has the same
    ``logical_date`` (UNIQUE(dag_id, logical_date), as in Airflow).
    """
    existing = get_dag_run(session, dag_id, run_id)
    if existing is not None:
        return existing
    state = check_enum("dag run state", state, DagRunState)
    if queued_at is None and state == DagRunState.QUEUED:
        queued_at = utcnow()
    values = {
        "dag_id": dag_id,
        "run_id": run_id,
        "run_type": check_enum("run_type", run_type, DagRunType),
        "state": state,
        "logical_date": as_utc("logical_date", logical_date),
        "data_interval_start": as_utc("data_interval_start", data_interval_start),
        "data_interval_end": as_utc("data_interval_end", data_interval_end),
        "conf": json_object("conf", conf),
        "queued_at": as_utc("queued_at", queued_at),
    }
    if values["logical_date"] is None:
        raise ValueError("logical_date is required")
    if session.get(DagRow, dag_id) is None:
        raise DagNotFound(dag_id)
    insert_ignore(session, DagRunRow, values, ["dag_id", "run_id"])
    row = get_dag_run(session, dag_id, run_id)
    assert row is not None
    return row


def get_dag_run(session: Session, dag_id: str, run_id: str) -> DagRunRow | None:
    """The dag run ``(dag_id, run_id)``, or None."""
    stmt = sa.select(DagRunRow).where(DagRunRow.dag_id == dag_id, DagRunRow.run_id == run_id)
    return session.scalars(stmt).one_or_none()


def list_dag_runs(
    session: Session,
    dag_id: str | None = None,
    limit: int | None = 100,
    *,
    state: str | Iterable[str] | None = None,
) -> list[DagRunRow]:
    """Dag runs, newest ``logical_date`` first (then newest id).

    ``dag_id`` None lists every DAG's runs; ``state`` filters on one state or
    any of several; ``limit`` None returns all.
    """
    stmt = sa.select(DagRunRow)
    if dag_id is not None:
        stmt = stmt.where(DagRunRow.dag_id == dag_id)
    if state is not None:
        states = [state] if isinstance(state, str) else list(state)
        stmt = stmt.where(DagRunRow.state.in_([check_enum("dag run state", s, DagRunState) for s in states]))
    stmt = stmt.order_by(DagRunRow.logical_date.desc(), DagRunRow.id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def previous_successful_run(session: Session, dag_id: str, logical_date: dt.datetime) -> DagRunRow | None:
    """The DAG's ``success`` run with the latest logical date before ``logical_date`` (aware), or None: Airflow
    2.10's ``DagRun.get_previous_dagrun(state=SUCCESS)``, the run behind the template context's
    ``prev_*_success`` values (see :class:`kubedag.core.templating.PreviousRun`)."""
    stmt = (
        sa.select(DagRunRow)
        .where(DagRunRow.dag_id == dag_id, DagRunRow.state == DagRunState.SUCCESS,
               DagRunRow.logical_date < as_utc("logical_date", logical_date))
        .order_by(DagRunRow.logical_date.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def set_dag_run_state(
    session: Session,
    dag_id: str,
    run_id: str,
    state: str,
    start_date: dt.datetime | None = None,
    end_date: dt.datetime | None = None,
) -> DagRunRow:
    """Set a dag run's state (and start/end dates when given, not None); return it.

    Entering ``queued`` from another state also sets ``queued_at`` to now
    (UTC), as Airflow does. Idempotent.
    Raises :class:`DagRunNotFound`; ``ValueError`` for a bad state or a
    naive datetime.
    """
    state = check_enum("dag run state", state, DagRunState)
    changes: dict[str, Any] = {"state": state}
    if start_date is not None:
        changes["start_date"] = as_utc("start_date", start_date)
    if end_date is not None:
        changes["end_date"] = as_utc("end_date", end_date)
    row = get_dag_run(session, dag_id, run_id)
    if row is None:
        raise DagRunNotFound(f"{dag_id}/{run_id}")
    if state == DagRunState.QUEUED and row.state != DagRunState.QUEUED:
        changes["queued_at"] = utcnow()
    if apply_changes(row, changes):
        session.flush()
    return row



def delete_dag_run(
    session: Session, dag_id: str, run_id: str | None = None, *, logical_date: dt.datetime | None = None
) -> int:
    """Delete a DAG run with its task instances, try history and XComs (``ON DELETE CASCADE``).

    The run is chosen by ``run_id`` or by ``logical_date`` (aware; a DAG has at most one run per
    logical date); both may be given, and a run matching either is deleted. Used by ``dags test``,
    which replaces an earlier run at the same logical date as Airflow's ``dag.test`` does.
    Returns the number of runs deleted (0 or 1; 2 if the two keys matched different runs).

    Raises ``ValueError`` if neither key is given or ``logical_date`` is naive.
    """
    if run_id is None and logical_date is None:
        raise ValueError("delete_dag_run needs run_id or logical_date")
    conditions = []
    if run_id is not None:
        conditions.append(DagRunRow.run_id == run_id)
    if logical_date is not None:
        conditions.append(DagRunRow.logical_date == as_utc("logical_date", logical_date))
    rows = list(session.scalars(sa.select(DagRunRow).where(DagRunRow.dag_id == dag_id, sa.or_(*conditions))))
    for row in rows:
        session.delete(row)
    session.flush()
    return len(rows)

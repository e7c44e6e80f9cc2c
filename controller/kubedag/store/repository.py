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
import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from kubedag.core.xcom import RETURN_KEY

from ._helpers import (
    TI_FIELDS,
    TRY_FIELDS,
    apply_changes,
    check_enum,
    clean_fields,
    insert_ignore,
    upsert_row,
    json_object,
    as_utc,
)
from .errors import DagNotFound, DagRunNotFound, StoreError, TaskInstanceNotFound
from .models import (
    Base,
    DagRow,
    DagRunRow,
    DagRunState,
    DagRunType,
    TaskInstanceHistoryRow,
    TaskInstanceRow,
    XCOM_KEY_LEN,
    XComRow,
    utcnow,
)

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


# -------------------------------------------------------------- task instances
def upsert_task_instance(
    session: Session, dag_id: str, run_id: str, task_id: str, **fields: Any
) -> TaskInstanceRow:
    """Insert or update the task instance ``(dag_id, run_id, task_id)``; return it.

    ``fields`` (any of :data:`TI_FIELDS`): state (None/"none" or a
    TaskInstanceState), try_number and max_tries (ints >= 0; a new row
    defaults both to 0), start_date, end_date, next_retry_at (aware, UTC),
    duration (seconds), exit_code, hostname, pod_name, reason. Fields not given keep
    their stored value. ``updated_at`` moves only when a value changed, so an
    identical second write changes nothing.

    Raises ``TypeError`` for an unknown field, ``ValueError`` for a bad
    value, :class:`DagRunNotFound` when inserting into a run that does not
    exist.
    """
    values = clean_fields(fields, TI_FIELDS, "upsert_task_instance")
    now = utcnow()

    def run_must_exist() -> None:
        if get_dag_run(session, dag_id, run_id) is None:
            raise DagRunNotFound(f"{dag_id}/{run_id}")

    key = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id}
    return upsert_row(
        session, TaskInstanceRow, key, {**values, "updated_at": now}, values,
        before_insert=run_must_exist, updated_at=now,
    )


def get_task_instance(
    session: Session, dag_id: str, run_id: str, task_id: str
) -> TaskInstanceRow | None:
    """The task instance ``(dag_id, run_id, task_id)``, or None."""
    return session.get(TaskInstanceRow, (dag_id, run_id, task_id))


def get_task_instances(session: Session, dag_id: str, run_id: str) -> list[TaskInstanceRow]:
    """All task instances of a dag run, ordered by task_id (empty if none)."""
    stmt = (
        sa.select(TaskInstanceRow)
        .where(TaskInstanceRow.dag_id == dag_id, TaskInstanceRow.run_id == run_id)
        .order_by(TaskInstanceRow.task_id)
    )
    return list(session.scalars(stmt))


# ------------------------------------------------------------------ tries
def record_try(
    session: Session, dag_id: str, run_id: str, task_id: str, try_number: int, **fields: Any
) -> TaskInstanceHistoryRow:
    """Insert or update the history row of one try (1-based ``try_number``); return it.

    ``fields`` (any of :data:`TRY_FIELDS`): state, start_date, end_date
    (aware, UTC), duration (seconds), exit_code, hostname, pod_name, reason
    (e.g. ``"OOMKilled"``), log_location (path or URI), log (archived text).
    Fields not given keep their stored value; repeating a write changes
    nothing.

    Raises ``TypeError`` for an unknown field, ``ValueError`` for
    ``try_number < 1`` or a bad value, :class:`TaskInstanceNotFound` when the
    task instance does not exist.
    """
    if not isinstance(try_number, int) or try_number < 1:
        raise ValueError(f"try_number must be an int >= 1, got {try_number!r}")
    values = clean_fields(fields, TRY_FIELDS, "record_try")

    def task_instance_must_exist() -> None:
        if get_task_instance(session, dag_id, run_id, task_id) is None:
            raise TaskInstanceNotFound(f"{dag_id}/{run_id}/{task_id}")

    key = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "try_number": try_number}
    return upsert_row(session, TaskInstanceHistoryRow, key, values, values, before_insert=task_instance_must_exist)


def _tries_stmt(dag_id: str, run_id: str, task_id: str) -> sa.Select[tuple[TaskInstanceHistoryRow]]:
    return sa.select(TaskInstanceHistoryRow).where(
        TaskInstanceHistoryRow.dag_id == dag_id,
        TaskInstanceHistoryRow.run_id == run_id,
        TaskInstanceHistoryRow.task_id == task_id,
    )


def get_tries(session: Session, dag_id: str, run_id: str, task_id: str) -> list[TaskInstanceHistoryRow]:
    """Every recorded try of a task instance, by ascending try_number."""
    stmt = _tries_stmt(dag_id, run_id, task_id).order_by(TaskInstanceHistoryRow.try_number)
    return list(session.scalars(stmt))


def get_try(
    session: Session, dag_id: str, run_id: str, task_id: str, try_number: int | None = None
) -> TaskInstanceHistoryRow | None:
    """One try's history row (the highest try_number when ``try_number`` is None), or None."""
    if try_number is not None:
        return session.get(TaskInstanceHistoryRow, (dag_id, run_id, task_id, try_number))
    stmt = _tries_stmt(dag_id, run_id, task_id).order_by(TaskInstanceHistoryRow.try_number.desc()).limit(1)
    return session.scalars(stmt).first()


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


def _upsert_many(session: Session, model: type[Any], rows: list[dict[str, Any]], keys: list[str]) -> None:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE`` of ``rows`` with one executemany per set of columns.

    Columns a row does not carry keep their stored value. PostgreSQL and SQLite only.
    """
    if not rows:
        return
    session.flush()
    conn = session.connection()
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    for columns, group in groups.items():
        conn.execute(_upsert_statement(conn.dialect.name, model.__tablename__, columns, tuple(keys)), group)
    session.expire_all()


@functools.lru_cache(maxsize=64)
def _upsert_statement(dialect: str, table: str, columns: tuple[str, ...], keys: tuple[str, ...]) -> Any:
    """The upsert statement for one table and set of columns, built once (building ``excluded`` is slow)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(Base.metadata.tables[table])
    update = {c: stmt.excluded[c] for c in columns if c not in keys}
    if not update:
        return stmt.on_conflict_do_nothing(index_elements=list(keys))
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=update)


def record_pass(
    session: Session,
    dag_id: str,
    run_id: str,
    *,
    task_instances: Mapping[str, Mapping[str, Any]] = {},  # noqa: B006 - read only
    tries: Iterable[tuple[str, int, Mapping[str, Any]]] = (),
) -> None:
    """Write many task instances and tries of one DAG run in a few statements (a scheduler pass).

    ``task_instances`` maps task_id -> fields as :func:`upsert_task_instance` takes them; ``tries``
    holds ``(task_id, try_number, fields)`` as :func:`record_try` takes them. Rows are upserted with
    one ``INSERT ... ON CONFLICT DO UPDATE`` per set of columns, so a pass costs a few round trips
    whatever its size; fields not given keep their stored values and ``updated_at`` is set to now
    on every task instance written. Never commits.

    Raises ``TypeError``/``ValueError`` as the single-row functions do, and
    ``sqlalchemy.exc.IntegrityError`` if the run (or, for a try, its task instance) does not exist.
    """
    now = utcnow()
    ti_rows = [
        {**clean_fields(dict(fields), TI_FIELDS, "record_pass"), "dag_id": dag_id, "run_id": run_id,
         "task_id": task_id, "updated_at": now}
        for task_id, fields in task_instances.items()
    ]
    _upsert_many(session, TaskInstanceRow, ti_rows, ["dag_id", "run_id", "task_id"])
    try_rows = []
    for task_id, try_number, fields in tries:
        if not isinstance(try_number, int) or try_number < 1:
            raise ValueError(f"try_number must be an int >= 1, got {try_number!r}")
        try_rows.append({**clean_fields(dict(fields), TRY_FIELDS, "record_pass"), "dag_id": dag_id,
                         "run_id": run_id, "task_id": task_id, "try_number": try_number})
    _upsert_many(session, TaskInstanceHistoryRow, try_rows, ["dag_id", "run_id", "task_id", "try_number"])


# ------------------------------------------------------------------------ xcoms
def _xcom_text(task_id: str, key: Any, value: Any) -> str:
    """``value`` as the JSON text stored for XCom ``key``; validates the key."""
    if not isinstance(key, str) or not key or len(key) > XCOM_KEY_LEN:
        raise ValueError(
            f"XCom key of task {task_id!r} must be a string of 1 to {XCOM_KEY_LEN} characters, got {key!r}"
        )
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"XCom {key!r} of task {task_id!r} is not JSON-serialisable: {exc}") from None


def set_xcoms(
    session: Session, dag_id: str, run_id: str, task_id: str, try_number: int, values: Mapping[str, Any]
) -> None:
    """Store the XComs one try pushed, replacing whatever that try had (other tries keep theirs).

    ``values``: key -> JSON-serialisable value, e.g. :func:`kubedag.core.xcom.parse_xcom`'s result; ``{}``
    deletes the try's XComs. Idempotent: writing the same values again changes nothing (``timestamp``
    keeps the first write's time). Store XComs of successful tries only: a task's return value is pushed
    when it returns (Airflow 2.10's ``TaskInstance._execute_task``), and :func:`get_xcom` reads the newest
    try that has a key.

    Raises ``ValueError`` for ``try_number < 1``, a key that is empty or longer than 512 characters, or a
    value that is not JSON (NaN included); :class:`TaskInstanceNotFound` when the task instance does not
    exist.
    """
    if isinstance(try_number, bool) or not isinstance(try_number, int) or try_number < 1:
        raise ValueError(f"try_number must be an int >= 1, got {try_number!r}")
    texts = {key: _xcom_text(task_id, key, value) for key, value in values.items()}
    if get_task_instance(session, dag_id, run_id, task_id) is None:
        raise TaskInstanceNotFound(f"{dag_id}/{run_id}/{task_id}")
    where = (
        XComRow.dag_id == dag_id,
        XComRow.run_id == run_id,
        XComRow.task_id == task_id,
        XComRow.try_number == try_number,
    )
    rows = session.execute(sa.select(XComRow.key, XComRow.value).where(*where))
    stored: dict[str, str] = {key: text for key, text in rows}
    if stored == texts:
        return
    gone = [k for k in stored if k not in texts]
    if gone:
        session.execute(
            sa.delete(XComRow).where(*where, XComRow.key.in_(gone)),
            execution_options={"synchronize_session": False},
        )
    now = utcnow()
    changed = [
        {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "try_number": try_number,
         "key": key, "value": text, "timestamp": now}
        for key, text in texts.items()
        if stored.get(key) != text
    ]
    _upsert_many(session, XComRow, changed, ["dag_id", "run_id", "task_id", "try_number", "key"])


def get_xcom(
    session: Session, dag_id: str, run_id: str, task_id: str, key: str = RETURN_KEY, default: Any = None
) -> Any:
    """The XCom ``key`` of a task in a run: its value (decoded JSON) from the newest try that has that key,
    or ``default`` if no try has it. Pass ``default=kubedag.core.xcom.NO_XCOM`` to tell a stored ``null`` from
    no XCom (what :func:`kubedag.core.tries.render_try`'s ``xcom_pull`` returns)."""
    stmt = (
        sa.select(XComRow.value)
        .where(XComRow.dag_id == dag_id, XComRow.run_id == run_id, XComRow.task_id == task_id, XComRow.key == key)
        .order_by(XComRow.try_number.desc())
        .limit(1)
    )
    text = session.scalars(stmt).first()
    return default if text is None else json.loads(text)


def latest_xcoms(
    session: Session, dag_id: str, run_id: str, task_ids: Iterable[str] | None = None
) -> dict[tuple[str, str], Any]:
    """Every XCom of a run (or of ``task_ids`` only) as ``{(task_id, key): value}``, each from the newest try
    that has the key, as :func:`get_xcom` reads them, in one query (for rendering many tries at once)."""
    stmt = sa.select(XComRow.task_id, XComRow.key, XComRow.value).where(
        XComRow.dag_id == dag_id, XComRow.run_id == run_id
    )
    if task_ids is not None:
        stmt = stmt.where(XComRow.task_id.in_(list(task_ids)))
    out: dict[tuple[str, str], Any] = {}
    for task_id, key, text in session.execute(stmt.order_by(XComRow.try_number)):
        out[(task_id, key)] = json.loads(text)
    return out


def list_xcoms(
    session: Session, dag_id: str, run_id: str, task_id: str | None = None, try_number: int | None = None
) -> list[XComRow]:
    """The stored XCom rows of a run (of one task, of one try), ordered by task_id, try_number and key.
    ``row.value`` is JSON text."""
    stmt = sa.select(XComRow).where(XComRow.dag_id == dag_id, XComRow.run_id == run_id)
    if task_id is not None:
        stmt = stmt.where(XComRow.task_id == task_id)
    if try_number is not None:
        stmt = stmt.where(XComRow.try_number == try_number)
    return list(session.scalars(stmt.order_by(XComRow.task_id, XComRow.try_number, XComRow.key)))


def clear_xcoms(session: Session, dag_id: str, run_id: str, task_ids: Iterable[str]) -> int:
    """Delete every XCom (all tries) of ``task_ids`` in a run, as Airflow clears a task instance's XComs
    before it runs again (``TaskInstance.clear_xcom_data``). Call it when tasks are cleared. Returns the
    number of rows deleted."""
    ids = list(task_ids)
    if not ids:
        return 0
    stmt = sa.delete(XComRow).where(XComRow.dag_id == dag_id, XComRow.run_id == run_id, XComRow.task_id.in_(ids))
    result = session.execute(stmt, execution_options={"synchronize_session": False})
    session.expire_all()
    return result.rowcount

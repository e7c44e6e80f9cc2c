"""Task instances and their tries (Airflow's ``task_instance`` and ``task_instance_history``) in the metadata DB,
and :func:`record_pass`, a run pass's task instances and tries in a few statements.

Functions over a caller's Session that never commit, with the conventions of :mod:`kubedag.store.repository`
(which re-exports them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ._helpers import TI_FIELDS, TRY_FIELDS, clean_fields, upsert_many, upsert_row
from .errors import DagRunNotFound, TaskInstanceNotFound
from .models import DagRunRow, TaskInstanceHistoryRow, TaskInstanceRow, utcnow

__all__ = [
    "upsert_task_instance", "get_task_instance", "get_task_instances", "record_try", "get_tries", "get_try", "record_pass",
]


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
        if session.scalars(sa.select(DagRunRow.id).where(DagRunRow.dag_id == dag_id,
                                                        DagRunRow.run_id == run_id)).first() is None:
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


def current_rendered_fields(session: Session, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    """task_id -> the rendered fields (as masked when recorded) of each task instance's current try of a run, one
    query; a task instance whose current try has none recorded (never launched, or before migration 0007) is left
    out."""
    h, ti = TaskInstanceHistoryRow, TaskInstanceRow
    rows = session.execute(
        sa.select(h.task_id, h.rendered_fields).join(
            ti, sa.and_(ti.dag_id == h.dag_id, ti.run_id == h.run_id, ti.task_id == h.task_id,
                        ti.try_number == h.try_number))
        .where(h.dag_id == dag_id, h.run_id == run_id, h.rendered_fields.is_not(None)))
    return {task_id: dict(fields) for task_id, fields in rows if fields}




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
    upsert_many(session, TaskInstanceRow, ti_rows, ["dag_id", "run_id", "task_id"])
    try_rows = []
    for task_id, try_number, fields in tries:
        if not isinstance(try_number, int) or try_number < 1:
            raise ValueError(f"try_number must be an int >= 1, got {try_number!r}")
        try_rows.append({**clean_fields(dict(fields), TRY_FIELDS, "record_pass"), "dag_id": dag_id,
                         "run_id": run_id, "task_id": task_id, "try_number": try_number})
    upsert_many(session, TaskInstanceHistoryRow, try_rows, ["dag_id", "run_id", "task_id", "try_number"])

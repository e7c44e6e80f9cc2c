"""XComs in the metadata DB (Airflow's ``xcom`` table): set, read and clear the values tries pushed.

Functions over a caller's Session that never commit, with the conventions of :mod:`kubedag.store.repository`
(which re-exports them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from kubedag.core.xcom import RETURN_KEY

from ._helpers import upsert_many
from .errors import TaskInstanceNotFound
from .models import XCOM_KEY_LEN, XComRow, utcnow
from .task_instances import get_task_instance

__all__ = ["set_xcoms", "get_xcom", "latest_xcoms", "list_xcoms", "clear_xcoms"]


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
    upsert_many(session, XComRow, changed, ["dag_id", "run_id", "task_id", "try_number", "key"])


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

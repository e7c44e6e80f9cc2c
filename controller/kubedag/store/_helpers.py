"""Validation and insert helpers shared by :mod:`kubedag.store.repository` (private)."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .models import Base, TaskInstanceState, as_utc

#: Fields ``upsert_task_instance`` accepts.
TI_FIELDS = frozenset(
    {
        "state", "try_number", "max_tries", "start_date", "end_date", "duration",
        "exit_code", "hostname", "pod_name", "next_retry_at", "reason",
    }
)
#: Fields ``record_try`` accepts.
TRY_FIELDS = frozenset(
    {
        "state", "start_date", "end_date", "duration", "exit_code", "hostname",
        "pod_name", "reason", "log_location", "log", "rendered_fields",
    }
)
_DATETIME_FIELDS = frozenset({"start_date", "end_date", "next_retry_at"})


def json_object(name: str, value: Mapping[str, Any] | None) -> dict[str, Any]:
    """Deep-copy ``value`` as it will read back from a JSON column."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping, got {type(value).__name__}")
    return json.loads(json.dumps(dict(value)))


def check_enum(name: str, value: Any, allowed: type[Any]) -> str:
    """``value`` as the plain string of a member of the StrEnum ``allowed``, else ValueError."""
    try:
        return allowed(value).value
    except ValueError:
        choices = ", ".join(m.value for m in allowed)
        raise ValueError(f"invalid {name} {value!r}; expected one of: {choices}") from None


def ti_state(value: Any) -> str | None:
    """A task instance state; None and ``"none"`` both mean Airflow's ``none`` (NULL)."""
    if value is None or value == "none":
        return None
    return check_enum("task instance state", value, TaskInstanceState)


def clean_fields(fields: dict[str, Any], allowed: frozenset[str], what: str) -> dict[str, Any]:
    """Validate and normalise ``**fields`` of a task instance / try write."""
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"{what}: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    out = dict(fields)
    for key in _DATETIME_FIELDS & out.keys():
        out[key] = as_utc(key, out[key])
    if "state" in out:
        out["state"] = ti_state(out["state"])
    for key in ("try_number", "max_tries"):
        value = out.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{key} must be an int >= 0, got {value!r}")
    if out.get("duration") is not None:
        out["duration"] = float(out["duration"])
    return out


def apply_changes(row: object, changes: Mapping[str, Any]) -> bool:
    """Set the attributes that differ; return whether any did."""
    changed = False
    for key, value in changes.items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed = True
    return changed


def insert_ignore(session: Session, model: type[Any], values: dict[str, Any], keys: list[str]) -> bool:
    """INSERT ``values`` unless a row with the same ``keys`` exists; True if inserted."""
    session.flush()
    conn = session.connection()
    table = model.__table__
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - only PostgreSQL and SQLite are supported
        conn.execute(sa.insert(table).values(**values))
        return True
    stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    return conn.execute(stmt).rowcount == 1


def upsert_row(
    session: Session,
    model: type[Any],
    key: dict[str, Any],
    new: dict[str, Any],
    changes: Mapping[str, Any],
    *,
    before_insert: Callable[[], None] | None = None,
    updated_at: dt.datetime | None = None,
) -> Any:
    """Get the row with primary ``key`` (a dict in primary-key column order) or insert ``{**new, **key}``.

    The insert is ``ON CONFLICT DO NOTHING``, so two writers racing on one key both succeed. On an
    existing row the ``changes`` that differ are set, and ``updated_at`` (when given) moves only if
    one did, so an identical second write changes nothing. ``before_insert`` runs only when the row
    is missing (the callers' check that its parent row exists). Returns the row.
    """
    ident = tuple(key.values())
    row = session.get(model, ident)
    if row is None:
        if before_insert is not None:
            before_insert()
        inserted = insert_ignore(session, model, {**new, **key}, list(key))
        row = session.get(model, ident)
        assert row is not None
        if inserted:
            return row
    if apply_changes(row, changes):
        if updated_at is not None:
            row.updated_at = updated_at
        session.flush()
    return row


def upsert_many(session: Session, model: type[Any], rows: list[dict[str, Any]], keys: list[str]) -> None:
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
        conn.execute(upsert_statement(conn.dialect.name, model.__tablename__, columns, tuple(keys)), group)
    session.expire_all()


@functools.lru_cache(maxsize=64)
def upsert_statement(dialect: str, table: str, columns: tuple[str, ...], keys: tuple[str, ...]) -> Any:
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

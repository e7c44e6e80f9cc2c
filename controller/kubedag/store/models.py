"""SQLAlchemy 2 models of kubedag's metadata database.

Tables and column names follow Apache Airflow 2's metadata DB where that makes
sense (``dag``, ``dag_run``, ``task_instance``, ``task_instance_history``, ``xcom``;
``logical_date``, ``data_interval_start``, ``try_number``, ``max_tries`` ...).

Conventions:

* Every timestamp column is :class:`UtcDateTime`: it accepts only
  timezone-aware datetimes (naive ones raise ``ValueError``), stores UTC, and
  always returns UTC-aware datetimes, on PostgreSQL (``timestamptz``) as on
  SQLite (which keeps no offset, so UTC is stored naively and re-attached).
* Durations are ``float`` seconds.
* States are plain strings (Airflow's ``String(20)``), not DB enums, so new
  states need no migration; the allowed values are the enums below.
  ``task_instance.state`` is NULL for Airflow's ``none`` state.

Changing a model means writing a new Alembic revision in ``migrations/versions``
(the schema test compares the migrated schema with these models).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from kubedag.core import states

__all__ = [
    "UTC",
    "utcnow",
    "UtcDateTime",
    "DagRunState",
    "DagRunType",
    "TaskInstanceState",
    "Base",
    "DagRow",
    "DagRunRow",
    "TaskInstanceRow",
    "TaskInstanceHistoryRow",
    "XComRow",
    "JobRow",
    "BackfillRow",
    "ID_LEN",
    "XCOM_KEY_LEN",
]

UTC = dt.timezone.utc
ID_LEN = 250  # Airflow's ID_LEN for dag_id / run_id / task_id
XCOM_KEY_LEN = 512  # Airflow's xcom.key column


def utcnow() -> dt.datetime:
    """Return the current time as a timezone-aware UTC datetime."""
    return dt.datetime.now(UTC)


def as_utc(name: str, value: dt.datetime | None) -> dt.datetime | None:
    """``value`` converted to UTC; None stays None. Naive -> ValueError, non-datetime -> TypeError."""
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}={value!r} is naive; pass a timezone-aware (UTC) datetime")
    return value.astimezone(UTC)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """``DateTime(timezone=True)`` that only takes and returns aware UTC datetimes.

    Bind: ``None`` passes through; a naive datetime raises ``ValueError``;
    an aware one is converted to UTC (on SQLite the offset is then dropped,
    since SQLite's DATETIME is a string without one).
    Result: naive values (SQLite) get ``tzinfo=UTC``; aware ones (PostgreSQL)
    are converted to UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        value = as_utc("a stored datetime", value)
        if value is not None and dialect.name == "sqlite":
            value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# The states and run types are kubedag's shared vocabulary (Airflow's own strings).
DagRunState = states.DagRunState
DagRunType = states.RunType
TaskInstanceState = states.TaskInstanceState
"""Stored as strings; Airflow's ``none`` is SQL NULL (see :func:`kubedag.store._helpers.ti_state`)."""


NAMING_CONVENTION = {
    "ix": "idx_%(table_name)s_%(column_0_N_name)s",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}


class Base(DeclarativeBase):
    """Declarative base; ``Base.metadata`` is the schema the migrations build."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: UtcDateTime(),
        dict[str, Any]: sa.JSON(),
    }


class DagRow(Base):
    """One DAG known to kubedag (Airflow's ``dag`` table / ``DagModel``).

    ``spec`` is the manifest's ``spec`` as a JSON object; ``namespace`` the
    Kubernetes namespace of the manifest (None for local files); ``fileloc``
    the file it was read from, if any.
    """

    __tablename__ = "dag"

    dag_id: Mapped[str] = mapped_column(sa.String(ID_LEN), primary_key=True)
    namespace: Mapped[str | None] = mapped_column(sa.String(253))
    spec: Mapped[dict[str, Any]]
    fileloc: Mapped[str | None] = mapped_column(sa.String(2000))
    is_paused: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<DagRow {self.dag_id!r} paused={self.is_paused}>"


class DagRunRow(Base):
    """One run of a DAG (Airflow's ``dag_run``).

    Unique on ``(dag_id, run_id)`` and on ``(dag_id, logical_date)``. ``object_name``/``object_uid``: the
    DAGRun object a cluster's run belongs to (NULL for a local run); with the unique ``(dag_id, run_id)`` they make
    a run's identity (namespace, DAG, run id) one object's (migration 0006).
    """

    __tablename__ = "dag_run"
    __table_args__ = (
        sa.UniqueConstraint("dag_id", "run_id"),
        sa.UniqueConstraint("dag_id", "logical_date"),
        sa.Index(None, "dag_id", "state"),
        sa.Index(None, "dag_id", "start_date"),
        sa.Index(None, "backfill_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(
        sa.String(ID_LEN), sa.ForeignKey("dag.dag_id", ondelete="CASCADE")
    )
    run_id: Mapped[str] = mapped_column(sa.String(ID_LEN))
    run_type: Mapped[str] = mapped_column(sa.String(50))
    state: Mapped[str] = mapped_column(sa.String(50))
    logical_date: Mapped[dt.datetime]
    data_interval_start: Mapped[dt.datetime | None]
    data_interval_end: Mapped[dt.datetime | None]
    conf: Mapped[dict[str, Any]] = mapped_column(default=dict)
    queued_at: Mapped[dt.datetime | None]
    start_date: Mapped[dt.datetime | None]
    end_date: Mapped[dt.datetime | None]
    backfill_id: Mapped[int | None]
    """The backfill that created (or re-ran) this run, as Airflow 3's ``dag_run.backfill_id`` (no foreign key:
    see migration 0005)."""
    object_name: Mapped[str | None] = mapped_column(sa.String(253))
    object_uid: Mapped[str | None] = mapped_column(sa.String(128))

    def __repr__(self) -> str:
        return f"<DagRunRow {self.dag_id!r} {self.run_id!r} {self.state}>"


class TaskInstanceRow(Base):
    """The current state of one task in one dag run (Airflow's ``task_instance``).

    Primary key ``(dag_id, run_id, task_id)`` (no ``map_index``: kubedag has no
    dynamic task mapping); ``(dag_id, run_id)`` references ``dag_run``.
    ``try_number`` is 0 before the first try; ``duration`` is in seconds.
    ``max_tries`` is Airflow's (retries allowed: the task's ``retries``, renewed to ``try_number + retries``
    when the task instance is cleared); ``reason`` why it is in its state (``exit code 1``, ``cleared``, ...).
    """

    __tablename__ = "task_instance"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["dag_id", "run_id"],
            ["dag_run.dag_id", "dag_run.run_id"],
            name="task_instance_dag_run_fkey",
            ondelete="CASCADE",
        ),
        sa.Index(None, "state"),
    )

    dag_id: Mapped[str] = mapped_column(sa.String(ID_LEN), primary_key=True)
    run_id: Mapped[str] = mapped_column(sa.String(ID_LEN), primary_key=True)
    task_id: Mapped[str] = mapped_column(sa.String(ID_LEN), primary_key=True)
    state: Mapped[str | None] = mapped_column(sa.String(20))
    try_number: Mapped[int] = mapped_column(default=0)
    max_tries: Mapped[int] = mapped_column(default=0)
    start_date: Mapped[dt.datetime | None]
    end_date: Mapped[dt.datetime | None]
    duration: Mapped[float | None] = mapped_column(sa.Float)
    exit_code: Mapped[int | None]
    hostname: Mapped[str | None] = mapped_column(sa.String(1000))
    pod_name: Mapped[str | None] = mapped_column(sa.String(253))
    next_retry_at: Mapped[dt.datetime | None]
    reason: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return (
            f"<TaskInstanceRow {self.dag_id!r} {self.run_id!r} {self.task_id!r} "
            f"{self.state} try={self.try_number}>"
        )


class TaskInstanceHistoryRow(Base):
    """One try of a task instance (Airflow 2.10's ``task_instance_history``).

    Primary key ``(dag_id, run_id, task_id, try_number)``; references
    ``task_instance``. ``reason`` is a short human text such as
    ``"OOMKilled"``; ``log_location`` a file path or URI; ``log`` the archived
    log text, kept once the pod that produced it is gone; ``rendered_fields`` what the try was launched with
    (Airflow's ``rendered_task_instance_fields``, per try).
    """

    __tablename__ = "task_instance_history"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["dag_id", "run_id", "task_id"],
            ["task_instance.dag_id", "task_instance.run_id", "task_instance.task_id"],
            name="task_instance_history_ti_fkey",
            ondelete="CASCADE",
        ),
    )

    dag_id: Mapped[str] = mapped_column(sa.String(ID_LEN), primary_key=True)
    run_id: Mapped[str] = mapped_column(sa.String(ID_LEN), primary_key=True)
    task_id: Mapped[str] = mapped_column(sa.String(ID_LEN), primary_key=True)
    try_number: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    state: Mapped[str | None] = mapped_column(sa.String(20))
    start_date: Mapped[dt.datetime | None]
    end_date: Mapped[dt.datetime | None]
    duration: Mapped[float | None] = mapped_column(sa.Float)
    exit_code: Mapped[int | None]
    hostname: Mapped[str | None] = mapped_column(sa.String(1000))
    pod_name: Mapped[str | None] = mapped_column(sa.String(253))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    log_location: Mapped[str | None] = mapped_column(sa.String(2000))
    log: Mapped[str | None] = mapped_column(sa.Text)
    rendered_fields: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, nullable=True)
    """The try's rendered ``command``, ``args`` and ``env`` as launched, secrets masked (migration 0007)."""

    def __repr__(self) -> str:
        return (
            f"<TaskInstanceHistoryRow {self.dag_id!r} {self.run_id!r} {self.task_id!r} "
            f"try={self.try_number} {self.state}>"
        )


class XComRow(Base):
    """One XCom a try pushed (Airflow's ``xcom``, kept per try).

    Primary key ``(dag_id, run_id, task_id, try_number, key)``; references ``task_instance`` with
    ``ON DELETE CASCADE`` (as Airflow's ``xcom`` does), so XComs go with their DAG run. ``value`` is the
    JSON text of the value (``null`` is a stored value; no row means nothing was pushed); ``timestamp``
    is when it was stored (UTC).
    """

    __tablename__ = "xcom"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["dag_id", "run_id", "task_id"],
            ["task_instance.dag_id", "task_instance.run_id", "task_instance.task_id"],
            name="xcom_task_instance_fkey",
            ondelete="CASCADE",
        ),
    )

    dag_id: Mapped[str] = mapped_column(sa.String(ID_LEN), primary_key=True)
    run_id: Mapped[str] = mapped_column(sa.String(ID_LEN), primary_key=True)
    task_id: Mapped[str] = mapped_column(sa.String(ID_LEN), primary_key=True)
    try_number: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(sa.String(XCOM_KEY_LEN), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)
    timestamp: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return (
            f"<XComRow {self.dag_id!r} {self.run_id!r} {self.task_id!r} try={self.try_number} key={self.key!r}>"
        )


class JobRow(Base):
    """One scheduler (Airflow's ``job`` table, ``job_type = "SchedulerJob"``): who runs, where, and its heartbeat.

    ``state`` is ``running`` while it lives, then ``success`` (stopped) or ``failed`` (found stale by the next
    one); ``latest_heartbeat`` (UTC) moves every few seconds, and a REST API's ``/health`` reads it.
    ``hostname`` and ``pid`` identify the process, so that a scheduler on the same host can tell that the
    previous one is gone without waiting for its heartbeat to grow stale.
    """

    __tablename__ = "job"
    __table_args__ = (sa.Index(None, "job_type", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_type: Mapped[str] = mapped_column(sa.String(30))
    state: Mapped[str] = mapped_column(sa.String(20))
    hostname: Mapped[str | None] = mapped_column(sa.String(500))
    pid: Mapped[int | None]
    start_date: Mapped[dt.datetime | None]
    end_date: Mapped[dt.datetime | None]
    latest_heartbeat: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        return f"<JobRow {self.id} {self.job_type} {self.state} pid={self.pid}>"


class BackfillRow(Base):
    """One backfill of a DAG (Airflow 3's ``backfill`` table), carried out by the local scheduler.

    ``from_date``/``to_date``: the logical dates covered, inclusive (UTC); ``reprocess_behavior``: ``none``,
    ``failed`` or ``completed`` (Airflow 3's ``ReprocessBehavior``); ``max_active_runs``: its unfinished runs at
    once; ``is_paused``: no new run starts; ``is_cancelled``: cancelled by a user (then ``completed_at`` is set
    too; kubedag's addition: Airflow 3 only sets ``completed_at``); ``run_backwards``: newest logical date
    first; ``completed_at``: when every run of it ended, or it was cancelled. Its runs carry
    ``dag_run.backfill_id``.
    """

    __tablename__ = "backfill"
    __table_args__ = (sa.Index(None, "dag_id", "completed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(sa.String(ID_LEN), sa.ForeignKey("dag.dag_id", ondelete="CASCADE"))
    from_date: Mapped[dt.datetime]
    to_date: Mapped[dt.datetime]
    dag_run_conf: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_paused: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    is_cancelled: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    reprocess_behavior: Mapped[str] = mapped_column(sa.String(250), default="none")
    max_active_runs: Mapped[int] = mapped_column(default=10)
    run_backwards: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<BackfillRow {self.id} {self.dag_id!r} paused={self.is_paused} completed={self.completed_at}>"

"""Engines for kubedag's metadata DB (:func:`make_engine`); sessions and a migrated store are
:mod:`kubedag.store.db`'s.

SQLite engines are set up for a multi-threaded controller: WAL journal,
``check_same_thread=False``, a 30 s busy timeout, foreign keys enforced, and
SQLAlchemy (not the ``sqlite3`` module) emitting ``BEGIN IMMEDIATE`` so that
transactions, SAVEPOINTs and DDL behave as on PostgreSQL (see SQLAlchemy's
"Enabling Non-Legacy SQLite Transactional Modes"). IMMEDIATE takes SQLite's
single write lock when a transaction begins: concurrent transactions queue
(up to the busy timeout) instead of failing with "database is locked" when a
reader later tries to write. Keep SQLite transactions short. PostgreSQL engines use
psycopg 3, ``pool_pre_ping`` and a UTC session time zone.
"""

from __future__ import annotations

import pathlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from .config import database_url, ensure_home, normalize_database_url

__all__ = ["make_engine", "SQLITE_BUSY_TIMEOUT"]

SQLITE_BUSY_TIMEOUT = 30.0  # seconds a SQLite connection waits for a lock


def _to_url(url: str | sa.URL) -> sa.URL:
    if isinstance(url, str):
        url = normalize_database_url(url)
    u = sa.make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


def _sqlite_file(url: sa.URL) -> pathlib.Path | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    db = url.database
    if not db or db == ":memory:" or url.query.get("mode") == "memory" or db.startswith("file:"):
        return None
    return pathlib.Path(db)


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not sqlite3's legacy mode, decide when BEGIN happens.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            if wal:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | sa.URL | None = None, **kwargs: Any) -> Engine:
    """Create an :class:`~sqlalchemy.engine.Engine` for the metadata DB.

    ``url`` defaults to :func:`kubedag.store.config.database_url` (creating
    kubedag's home directory if needed). ``postgresql://`` URLs are switched
    to psycopg 3. For a SQLite file, its parent directory is created.
    ``kwargs`` go to :func:`sqlalchemy.create_engine` (``connect_args`` are
    merged with ours). Does not touch the schema: see :func:`kubedag.store.db.open_store`.

    Raises ``sqlalchemy.exc.ArgumentError`` for an unparsable URL and
    ``ModuleNotFoundError`` if the URL names a driver that is not installed.
    """
    if url is None:
        ensure_home()
        url = database_url()
    u = _to_url(url)
    connect_args = dict(kwargs.pop("connect_args", {}))

    if u.get_backend_name() == "sqlite":
        path = _sqlite_file(u)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT)
        engine = sa.create_engine(u, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine, wal=path is not None)
        return engine

    kwargs.setdefault("pool_pre_ping", True)
    if u.get_backend_name() == "postgresql" and u.get_driver_name() == "psycopg":
        connect_args.setdefault("options", "-c timezone=UTC")
    return sa.create_engine(u, connect_args=connect_args, **kwargs)

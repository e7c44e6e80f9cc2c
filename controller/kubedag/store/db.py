"""Sessions for kubedag's metadata DB, and the DB opened and migrated to head (:func:`open_store`).

>>> engine, Session = open_store()          # migrates to head first
>>> with Session.begin() as session:        # commits on success, rolls back on error
...     repository.upsert_dag(session, "etl", spec={...})

Engines (SQLite's and PostgreSQL's settings) are made by :func:`kubedag.store.engine.make_engine`, re-exported
here; migrations are :mod:`kubedag.store.migrate`'s, which needs only the engine module, so neither imports
this one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from .engine import SQLITE_BUSY_TIMEOUT, make_engine
from .migrate import upgrade

__all__ = ["make_engine", "session_factory", "open_store", "open_store_waiting", "SQLITE_BUSY_TIMEOUT",
           "DB_WAIT_FIRST", "DB_WAIT_MAX"]

DB_WAIT_FIRST = 0.5
"""Seconds between a long-running process's first failed attempt to open the metadata DB and its second."""
DB_WAIT_MAX = 30.0
"""The longest wait between two attempts to open the metadata DB at start, seconds (README, Reliability)."""


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a ``sessionmaker`` bound to ``engine``.

    ``expire_on_commit=False`` (as Airflow): rows returned by the repository
    stay readable after the caller commits. Use ``with factory.begin() as s:``
    for a transaction that commits on success and rolls back on error.
    """
    return sessionmaker(bind=engine, expire_on_commit=False)


def open_store(url: str | sa.URL | None = None) -> tuple[Engine, sessionmaker[Session]]:
    """Open the metadata DB at ``url`` (default: :func:`kubedag.store.config.database_url`), migrated to head.

    Returns ``(engine, session_factory)``; the caller disposes of the engine.
    Raises whatever connecting or migrating raises (``sqlalchemy.exc.OperationalError``
    when the server is unreachable, ``alembic.util.CommandError`` if the DB
    is at a revision this kubedag does not know).
    """
    engine = make_engine(url)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine, session_factory(engine)


def open_store_waiting(url: str | sa.URL | None = None, *, say: Callable[[str], None],
                       sleep: Callable[[float], None] = time.sleep, first: float = DB_WAIT_FIRST,
                       cap: float = DB_WAIT_MAX) -> tuple[Engine, sessionmaker[Session]]:
    """:func:`open_store`, attempted again while the metadata DB cannot be reached: what the long-running entry
    points (``kubedag controller``, ``scheduler``, ``standalone``) call at start, so that a PostgreSQL restart or a
    locked SQLite file makes them wait, as they wait for the API server, instead of exiting into a crash loop
    (issue 13). Each failed attempt is one line given to ``say`` -- ``metadata DB unreachable at start: <error
    class>: <first line of its message>; retrying in S s`` -- which names host and port as the driver does, never
    the password, the SQL or its parameters. The waits (seconds, through ``sleep``) start at ``first`` and double up
    to ``cap``. Returns ``(engine, session_factory)`` as :func:`open_store`.

    Raises:
        alembic.util.CommandError: the DB is at a revision this kubedag does not know (waiting would not help).
        Any other error than a DB connection failure (``sqlalchemy.exc.OperationalError``/``InterfaceError``), at once.
    """
    delay = first
    while True:
        try:
            return open_store(url)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            inner = getattr(exc, "orig", None) or exc
            lines = str(inner).strip().splitlines()
            say(f"metadata DB unreachable at start: {type(inner).__name__}: {lines[0][:200] if lines else ''}; "
                f"retrying in {delay:g} s")
        sleep(delay)
        delay = min(cap, delay * 2)

"""Sessions for kubedag's metadata DB, and the DB opened and migrated to head (:func:`open_store`).

>>> engine, Session = open_store()          # migrates to head first
>>> with Session.begin() as session:        # commits on success, rolls back on error
...     repository.upsert_dag(session, "etl", spec={...})

Engines (SQLite's and PostgreSQL's settings) are made by :func:`kubedag.store.engine.make_engine`, re-exported
here; migrations are :mod:`kubedag.store.migrate`'s, which needs only the engine module, so neither imports
this one.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from .engine import SQLITE_BUSY_TIMEOUT, make_engine
from .migrate import upgrade

__all__ = ["make_engine", "session_factory", "open_store", "SQLITE_BUSY_TIMEOUT"]


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

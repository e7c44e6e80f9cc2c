"""Run kubedag's Alembic migrations from code (no ``alembic.ini`` needed).

The scripts live in the package (``kubedag/store/migrations``); the Alembic
:class:`~alembic.config.Config` is built here with ``script_location`` pointing
there. Migrations run in one transaction; on PostgreSQL it first takes a
transaction-level advisory lock so that controllers starting together do not
migrate concurrently.

To write a new revision while developing (autogenerate compares the models
with the DB at ``$KUBEDAG_DATABASE_URL``, which must be at head)::

    python -c "from alembic import command; from kubedag.store.migrate import alembic_config; \
               command.revision(alembic_config(), 'what changed', autogenerate=True, rev_id='0002')"

then review the generated file by hand.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Iterator

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .engine import make_engine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "upgrade",
    "downgrade",
    "current_revision",
    "head_revision",
    "HEAD_REVISION",
]

HEAD_REVISION = "0007"
"""The newest revision shipped (a test checks it against the scripts). When the DB is already there,
:func:`upgrade` returns after one query without importing Alembic, which keeps CLI start-up fast."""

MIGRATIONS_DIR = pathlib.Path(__file__).resolve().parent / "migrations"
# Arbitrary constant key for pg_advisory_xact_lock: b"kubedag" as an integer.
_PG_MIGRATION_LOCK = 0x6B75626564616


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """Build an Alembic Config for kubedag's migrations.

    With ``connection``, ``env.py`` migrates through it (inside its current
    transaction) instead of opening its own.
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@contextlib.contextmanager
def _begin(engine_or_url: Engine | str | sa.URL | None) -> Iterator[sa.Connection]:
    if isinstance(engine_or_url, Engine):
        with engine_or_url.begin() as conn:
            yield conn
        return
    engine = make_engine(engine_or_url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def _lock(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))


def upgrade(engine_or_url: Engine | str | sa.URL | None = None, revision: str = "head") -> None:
    """Migrate the DB to ``revision`` (default: the newest), in one transaction.

    ``engine_or_url``: an Engine (left open), or a URL / None (default URL),
    for which an engine is made with :func:`kubedag.store.engine.make_engine` and
    disposed of. Idempotent: at ``revision`` already, it does nothing.
    Raises ``alembic.util.CommandError`` for an unknown revision, and
    SQLAlchemy errors if the DB cannot be reached.
    """
    with _begin(engine_or_url) as conn:
        if revision in ("head", HEAD_REVISION) and _stored_revision(conn) == HEAD_REVISION:
            return
        from alembic import command

        _lock(conn)
        command.upgrade(alembic_config(conn), revision)


def _stored_revision(conn: sa.Connection) -> str | None:
    """The revision in ``alembic_version`` read with plain SQL, or None if the table is missing."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def downgrade(engine_or_url: Engine | str | sa.URL | None, revision: str) -> None:
    """Migrate the DB down to ``revision`` (``"base"`` drops every table)."""
    from alembic import command

    with _begin(engine_or_url) as conn:
        _lock(conn)
        command.downgrade(alembic_config(conn), revision)


def current_revision(engine_or_url: Engine | str | sa.URL | None = None) -> str | None:
    """The DB's current revision id, or None if it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with _begin(engine_or_url) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest revision id shipped with this kubedag."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head

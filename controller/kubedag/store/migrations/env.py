"""Alembic environment for kubedag's metadata DB.

Run programmatically by :func:`kubedag.store.migrate.upgrade`, which passes an
open connection in ``config.attributes["connection"]``. For the ``alembic``
command line (e.g. ``alembic revision --autogenerate`` while developing), the
URL comes from ``sqlalchemy.url`` in the config, else from
:func:`kubedag.store.config.database_url`.
"""

from __future__ import annotations

from alembic import context

from kubedag.store.models import Base

config = context.config
target_metadata = Base.metadata

_CONFIGURE_KW = dict(
    target_metadata=target_metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
    render_as_batch=True,
    compare_type=True,
)


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade --sql``) without a connection."""
    from kubedag.store.config import database_url

    url = config.get_main_option("sqlalchemy.url") or database_url()
    context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **_CONFIGURE_KW)
    with context.begin_transaction():
        context.run_migrations()


def _run_with_connection(connection) -> None:
    context.configure(connection=connection, **_CONFIGURE_KW)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate through the caller's connection, or one opened from the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with_connection(connection)
        return

    from kubedag.store.config import database_url
    from kubedag.store.engine import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url") or database_url())
    try:
        with engine.begin() as conn:
            _run_with_connection(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

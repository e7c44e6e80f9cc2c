"""kubedag's metadata DB: SQLAlchemy models, Alembic migrations, repository functions.

Typical use::

    from kubedag.store import open_store, repository

    engine, Session = open_store()          # $KUBEDAG_DATABASE_URL or SQLite in $KUBEDAG_HOME
    with Session.begin() as session:        # the caller owns the transaction
        repository.upsert_dag(session, "etl", spec={...})

Submodules: :mod:`.config` (home dir, DB URL), :mod:`.models` (tables),
:mod:`.migrate` (Alembic, programmatic), :mod:`.engine` (engines), :mod:`.db` (sessions, a migrated store),
:mod:`.repository` (reads/writes that never commit), :mod:`.external` (the
``externalTask`` sensor's query).
"""

from __future__ import annotations

import importlib
from typing import Any

# Names are resolved on first use (PEP 562), so ``import kubedag.store.config`` does not pull in
# SQLAlchemy and Alembic: the CLI starts faster and the local runner can open the DB in the background.
_EXPORTS = {
    "database_url": "config", "ensure_home": "config", "kubedag_home": "config", "logs_dir": "config",
    "make_engine": "engine", "open_store": "db", "session_factory": "db",
    "upgrade": "migrate",
    "DagRow": "models", "DagRunRow": "models", "DagRunState": "models", "DagRunType": "models",
    "TaskInstanceHistoryRow": "models", "TaskInstanceRow": "models", "TaskInstanceState": "models",
    "XComRow": "models",
    "DagNotFound": "errors", "DagRunNotFound": "errors", "StoreError": "errors", "TaskInstanceNotFound": "errors",
}
_SUBMODULES = {"config", "db", "engine", "external", "migrate", "models", "repository", "errors"}

__all__ = sorted([*_EXPORTS, *_SUBMODULES])


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""kubedag's metadata DB: SQLAlchemy models, Alembic migrations, repository functions.

Typical use::

    from kubedag.store import open_store, repository

    engine, Session = open_store()          # $KUBEDAG_DATABASE_URL or SQLite in $KUBEDAG_HOME
    with Session.begin() as session:        # the caller owns the transaction
        repository.upsert_dag(session, "etl", spec={...})

Submodules: :mod:`.config` (home dir, DB URL), :mod:`.models` (tables),
:mod:`.migrate` (Alembic, programmatic), :mod:`.db` (engines, sessions),
:mod:`.repository` (reads/writes that never commit).
"""

from . import repository
from .config import database_url, ensure_home, kubedag_home, logs_dir
from .db import make_engine, open_store, session_factory
from .migrate import upgrade
from .models import (
    DagRow,
    DagRunRow,
    DagRunState,
    DagRunType,
    TaskInstanceHistoryRow,
    TaskInstanceRow,
    TaskInstanceState,
)
from .repository import DagNotFound, DagRunNotFound, StoreError, TaskInstanceNotFound

__all__ = [
    "repository",
    "database_url",
    "ensure_home",
    "kubedag_home",
    "logs_dir",
    "make_engine",
    "open_store",
    "session_factory",
    "upgrade",
    "DagRow",
    "DagRunRow",
    "DagRunState",
    "DagRunType",
    "TaskInstanceHistoryRow",
    "TaskInstanceRow",
    "TaskInstanceState",
    "StoreError",
    "DagNotFound",
    "DagRunNotFound",
    "TaskInstanceNotFound",
]

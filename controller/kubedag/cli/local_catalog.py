"""The read side of local mode composed for an entry point (``kubedag api`` on this machine, ``kubedag standalone``):
the metadata DB's :class:`~kubedag.store.catalog.SqlCatalog` and :class:`~kubedag.store.backfills.SqlBackfills`
over one :class:`~kubedag.local.folder.LocalDagFolder`. The store adapter never imports the local one; they meet
here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubedag.local.folder import LocalDagFolder
from kubedag.store import config
from kubedag.store.backfills import SqlBackfills
from kubedag.store.catalog import SqlCatalog
from kubedag.store.db import open_store


@dataclass
class LocalCatalog:
    """What a reader of local mode uses: ``catalog`` (reads), ``backfills`` (the Backfills write port), the
    ``folder`` both read, and the DB ``url`` (its password must not be printed). Call :meth:`close` when done."""

    catalog: SqlCatalog
    backfills: SqlBackfills
    folder: LocalDagFolder
    url: str
    _engine: object

    def close(self) -> None:
        """Release the DB connections."""
        self._engine.dispose()  # type: ignore[attr-defined]


def local_catalog(dags_folder: Path, database_url: str | None = None) -> LocalCatalog:
    """The catalog and backfills of the DAG folder ``dags_folder`` and the metadata DB at ``database_url`` (default:
    :func:`kubedag.store.config.database_url`, ``$KUBEDAG_DATABASE_URL`` or the local SQLite file), migrated to head.

    Raises:
        ValueError: ``dags_folder`` is not a folder (naming it).
        sqlalchemy.exc.OperationalError: the DB cannot be reached.
    """
    if not Path(dags_folder).is_dir():
        raise ValueError(f"--dags-folder: {dags_folder} is not a folder")
    url = config.normalize_database_url(database_url) if database_url else config.database_url()
    engine, sessions = open_store(url)
    folder = LocalDagFolder(Path(dags_folder).resolve())
    return LocalCatalog(SqlCatalog(sessions, folder), SqlBackfills(sessions, folder), folder, url, engine)


__all__ = ["LocalCatalog", "local_catalog"]

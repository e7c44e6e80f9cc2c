"""The local DAG folder as a :class:`kubedag.app.scheduler_ports.DagFolder`: what a reader of local mode (the REST
API, the web UI, through :class:`kubedag.store.catalog.SqlCatalog`) needs from it.

:class:`LocalDagFolder` reads the folder as the scheduler does (:class:`kubedag.local.bag.DagBag`, recursive) and
reads it again only when a ``*.yaml``/``*.yml`` file's mtime or size changed (:func:`folder_stamps`), so a
reader asking many times a second costs one ``stat`` per file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from kubedag.app.scheduler_ports import FolderProblem, FolderScan
from kubedag.local.bag import DagBag


def folder_stamps(folder: Path) -> dict[Path, tuple[int, int]]:
    """``(mtime_ns, size)`` of every ``*.yaml``/``*.yml`` file under ``folder`` (recursively; hidden folders
    skipped)."""
    out: dict[Path, tuple[int, int]] = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.endswith((".yaml", ".yml")):
                path = Path(root, name)
                try:
                    st = path.stat()
                except OSError:
                    continue
                out[path] = (st.st_mtime_ns, st.st_size)
    return out


def _dag_name(path: str) -> str | None:
    """The ``metadata.name`` of the first ``kind: DAG`` document of a file that failed, None if unreadable."""
    import yaml

    try:
        for doc in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == "DAG":
                name = (doc.get("metadata") or {}).get("name")
                return name if isinstance(name, str) and name else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return None


def scan_bag(bag: DagBag, scanned_at: datetime) -> FolderScan:
    """A :class:`~kubedag.app.scheduler_ports.FolderScan` of a DAG bag read at ``scanned_at``."""
    dags, problems = bag.all_dags()
    return FolderScan(
        dags={dag_id: (dag, str(path)) for dag_id, (dag, path) in dags.items()},
        problems=tuple(FolderProblem(where, why, _dag_name(where)) for where, why in sorted(problems.items())),
        pools=dict(bag.pools), objects=dict(bag.objects), scanned_at=scanned_at)


class LocalDagFolder:
    """:class:`~kubedag.app.scheduler_ports.DagFolder` on ``folder`` (see the module docstring); thread-safe.
    ``clock``: UTC-aware now (the scan's ``scanned_at``)."""

    def __init__(self, folder: Path, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.folder = Path(folder)
        self.clock = clock
        self._lock = threading.Lock()
        self._stamps: dict[Path, tuple[int, int]] | None = None
        self._scan = FolderScan()

    def scan(self) -> FolderScan:
        """The folder's DAGs, problems, Pools, ConfigMaps and Secrets, read again if a file changed."""
        with self._lock:
            stamps = folder_stamps(self.folder)
            if stamps != self._stamps:
                self._scan = scan_bag(DagBag(self.folder, recursive=True), self.clock())
                self._stamps = stamps
            return self._scan


__all__ = ["LocalDagFolder", "folder_stamps", "scan_bag"]

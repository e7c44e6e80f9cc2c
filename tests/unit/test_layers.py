"""The functional core stays pure: it imports no adapter (store, local processes, CLI, Kubernetes)
and no I/O library, so planning and scheduling can be reasoned about and tested without any."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "controller" / "kubedag"
CORE = ["core", "secrets.py"]
FORBIDDEN = (
    "kubedag.store", "kubedag.local", "kubedag.cli", "kubedag.k8s",
    "sqlalchemy", "alembic", "psycopg", "subprocess", "socket", "kubernetes", "kopf", "typer", "rich", "requests",
)


def core_files() -> list[Path]:
    files = []
    for entry in CORE:
        path = PACKAGE / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_module_imports_no_adapter_or_io_library(path):
    bad = {m for m in imported_modules(path) if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{path.name} imports {sorted(bad)}"

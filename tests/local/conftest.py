"""Fixtures for the local executor's tests: a KUBEDAG_HOME (SQLite DB, logs) in tmp_path, a DAG folder,
and helpers that write manifests and run them with :func:`kubedag.cli.local.run_dag_locally`."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kubedag.http.notify import WebhookSender
from tests.local.processes import home, scheduler_process  # noqa: F401 - fixtures of every test here

LOGICAL = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture
def folder(tmp_path, home):
    path = tmp_path / "dags"
    path.mkdir()
    return path


def dag_manifest(name: str, tasks: str, extra: str = "") -> str:
    """A DAG manifest: ``tasks`` is the YAML list under ``spec.tasks``, ``extra`` more ``spec`` fields."""
    return (
        "apiVersion: kubedag.io/v1alpha1\nkind: DAG\n"
        f"metadata: {{name: {name}}}\nspec:\n{textwrap.indent(textwrap.dedent(extra), '  ')}"
        "  tasks:\n" + textwrap.indent(textwrap.dedent(tasks), "    ")
    )


def write(folder: Path, file: str, text: str) -> Path:
    path = folder / file
    path.write_text(textwrap.dedent(text))
    return path


def run(folder: Path, name: str, logical_date: datetime = LOGICAL, **kwargs):
    """Run DAG ``name`` of ``folder`` to completion, quietly; returns the LocalRunResult."""
    from kubedag.local.bag import DagBag
    from kubedag.cli.local import run_dag_locally

    dag = DagBag(folder).dag(name)
    kwargs.setdefault("no_retry_delay", True)
    kwargs.setdefault("make_sender", WebhookSender)
    return run_dag_locally(dag, workdir=folder, logical_date=logical_date, live=False, **kwargs)


def states(result) -> dict[str, str]:
    return {t: str(ti.state) for t, ti in result.tis.items()}


def log(result, task_id: str, try_number: int = 1) -> str:
    from kubedag.local.runner import log_path

    path = log_path(result.logs_dir, result.run.dag_id, result.run.run_id, task_id, try_number)
    return path.read_text()


def session():
    """A session on the default metadata DB (of KUBEDAG_HOME)."""
    from kubedag.store.db import open_store

    _, maker = open_store(None)
    return maker()

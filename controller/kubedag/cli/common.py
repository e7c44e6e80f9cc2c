"""What the CLI's command modules share: parsing of dates and conf, loading a manifest, kubectl's flags and the
connection to the cluster, where local commands find DAGs, and confirmations.

Where a command acts: **on this machine** (the metadata DB, tasks as local processes) unless ``--cluster`` or
one of kubectl's flags (``--kubeconfig``, ``--context``, ``-n``, ``-A``) is given: then on the cluster's DAG,
DAGRun and Backfill objects. (The operations ``dags backfill``, ``tasks clear``, ``tasks mark`` and ``runs
delete`` keep their rule: local with ``-f FILE``, else the cluster.)

How local commands find DAGs (:func:`local_dags`): ``-f FILE`` (one manifest), else ``--dags-folder DIR`` or
``$KUBEDAG_DAGS_FOLDER`` (every manifest of the folder, as ``kubedag scheduler`` reads it), else the DAGs the
metadata DB knows (those ``kubedag scheduler``, ``kubedag standalone`` or ``kubedag dags test`` recorded, as
they were then).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kubedag.cli.output import fail

if TYPE_CHECKING:
    from kubedag.app.operations import DagSource
    from kubedag.k8s.kubeapi import KubeApi

DAGS_FOLDER_ENV = "KUBEDAG_DAGS_FOLDER"


def parse_instant(value: str | None, option: str):  # noqa: ANN201
    """Parse an ISO 8601 instant from the command line; naive means UTC. Raises typer.Exit(2) when invalid."""
    from datetime import datetime, timezone

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option}: invalid ISO 8601 date or time {value!r}", 2) from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def parse_conf(value: str | None) -> dict:
    """``--conf``: a JSON object (None: ``{}``); exit 2 naming the option otherwise."""
    import json

    if value is None:
        return {}
    try:
        conf = json.loads(value)
    except json.JSONDecodeError as exc:
        raise fail(f"--conf: invalid JSON: {exc}", 2) from None
    if not isinstance(conf, dict):
        raise fail("--conf: must be a JSON object", 2)
    return conf


def parse_date_arg(value: str, option: str):  # noqa: ANN201
    """An ISO 8601 date or date-time as given (naive kept naive: read in the DAG's timezone later)."""
    from kubedag.core.spec.models import parse_datetime

    try:
        return parse_datetime(value)
    except (TypeError, ValueError):
        raise fail(f"{option}: invalid ISO 8601 date or time {value!r}", 2) from None


def load(file: Path, dag_name: str | None):  # noqa: ANN201
    """The DAG of manifest ``file`` (``dag_name`` when it holds several); exit 1 with every error otherwise."""
    from kubedag.core.spec import DAGValidationError, load_dag

    try:
        return load_dag(file, dag_name)
    except DAGValidationError as exc:
        lines = [f"{exc.source or file}: {e}" for e in exc.errors]
        raise fail("invalid DAG manifest:\n  " + "\n  ".join(lines)) from None
    except OSError as exc:
        raise fail(f"{file}: {exc.strerror or exc}") from None


def local_dag(file: Path, name: str):  # noqa: ANN201
    """The DAG ``name`` of manifest ``file`` (exit 2 when the file holds no such DAG)."""
    try:
        return load(file, name)
    except (KeyError, ValueError) as exc:
        raise fail(f"--file {file}: {exc}", 2) from None


@contextmanager
def operation_errors() -> Iterator[None]:
    """Turn :class:`kubedag.app.operations.OperationError` into ``error: <message>`` and exit 1 (2 for an
    :class:`~kubedag.app.operations.InvalidRequest`)."""
    from kubedag.app.operations import InvalidRequest, OperationError

    try:
        yield
    except InvalidRequest as exc:
        raise fail(str(exc), 2) from None
    except OperationError as exc:
        raise fail(str(exc)) from None


def confirm(lines: list[str], question: str, yes: bool) -> None:
    """Print ``lines`` and ask ``question`` (default no) unless ``yes``; "no" exits 1 having changed nothing."""
    if yes:
        return
    for line in lines:
        typer.echo(line)
    if not typer.confirm(question, default=False):
        typer.echo("Cancelled, nothing was changed.")
        raise typer.Exit(1)


# --- the cluster: kubectl's flags, one connection per command ----------------------------------------------

KUBECONFIG_OPTION = typer.Option(
    None, "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster).",
)
CONTEXT_OPTION = typer.Option(None, "--context", help="The kubeconfig context (default: its current context).")
NAMESPACE_OPTION = typer.Option(
    None, "--namespace", "-n", help="Namespace (default: the context's namespace, else default).",
)
ALL_NAMESPACES_OPTION = typer.Option(False, "--all-namespaces", "-A", help="List across all namespaces.")
CLUSTER_OPTION = typer.Option(
    False, "--cluster", help="Read the Kubernetes cluster, not the local metadata DB (implied by --kubeconfig, "
    "--context, -n and -A).",
)
ACT_ON_CLUSTER_OPTION = typer.Option(
    False, "--cluster", help="Act on the Kubernetes cluster, not on this machine (implied by --kubeconfig, "
    "--context, -n and -A).",
)
DAGS_FOLDER_OPTION = typer.Option(
    None, "--dags-folder", envvar=DAGS_FOLDER_ENV, help="Local: the folder of DAG manifests (default: "
    "$KUBEDAG_DAGS_FOLDER, else the DAGs the metadata DB knows, as `kubedag scheduler` recorded them).",
)


def on_cluster(cluster: bool, *flags: Any) -> bool:
    """Whether a command acts on the cluster: ``--cluster`` or any of kubectl's flags given."""
    return bool(cluster or any(flags))


@contextmanager
def connect_cluster(kubeconfig: str | None, context: str | None, namespace: str | None) -> Iterator[KubeApi]:
    """A connection to the cluster; any :class:`~kubedag.k8s.kubeapi.KubeError` ends the command with its
    one-line message and exit 1."""
    from kubedag.k8s.kubeapi import KubeError, connect

    try:
        with connect(kubeconfig, context, namespace) as api:
            yield api
    except KubeError as exc:
        raise fail(str(exc)) from None


# --- the operations: -f FILE on this machine, else the cluster ---------------------------------------------

FILE_OPTION = typer.Option(
    None, "--file", "-f", help="Work on this machine: the DAG's manifest (runs in the local metadata DB, tasks as "
    "local processes). Without it: the cluster.",
)
RUN_OPTION = typer.Option(..., "--run", "-r", help="The run id (see `kubedag runs list`); in the cluster also the "
                          "DAGRun object's name.")
YES_OPTION = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")
NO_WAIT_OPTION = typer.Option(False, "--no-wait", help="Cluster: return once the request is stored, without waiting "
                              "for the controller.")
TIMEOUT_OPTION = typer.Option(60.0, "--timeout", min=0.0, help="Cluster: seconds to wait for the controller to "
                              "apply the request.")


# --- local DAGs ----------------------------------------------------------------------------------------------


def local_dags(dags_folder: Path | None, file: Path | None = None) -> DagSource:
    """Where a local command finds DAGs (see the module docstring): the manifest ``file``, the folder, or the
    metadata DB."""
    if file is not None:
        return FileDags(file)
    if dags_folder is not None:
        from kubedag.local.operations import FolderDags

        if not dags_folder.is_dir():
            raise fail(f"--dags-folder: {dags_folder} is not a folder", 2)
        return FolderDags(dags_folder)
    from kubedag.store.operations import open_db
    from kubedag.store.dags import StoredDags

    return StoredDags(open_db())


def file_or_named_dag(target: str, dag_name: str | None, dags_folder: Path | None):  # noqa: ANN201
    """``target`` as a manifest file (a ``.yaml``/``.yml`` path or an existing file; ``dag_name`` when it holds
    several), else as a DAG's name found by :func:`local_dags` in ``dags_folder``."""
    path = Path(target)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return load(path, dag_name)
    with operation_errors():
        return local_dags(dags_folder).dag(target)


class FileDags:
    """The DAGs of one manifest file (``-f FILE``), as a :class:`~kubedag.app.operations.DagSource`."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.errors: dict[str, str] = {}

    def dag(self, name: str):  # noqa: ANN201
        """The DAG ``name`` of the file (exit 1/2 as :func:`local_dag`)."""
        return local_dag(self.file, name)

    def dags(self) -> list:
        """Every DAG of the file."""
        from kubedag.core.spec import DAGValidationError
        from kubedag.core.spec.loader import load_dags

        try:
            return sorted(load_dags(self.file), key=lambda d: d.dag_id)
        except DAGValidationError as exc:
            self.errors[str(self.file)] = "; ".join(str(e) for e in exc.errors)
            return []

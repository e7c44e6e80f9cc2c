"""``kubedag runs ...`` and ``kubedag logs``: DAG runs and try logs, from the metadata DB and log files on this
machine, or with ``--cluster`` (or kubectl's flags) from DAGRun objects and pods."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kubedag.cli.common import (
    ALL_NAMESPACES_OPTION, CLUSTER_OPTION, CONTEXT_OPTION, FILE_OPTION, KUBECONFIG_OPTION, NAMESPACE_OPTION,
    RUN_OPTION, YES_OPTION, confirm, connect_cluster, local_dag, operation_errors,
)
from kubedag.cli.output import OUTPUT_OPTION, OutputFormat, fail, print_json

runs_app = typer.Typer(
    help="Inspect DAG runs: recorded in the metadata database, or DAGRun objects in a cluster.", no_args_is_help=True
)


@runs_app.command("list")
def runs_list(
    dag: Optional[str] = typer.Option(None, "--dag", help="Only runs of this DAG."),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many runs, newest first."),
    output: OutputFormat = OUTPUT_OPTION,
    cluster: bool = CLUSTER_OPTION,
    namespace: Optional[str] = NAMESPACE_OPTION,
    all_namespaces: bool = ALL_NAMESPACES_OPTION,
    kubeconfig: Optional[str] = KUBECONFIG_OPTION,
    context: Optional[str] = CONTEXT_OPTION,
) -> None:
    """List DAG runs, newest logical date first: from the metadata database, or with --cluster (or any of
    --kubeconfig, --context, -n, -A) the DAGRun objects in the cluster."""
    if cluster or all_namespaces or namespace or kubeconfig or context:
        from kubedag.cli.cluster import runs_list_cluster

        runs_list_cluster(dag, limit, output, namespace, all_namespaces, kubeconfig, context)
        return
    from kubedag.store.local_runs import list_runs

    runs = list_runs(dag_id=dag, limit=limit)
    if output == OutputFormat.json:
        print_json(runs)
        return
    from rich.table import Table

    from kubedag.cli.output import console
    from kubedag.local.view import styled_state

    table = Table()
    for column in ("dag_id", "run_id", "run_type", "state", "logical_date", "start_date", "end_date"):
        table.add_column(column)
    for r in runs:
        table.add_row(r["dag_id"], r["run_id"], r["run_type"], styled_state(r["state"]), r["logical_date"],
                      r["start_date"] or "", r["end_date"] or "")
    console().print(table)



@runs_app.command("delete")
def runs_delete(
    dag: str = typer.Argument(..., help="The DAG (its metadata.name)."),
    run: str = RUN_OPTION,
    yes: bool = YES_OPTION,
    file: Optional[Path] = FILE_OPTION,
    namespace: Optional[str] = NAMESPACE_OPTION,
    kubeconfig: Optional[str] = KUBECONFIG_OPTION,
    context: Optional[str] = CONTEXT_OPTION,
) -> None:
    """Delete a DAG run. Asks for confirmation unless --yes.

    With -f FILE, from the local metadata DB: the run with its task instances, tries and XComs (log files
    stay). Otherwise the DAGRun object (its pods go with it); its history stays in the metadata DB.
    """
    from kubedag.app import operations as ops

    if file is not None:
        from kubedag.store.operations import DbRuns, open_db

        dag_obj = local_dag(file, dag)
        confirm([], f"Delete run {run} of DAG {dag_obj.dag_id} with its task instances, tries and XComs?", yes)
        with operation_errors():
            ops.delete(DbRuns(open_db()), dag_obj.dag_id, run)
        typer.echo(f"Deleted run {run} of DAG {dag_obj.dag_id} from the metadata DB")
        return
    from kubedag.k8s.kubeapi import ClusterRuns

    with connect_cluster(kubeconfig, context, namespace) as api:
        runs = ClusterRuns(api)
        with operation_errors():
            obj = runs.find(dag, run)
        name = obj["metadata"]["name"]
        confirm([], f"Delete DAGRun {name} (run {obj['spec'].get('runId') or run}) in namespace {api.namespace}?", yes)
        with operation_errors():
            ops.delete(runs, dag, name)
        typer.echo(f"Deleted DAGRun {name} in namespace {api.namespace} (its history stays in the metadata DB)")


def logs(
    dag: str = typer.Argument(..., help="The DAG's name."),
    run_id: str = typer.Argument(
        ..., help="The DAG run's id (see `kubedag runs list`); in the cluster, also the DAGRun object's name.",
    ),
    task: str = typer.Argument(..., help="The task."),
    try_number: Optional[int] = typer.Option(None, "--try", min=1, help="The try (default: the latest)."),
    cluster: bool = typer.Option(
        False, "--cluster", help="Read the try's pod in the cluster, not the local logs (implied by --kubeconfig, "
        "--context and -n).",
    ),
    namespace: Optional[str] = NAMESPACE_OPTION,
    kubeconfig: Optional[str] = KUBECONFIG_OPTION,
    context: Optional[str] = CONTEXT_OPTION,
) -> None:
    """Print the log of a task instance try (the latest try unless --try is given).

    Locally, from the metadata DB and the log files. With --cluster (or --kubeconfig, --context, -n): the
    try's pod log, or, once the pod is deleted, the copy archived in the metadata DB at
    $KUBEDAG_DATABASE_URL.
    """
    if cluster or namespace or kubeconfig or context:
        from kubedag.cli.cluster import logs_cluster

        logs_cluster(dag, run_id, task, try_number, namespace, kubeconfig, context)
        return
    from kubedag.cli.cluster import db_try, failed_try_note
    from kubedag.store.local_runs import LogNotFound, read_log
    from kubedag.store.db import make_engine

    try:
        text = read_log(dag, run_id, task, try_number)
    except LogNotFound as exc:
        raise fail(str(exc)) from None
    typer.echo(text + failed_try_note(text, db_try(make_engine(None), dag, run_id, task, try_number)), nl=False)


_DNS1123_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"



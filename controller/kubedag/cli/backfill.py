"""``kubedag dags backfill``: Airflow's ``dags backfill``, run on this machine with ``-f FILE``, or as a
Backfill object the controller carries out. Both plan with :func:`kubedag.app.operations.plan_backfill`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from kubedag.cli.common import (
    CONTEXT_OPTION, FILE_OPTION, KUBECONFIG_OPTION, NAMESPACE_OPTION, connect_cluster, local_dag, operation_errors,
    parse_conf, parse_date_arg,
)
from kubedag.cli.cluster import follow_backfill
from kubedag.cli.dags import dags_app
from kubedag.cli.output import OUTPUT_OPTION, OutputFormat, fail, print_json

if TYPE_CHECKING:
    from kubedag.k8s.kubeapi import KubeApi


def print_planned(planned: list, dry_run: bool) -> None:  # noqa: ANN001
    from rich.table import Table

    from kubedag.cli.output import console

    table = Table(title=f"{'would run' if dry_run else 'runs'} ({len(planned)})", title_justify="left")
    for column in ("run_id", "logical_date", "data_interval_end", "action"):
        table.add_column(column)
    labels = {"create": "create", "reset": "reset (clear and run again)", "exists": "exists, left alone"}
    for p in planned:
        action = labels.get(p["action"], p["action"]) + (f" ({p['state']})" if p.get("state") else "")
        table.add_row(p["run_id"], p["logical_date"], p["data_interval_end"], action)
    console().print(table)


@dags_app.command("backfill")
def dags_backfill(
    name: str = typer.Argument(..., help="The DAG (its metadata.name)."),
    start_date: str = typer.Option(..., "--start-date", "-s", help="First logical date (ISO 8601; naive: in the "
                                   "DAG's timezone)."),
    end_date: str = typer.Option(..., "--end-date", "-e", help="Last logical date, inclusive (ISO 8601)."),
    reset_dagruns: bool = typer.Option(False, "--reset-dagruns", help="Clear runs that exist in the range and run "
                                       "them again (default: left alone)."),
    max_active_runs: Optional[int] = typer.Option(None, "--max-active-runs", min=1, help="Runs of the backfill "
                                                  "running at once at most (default: the DAG's maxActiveRuns)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the runs, create nothing."),
    conf: Optional[str] = typer.Option(None, "--conf", "-c", help="dag_run.conf of the new runs, a JSON object."),
    file: Optional[Path] = FILE_OPTION,
    backfill_name: Optional[str] = typer.Option(None, "--name", help="Cluster: the Backfill object's name "
                                                "(default: <dag>-<start>-<end>)."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Cluster: return once the Backfill is created."),
    namespace: Optional[str] = NAMESPACE_OPTION,
    kubeconfig: Optional[str] = KUBECONFIG_OPTION,
    context: Optional[str] = CONTEXT_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Run the DAG for every schedule interval whose logical date is within [--start-date, --end-date], as
    `airflow dags backfill`: runs of type backfill (run id backfill__<logical date>); a run that exists at a
    logical date is left alone unless --reset-dagruns. Exit 1 if any run failed.

    With -f FILE, on this machine: the runs are run here, at most --max-active-runs at once, with a progress
    bar. Otherwise a Backfill object is created in the cluster and its progress followed until it finishes.
    """
    start, end = parse_date_arg(start_date, "--start-date"), parse_date_arg(end_date, "--end-date")
    conf_value = parse_conf(conf)
    if file is not None:
        _backfill_local(file, name, start, end, reset_dagruns, max_active_runs, dry_run, conf_value, output)
    else:
        _backfill_cluster(name, start_date, end_date, start, end, reset_dagruns, max_active_runs, dry_run, conf_value,
                          backfill_name, no_wait, namespace, kubeconfig, context, output)


def _backfill_local(file: Path, name: str, start, end, reset: bool, max_active: int | None, dry_run: bool,  # noqa: ANN001
                    conf: dict, output: OutputFormat) -> None:
    import threading

    from kubedag.app import operations as app_ops
    from kubedag.local.operations import run_backfill
    from kubedag.store.operations import DbRuns, open_db

    dag = local_dag(file, name)
    runs = DbRuns(open_db())
    with operation_errors():
        planned = app_ops.plan_backfill(dag, start, end, runs.runs_by_logical_date(dag), reset=reset)
    rows = [p.as_json() for p in planned]
    if dry_run:
        if output == OutputFormat.json:
            print_json(rows)
        else:
            print_planned(rows, True)
        return
    limit = max_active or dag.max_active_runs
    todo = [p for p in planned if p.action != "exists"]
    progress = None
    if output == OutputFormat.table:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from kubedag.cli.output import console

        out = console(stderr=True)
        out.print(f"backfill of [bold]{dag.dag_id}[/]: {len(todo)} run(s) to run on this machine, at most {limit} at "
                  f"once; {len(planned) - len(todo)} existing run(s) left alone")
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=out)
    failed: list[str] = []
    lock = threading.Lock()

    def finished(run_id: str, state: str) -> None:
        with lock:
            if state != "success":
                failed.append(run_id)
            if progress is not None:
                progress.update(bar, advance=1, description=f"{dag.dag_id} backfill ({len(failed)} failed)")
                progress.console.print(f"{run_id}: {state}")

    if progress is not None:
        progress.start()
        bar = progress.add_task(f"{dag.dag_id} backfill", total=len(todo))
    try:
        result = run_backfill(dag, planned, runs=runs, options=local_run_options(dag, file), max_active_runs=limit,
                              conf=conf, on_finish=finished)
    finally:
        if progress is not None:
            progress.stop()
    for row in rows:
        if row["run_id"] in result.states:
            row["state"] = result.states[row["run_id"]]
    if output == OutputFormat.json:
        print_json(rows)
    else:
        typer.echo(f"{len(result.states) - len(result.failed)} run(s) succeeded, {len(result.failed)} failed"
                   + (f": {', '.join(result.failed)}" if result.failed else ""))
    raise typer.Exit(1 if result.failed else 0)


def _default_backfill_name(dag: str, start, end) -> str:  # noqa: ANN001
    from kubedag.core import naming as names

    tail = f"-{start:%Y%m%d}-{end:%Y%m%d}"
    prefix = f"{dag}"[: 63 - len(tail) - 6].rstrip("-")
    return f"{prefix}{tail}-{names.short_hash(dag, start.isoformat(), end.isoformat())}"


def _backfill_cluster(name: str, start_text: str, end_text: str, start, end, reset: bool, max_active: int | None,  # noqa: ANN001
                      dry_run: bool, conf: dict, backfill_name: str | None, no_wait: bool, namespace: str | None,
                      kubeconfig: str | None, context: str | None, output: OutputFormat) -> None:
    from kubedag.core import naming as names
    from kubedag.k8s.kubeapi import AlreadyExists

    obj_name = backfill_name or _default_backfill_name(name, start, end)
    spec: dict[str, Any] = {"dagName": name, "startDate": start_text, "endDate": end_text}
    if reset:
        spec["resetDagRuns"] = True
    if max_active is not None:
        spec["maxActiveRuns"] = max_active
    if conf:
        spec["conf"] = conf
    body = {"apiVersion": names.API_VERSION, "kind": "Backfill",
            "metadata": {"name": obj_name, "labels": {names.LABEL_DAG: name}}, "spec": spec}
    with connect_cluster(kubeconfig, context, namespace) as api:
        dag_obj = api.get_dag(name)  # NotFound: "DAG 'x' in namespace 'y' not found"
        if dry_run:
            rows = _cluster_backfill_preview(api, dag_obj, body)
            if output == OutputFormat.json:
                print_json(rows)
            else:
                print_planned(rows, True)
            return
        body["metadata"]["namespace"] = api.namespace
        try:
            api.create_backfill(body)
        except AlreadyExists:
            raise fail(f"Backfill {obj_name} exists already in namespace {api.namespace}; follow it with "
                       f"`kubectl get backfill {obj_name} -n {api.namespace}`, delete it (its runs go with it), or "
                       "pass --name") from None
        ns = api.namespace
        if no_wait:
            if output == OutputFormat.json:
                print_json({"name": obj_name, "namespace": ns, "dag_id": name, "phase": None})
            else:
                typer.echo(f"Created Backfill {obj_name} in namespace {ns}")
            return
        if output == OutputFormat.table:
            typer.echo(f"Created Backfill {obj_name} in namespace {ns}; following it (Ctrl-C stops following, "
                       "not the backfill)", err=True)
        status = follow_backfill(api, obj_name, output == OutputFormat.table)
    if output == OutputFormat.json:
        print_json({"name": obj_name, "namespace": ns, "dag_id": name, **status})
    else:
        typer.echo(f"Backfill {obj_name}: {status.get('phase')}: {status.get('succeeded', 0)} of "
                   f"{status.get('total', 0)} run(s) succeeded, {status.get('failed', 0)} failed")
    raise typer.Exit(0 if status.get("phase") == "success" else 1)


def _cluster_backfill_preview(api: KubeApi, dag_obj: dict[str, Any], body: dict[str, Any]) -> list[dict[str, Any]]:
    """What a Backfill would do now, from the DAG object and its DAGRuns (the controller's own planning)."""
    from kubedag.app import operations as app_ops
    from kubedag.core.spec import DAGValidationError
    from kubedag.core.spec.loader import parse_dag
    from kubedag.k8s.kubeapi import ClusterRuns

    try:
        dag = parse_dag(dag_obj)
    except DAGValidationError as exc:
        raise fail(f"DAG {body['spec']['dagName']} is invalid: " + "; ".join(map(str, exc.errors))) from None
    spec = body["spec"]
    with operation_errors():
        planned = app_ops.plan_backfill(dag, parse_date_arg(spec["startDate"], "--start-date"),
                                        parse_date_arg(spec["endDate"], "--end-date"),
                                        ClusterRuns(api).runs_by_logical_date(dag), reset=bool(spec.get("resetDagRuns")))
    return [p.as_json() for p in planned]


def local_run_options(dag: Any, file: Path) -> Any:
    """The local runner's options for ``dag`` of manifest ``file``, as ``dags test`` builds them
    (:func:`kubedag.cli.local.local_options`: the folder's Pools, variablesFrom/connectionsFrom, notifiers
    and the DB URL of trigger and externalTask tasks); exit 1 naming a missing variables source."""
    from kubedag.http import webhook_sender
    from kubedag.cli.local import local_options
    from kubedag.store import config

    try:
        return local_options(dag, workdir=file.resolve().parent, logs_dir=config.logs_dir(), database_url=None,
                             make_sender=webhook_sender)
    except ValueError as exc:
        raise fail(str(exc)) from None

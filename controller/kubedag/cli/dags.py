"""``kubedag dags ...``: validate, schedule, test and show DAG manifests; list, trigger, pause and unpause DAGs on
this machine (the metadata DB and a DAG folder) or, with ``--cluster`` or kubectl's flags, in the cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from kubedag.cli.common import (
    ACT_ON_CLUSTER_OPTION, ALL_NAMESPACES_OPTION, CONTEXT_OPTION, DAGS_FOLDER_OPTION, KUBECONFIG_OPTION,
    NAMESPACE_OPTION, connect_cluster, file_or_named_dag, load, local_dags, on_cluster, operation_errors, parse_conf, parse_instant,
)
from kubedag.cli.output import OUTPUT_OPTION, OutputFormat, fail, print_json

dags_app = typer.Typer(help="Validate, inspect and run DAG manifests.", no_args_is_help=True)


@dags_app.command("validate")
def dags_validate(files: list[Path] = typer.Argument(..., help="Manifest files to check.")) -> None:
    """Check manifests and print every error of every file; exit 1 if any file is invalid."""
    from kubedag.core.spec import validate_file

    bad = 0
    for file in files:
        errors = validate_file(file)
        if errors:
            bad += 1
            for error in errors:
                typer.echo(f"{file}: {error}")
        else:
            typer.echo(f"{file}: valid")
    if bad:
        typer.echo(f"{bad} of {len(files)} file(s) invalid", err=True)
        raise typer.Exit(1)


@dags_app.command("schedule")
def dags_schedule(
    file: Path = typer.Argument(..., help="The DAG manifest."),
    now: Optional[str] = typer.Option(None, "--now", help="The instant to plan at (ISO 8601; default: now)."),
    count: int = typer.Option(5, "--count", min=0, help="How many upcoming runs to list."),
    dag_name: Optional[str] = typer.Option(None, "--dag", help="The DAG to use when the file holds several."),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Show the runs the scheduler would create if the DAG were deployed at --now, and the next ones."""
    from kubedag.core import timetable
    from kubedag.local.runner import utcnow

    dag = load(file, dag_name)
    at = parse_instant(now, "--now") or utcnow()
    report = timetable.schedule_report(dag.timetable, dag.restriction, at, count=count)
    if output == OutputFormat.json:
        print_json(report)
        return
    from rich.table import Table

    from kubedag.cli.output import console as make_console

    console = make_console()
    console.print(f"DAG [bold]{dag.dag_id}[/]: {dag.timetable.summary} ({dag.timezone}), catchup={dag.catchup}, at {timetable.iso_utc(at)}")
    for title, rows in (("due now", report["due"]), ("upcoming", report["upcoming"])):
        table = Table(title=f"{title} ({len(rows)})", title_justify="left")
        for column in ("run_id", "data_interval_start", "data_interval_end", "run_after"):
            table.add_column(column)
        for row in rows:
            table.add_row(row["run_id"], row["data_interval_start"], row["data_interval_end"], row["run_after"])
        console.print(table)
    manual = report["manual"]
    if manual:
        console.print(f"a manual run now would cover [{manual['data_interval_start']}, {manual['data_interval_end']})")
    else:
        console.print("a manual run now would cover no interval (zero-length at its logical date)")


@dags_app.command("test")
def dags_test(
    file: Path = typer.Argument(..., help="The DAG manifest."),
    logical_date: Optional[str] = typer.Option(None, "--logical-date", help="Logical date (ISO 8601; default: now)."),
    conf: Optional[str] = typer.Option(None, "--conf", help="dag_run.conf as a JSON object."),
    parallelism: int = typer.Option(32, "--parallelism", min=1, help="Task instances running at once at most."),
    no_retry_delay: bool = typer.Option(False, "--no-retry-delay", help="Retry failed tries at once."),
    dag_name: Optional[str] = typer.Option(None, "--dag", help="The DAG to run when the file holds several."),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Run one DAG run to completion on this machine, as `airflow dags test`; exit 1 if it failed.

    Each task runs as a local process in the manifest's folder (its image is not used), the run and
    every try are recorded in the metadata database, and each try's log is kept in the data directory.
    """
    from kubedag.store.writer import DBWriter

    writer = DBWriter()  # forked now: it opens the DB on another core while the manifest is parsed
    try:
        from kubedag.http import webhook_sender
        from kubedag.cli.local import run_dag_locally

        dag = load(file, dag_name)
    except BaseException:
        writer.close()
        raise
    try:
        result = run_dag_locally(
            dag,
            workdir=file.resolve().parent,
            logical_date=parse_instant(logical_date, "--logical-date"),
            conf=parse_conf(conf),
            parallelism=parallelism,
            no_retry_delay=no_retry_delay,
            live=output == OutputFormat.table,
            writer=writer,
            make_sender=webhook_sender,
        )
    except (ValueError, RuntimeError) as exc:  # a missing variablesFrom source, a run that cannot progress
        if isinstance(exc, RuntimeError) and "cannot progress" not in str(exc):
            raise  # the metadata DB writer failed: main() reports it
        raise fail(str(exc)) from None
    if output == OutputFormat.json:
        print_json(result.as_json())
    raise typer.Exit(0 if result.state == "success" else 1)



FILE_OR_FOLDER_HELP = "Local: a DAG manifest (instead of --dags-folder)."


@dags_app.command("list")
def dags_list(
    dags_folder: Optional[Path] = DAGS_FOLDER_OPTION,
    file: Optional[Path] = typer.Option(None, "--file", "-f", help=FILE_OR_FOLDER_HELP),
    cluster: bool = ACT_ON_CLUSTER_OPTION,
    namespace: Optional[str] = NAMESPACE_OPTION,
    all_namespaces: bool = ALL_NAMESPACES_OPTION,
    kubeconfig: Optional[str] = KUBECONFIG_OPTION,
    context: Optional[str] = CONTEXT_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """List DAGs, as `airflow dags list`: description and tags, schedule (in words and as cron), paused, last run
    and next run. On this machine: the DAGs of --dags-folder (or -f, or those the metadata DB knows), paused as
    the DB says. With --cluster (or --kubeconfig, --context, -n, -A): the DAG objects, with their Ready condition."""
    if on_cluster(cluster, namespace, all_namespaces, kubeconfig, context):
        from kubedag.cli.cluster import dags_list_cluster

        dags_list_cluster(namespace, all_namespaces, kubeconfig, context, output)
        return
    from kubedag.cli.dagview import local_dag_rows, print_dag_rows

    source = local_dags(dags_folder, file)
    with operation_errors():
        rows = local_dag_rows(source)
    for name, why in sorted(getattr(source, "errors", {}).items()):
        typer.echo(f"warning: {name} skipped: {why}", err=True)
    if output == OutputFormat.json:
        print_json(rows)
        return
    if not rows:
        typer.echo("No DAGs found.", err=True)
        return
    print_dag_rows(rows)


@dags_app.command("trigger")
def dags_trigger(
    name: str = typer.Argument(..., help="The DAG (its metadata.name)."),
    conf: Optional[str] = typer.Option(None, "--conf", "-c", help="dag_run.conf as a JSON object."),
    logical_date: Optional[str] = typer.Option(None, "--logical-date", help="Logical date (ISO 8601; default: now)."),
    run_id: Optional[str] = typer.Option(None, "--run-id", "-r", help="The run id (default: manual__<logical date>)."),
    dags_folder: Optional[Path] = DAGS_FOLDER_OPTION,
    file: Optional[Path] = typer.Option(None, "--file", "-f", help=FILE_OR_FOLDER_HELP),
    cluster: bool = ACT_ON_CLUSTER_OPTION,
    namespace: Optional[str] = NAMESPACE_OPTION,
    kubeconfig: Optional[str] = KUBECONFIG_OPTION,
    context: Optional[str] = CONTEXT_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Create a manual run of a DAG, as `airflow dags trigger`; triggering the same run id (or logical date)
    twice fails.

    On this machine: a queued run in the metadata DB, which `kubedag scheduler` (or `kubedag standalone`) runs.
    With --cluster (or --kubeconfig, --context, -n): a DAGRun object named from the DAG and the run id
    (`kubectl get dagruns` shows it), which the controller runs.
    """
    from datetime import datetime, timezone

    from kubedag.app import operations as ops
    from kubedag.core import timetable

    conf_value = parse_conf(conf)
    when = parse_instant(logical_date, "--logical-date") or datetime.now(timezone.utc)
    with operation_errors():
        if run_id is not None:
            ops.check_run_id(run_id)
    if on_cluster(cluster, namespace, kubeconfig, context):
        _trigger_cluster(name, conf_value, when, run_id, namespace, kubeconfig, context, output)
        return
    from kubedag.store.operations import DbRuns, open_db

    source = local_dags(dags_folder, file)
    with operation_errors():
        dag = source.dag(name)
        run = ops.trigger(DbRuns(open_db()), dag, logical_date=when, conf=conf_value, run_id=run_id)
    if output == OutputFormat.json:
        print_json({"dag_id": dag.dag_id, "run_id": run.run_id, "run_type": "manual", "state": "queued",
                    "logical_date": timetable.iso_utc(run.logical_date),
                    "data_interval_start": timetable.iso_utc(run.data_interval_start),
                    "data_interval_end": timetable.iso_utc(run.data_interval_end), "conf": conf_value})
        return
    typer.echo(f"Created run {run.run_id} of DAG {dag.dag_id} (queued) in the metadata DB")
    typer.echo(f"run_id: {run.run_id}")
    typer.echo("A scheduler must be running to execute it: `kubedag scheduler` (or `kubedag standalone`) on its "
               "DAG folder.", err=True)


def _trigger_cluster(name: str, conf: dict, when: Any, run_id: str | None, namespace: str | None,
                     kubeconfig: str | None, context: str | None, output: OutputFormat) -> None:
    from kubedag.app import operations as ops
    from kubedag.cli.cluster import condition
    from kubedag.core import naming as names
    from kubedag.core import timetable
    from kubedag.k8s.kubeapi import ClusterRuns

    with connect_cluster(kubeconfig, context, namespace) as api:
        dag_obj = api.get_dag(name)  # NotFound: "DAG 'x' in namespace 'y' not found"
        ready = condition(dag_obj, "Ready")
        if ready is not None and ready.get("status") == "False":
            detail = " ".join(str(ready.get("message") or ready.get("reason") or "").split())
            typer.echo(f"warning: DAG {name!r} is not Ready: {detail}", err=True)
        with operation_errors():
            run = ops.trigger(ClusterRuns(api), name, logical_date=when, conf=conf, run_id=run_id)
        ns = api.namespace
    obj_name = names.run_name(name, run.run_id)
    if output == OutputFormat.json:
        print_json({"name": obj_name, "namespace": ns, "dag_id": name, "run_id": run.run_id, "run_type": "manual",
                    "logical_date": timetable.iso_utc(when), "conf": conf})
        return
    typer.echo(f"Created DAGRun {obj_name} in namespace {ns}")
    typer.echo(f"run_id: {run.run_id}")


def _set_paused(name: str, paused: bool, dags_folder: Path | None, file: Path | None, cluster: bool,
                namespace: str | None, kubeconfig: str | None, context: str | None, output: OutputFormat) -> None:
    from kubedag.app import operations as ops

    if not on_cluster(cluster, namespace, kubeconfig, context):
        from kubedag.store.operations import DbRuns, open_db

        with operation_errors():
            dag = local_dags(dags_folder, file).dag(name)
            now_paused = ops.set_paused(DbRuns(open_db()), dag, paused)
        if output == OutputFormat.json:
            print_json({"name": dag.dag_id, "paused": now_paused})
        else:
            typer.echo(f"DAG {dag.dag_id}: {'paused' if now_paused else 'unpaused'} (in the metadata DB)")
        return
    from kubedag.k8s.kubeapi import ClusterRuns

    with connect_cluster(kubeconfig, context, namespace) as api:
        now_paused = ops.set_paused(ClusterRuns(api), name, paused)
        ns = api.namespace
    if output == OutputFormat.json:
        print_json({"name": name, "namespace": ns, "paused": now_paused})
        return
    typer.echo(f"DAG {name} in namespace {ns}: {'paused' if now_paused else 'unpaused'}")


@dags_app.command("pause")
def dags_pause(
    name: str = typer.Argument(..., help="The DAG (its metadata.name)."),
    dags_folder: Optional[Path] = DAGS_FOLDER_OPTION,
    file: Optional[Path] = typer.Option(None, "--file", "-f", help=FILE_OR_FOLDER_HELP),
    cluster: bool = ACT_ON_CLUSTER_OPTION,
    namespace: Optional[str] = NAMESPACE_OPTION,
    kubeconfig: Optional[str] = KUBECONFIG_OPTION,
    context: Optional[str] = CONTEXT_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Pause a DAG's scheduling, as `airflow dags pause`: the metadata DB's flag on this machine (read by
    `kubedag scheduler`), the DAG object's spec.paused with --cluster (or kubectl's flags)."""
    _set_paused(name, True, dags_folder, file, cluster, namespace, kubeconfig, context, output)


@dags_app.command("unpause")
def dags_unpause(
    name: str = typer.Argument(..., help="The DAG (its metadata.name)."),
    dags_folder: Optional[Path] = DAGS_FOLDER_OPTION,
    file: Optional[Path] = typer.Option(None, "--file", "-f", help=FILE_OR_FOLDER_HELP),
    cluster: bool = ACT_ON_CLUSTER_OPTION,
    namespace: Optional[str] = NAMESPACE_OPTION,
    kubeconfig: Optional[str] = KUBECONFIG_OPTION,
    context: Optional[str] = CONTEXT_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Resume a DAG's scheduling, as `airflow dags unpause` (see `dags pause`)."""
    _set_paused(name, False, dags_folder, file, cluster, namespace, kubeconfig, context, output)


@dags_app.command("show")
def dags_show(
    target: str = typer.Argument(..., help="A DAG manifest file, or a DAG's name (found as `dags list` finds it)."),
    output: str = typer.Option("text", "--output", "-o", help="text (the tasks and their dependencies) or dot "
                               "(Graphviz DOT: `kubedag dags show X -o dot | dot -Tsvg > dag.svg`)."),
    dag_name: Optional[str] = typer.Option(None, "--dag", help="The DAG when the file holds several."),
    dags_folder: Optional[Path] = DAGS_FOLDER_OPTION,
) -> None:
    """Show a DAG's structure, as `airflow dags show`: as text, or as Graphviz DOT with -o dot."""
    from kubedag.cli.dagview import dag_dot, dag_text

    if output not in ("text", "dot"):
        raise fail(f"--output: {output!r} is not one of text, dot", 2)
    dag = file_or_named_dag(target, dag_name, dags_folder)
    typer.echo(dag_dot(dag) if output == "dot" else dag_text(dag), nl=False)

"""``kubedag``: validate, inspect and run DAG manifests on this machine, and read their history.

Commands mirror Airflow's CLI where one exists (``dags test``, ``tasks test``, ``dags backfill``...),
with kubectl's ``-o json`` for scripts. Exit codes: 0 success, 1 the thing checked or run failed,
2 bad usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kubedag.cli.output import OUTPUT_OPTION, OutputFormat, fail, print_json

app = typer.Typer(
    name="kubedag",
    help="kubedag: Airflow-style DAGs as Kubernetes custom resources. Run `kubedag dags test FILE` to try one locally.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
dags_app = typer.Typer(help="Validate, inspect and run DAG manifests.", no_args_is_help=True)
tasks_app = typer.Typer(help="Run single task instances.", no_args_is_help=True)
runs_app = typer.Typer(help="Inspect DAG runs recorded in the metadata database.", no_args_is_help=True)
app.add_typer(dags_app, name="dags")
app.add_typer(tasks_app, name="tasks")
app.add_typer(runs_app, name="runs")


def _parse_instant(value: str | None, option: str):  # noqa: ANN202
    """Parse an ISO 8601 instant from the command line; naive means UTC. Raises typer.Exit(2) when invalid."""
    from datetime import datetime, timezone

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option}: invalid ISO 8601 date or time {value!r}", 2) from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def _parse_conf(value: str | None) -> dict:
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


def _load(file: Path, dag_name: str | None):  # noqa: ANN202
    from kubedag.spec import DAGValidationError, load_dag

    try:
        return load_dag(file, dag_name)
    except DAGValidationError as exc:
        lines = [f"{exc.source or file}: {e}" for e in exc.errors]
        raise fail("invalid DAG manifest:\n  " + "\n  ".join(lines)) from None
    except OSError as exc:
        raise fail(f"{file}: {exc.strerror or exc}") from None


@app.command()
def version() -> None:
    """Print kubedag's version."""
    from kubedag import __version__

    typer.echo(__version__)


@dags_app.command("validate")
def dags_validate(files: list[Path] = typer.Argument(..., help="Manifest files to check.")) -> None:
    """Check manifests and print every error of every file; exit 1 if any file is invalid."""
    from kubedag.spec import validate_file

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
    from kubedag import timetable
    from kubedag.local.runner import utcnow

    dag = _load(file, dag_name)
    at = _parse_instant(now, "--now") or utcnow()
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
    from kubedag.local.recording import DBWriter

    writer = DBWriter()  # forked now: it opens the DB on another core while the manifest is parsed
    try:
        from kubedag.local.session import run_dag_locally

        dag = _load(file, dag_name)
    except BaseException:
        writer.close()
        raise
    result = run_dag_locally(
        dag,
        workdir=file.resolve().parent,
        logical_date=_parse_instant(logical_date, "--logical-date"),
        conf=_parse_conf(conf),
        parallelism=parallelism,
        no_retry_delay=no_retry_delay,
        live=output == OutputFormat.table,
        writer=writer,
    )
    if output == OutputFormat.json:
        print_json(result.as_json())
    raise typer.Exit(0 if result.state == "success" else 1)


@tasks_app.command("test")
def tasks_test(
    file: Path = typer.Argument(..., help="The DAG manifest."),
    task: str = typer.Argument(..., help="The task to run."),
    logical_date: Optional[str] = typer.Option(None, "--logical-date", help="Logical date (ISO 8601; default: now)."),
    conf: Optional[str] = typer.Option(None, "--conf", help="dag_run.conf as a JSON object."),
    dag_name: Optional[str] = typer.Option(None, "--dag", help="The DAG when the file holds several."),
) -> None:
    """Run one task instance now, ignoring its dependencies and recording nothing, as `airflow tasks test`.

    The task's output goes to this terminal; the exit code is the task's (1 for a template error).
    """
    from kubedag.local.session import test_task

    dag = _load(file, dag_name)
    if task not in dag.tasks:
        raise fail(f"task {task!r} is not in DAG {dag.dag_id!r} (tasks: {', '.join(dag.tasks)})", 2)
    code = test_task(
        dag, task, workdir=file.resolve().parent, logical_date=_parse_instant(logical_date, "--logical-date"),
        conf=_parse_conf(conf),
    )
    raise typer.Exit(code)


@runs_app.command("list")
def runs_list(
    dag: Optional[str] = typer.Option(None, "--dag", help="Only runs of this DAG."),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many runs, newest first."),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """List DAG runs from the metadata database, newest logical date first."""
    from kubedag.local.session import list_runs

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


@app.command("logs")
def logs(
    dag: str = typer.Argument(..., help="The DAG's name."),
    run_id: str = typer.Argument(..., help="The DAG run's id (see `kubedag runs list`)."),
    task: str = typer.Argument(..., help="The task."),
    try_number: Optional[int] = typer.Option(None, "--try", min=1, help="The try (default: the latest)."),
) -> None:
    """Print the log of a task instance try (the latest try unless --try is given)."""
    from kubedag.local.session import LogNotFound, read_log

    try:
        text = read_log(dag, run_id, task, try_number)
    except LogNotFound as exc:
        raise fail(str(exc)) from None
    typer.echo(text, nl=False)


def main() -> None:
    """Console-script entry point. Metadata DB failures end with one clear line and exit 1, not a traceback."""
    import sys

    try:
        app()
    except Exception as exc:  # noqa: BLE001 - only DB/writer errors are turned into messages
        if type(exc).__module__.startswith("sqlalchemy") or "metadata DB writer failed" in str(exc):
            message = str(exc).split("\n(Background on this error")[0]
            print(f"error: cannot use the metadata DB: {message}", file=sys.stderr)
            raise SystemExit(1) from None
        raise


if __name__ == "__main__":  # pragma: no cover
    main()

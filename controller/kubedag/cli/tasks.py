"""``kubedag tasks ...``: test one task instance (as ``airflow tasks test``), list a DAG's tasks, and clear or
mark task instances of a run, on this machine (``-f FILE``) or in the cluster."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from kubedag.cli.common import (
    CONTEXT_OPTION, DAGS_FOLDER_OPTION, FILE_OPTION, KUBECONFIG_OPTION, NAMESPACE_OPTION, NO_WAIT_OPTION, RUN_OPTION,
    TIMEOUT_OPTION, YES_OPTION, confirm, connect_cluster, file_or_named_dag, load, local_dag, operation_errors, parse_conf,
    parse_instant,
)
from kubedag.cli.output import OUTPUT_OPTION, OutputFormat, fail, print_json

tasks_app = typer.Typer(help="Run single task instances.", no_args_is_help=True)


@tasks_app.command("test")
def tasks_test(
    file: Path = typer.Argument(..., help="The DAG manifest."),
    task: str = typer.Argument(..., help="The task to run."),
    date: Optional[str] = typer.Argument(None, help="Logical date (ISO 8601), as Airflow's positional "
                                         "execution date; the same as --logical-date."),
    logical_date: Optional[str] = typer.Option(None, "--logical-date", help="Logical date (ISO 8601; default: now)."),
    conf: Optional[str] = typer.Option(None, "--conf", help="dag_run.conf as a JSON object."),
    dag_name: Optional[str] = typer.Option(None, "--dag", help="The DAG when the file holds several."),
) -> None:
    """Run one task instance now, ignoring its dependencies and recording nothing, as `airflow tasks test`.

    The task runs as `dags test` would run it (variables and connections of the manifest's folder, a sensor
    pokes once, a trigger task triggers), with XComs pulled from the recorded run of the DAG at that logical
    date when there is one. The task's output goes to this terminal; the exit code is the task's (1 for a
    template error).
    """
    from kubedag.cli.local import test_task

    if date is not None and logical_date is not None and date != logical_date:
        raise fail(f"the positional date {date!r} and --logical-date {logical_date!r} differ; give one", 2)
    dag = load(file, dag_name)
    if task not in dag.tasks:
        raise fail(f"task {task!r} is not in DAG {dag.dag_id!r} (tasks: {', '.join(dag.tasks)})", 2)
    try:
        code = test_task(dag, task, workdir=file.resolve().parent,
                         logical_date=parse_instant(date or logical_date, "--logical-date"), conf=parse_conf(conf))
    except ValueError as exc:  # a variablesFrom/connectionsFrom source missing from the folder
        raise fail(str(exc)) from None
    raise typer.Exit(code)


@tasks_app.command("list")
def tasks_list(
    dag: str = typer.Argument(..., help="A DAG manifest file, or a DAG's name (found as `dags list` finds it)."),
    tree: bool = typer.Option(False, "--tree", "-t", help="Show each task's upstream tasks too."),
    dag_name: Optional[str] = typer.Option(None, "--dag", help="The DAG when the file holds several."),
    dags_folder: Optional[Path] = DAGS_FOLDER_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """List a DAG's tasks in topological order, as `airflow tasks list`."""
    parsed = file_or_named_dag(dag, dag_name, dags_folder)
    if output == OutputFormat.json:
        print_json([{"task_id": t.task_id, "upstream": list(t.upstream)} for t in parsed.tasks.values()])
        return
    for task in parsed.tasks.values():
        typer.echo(task.task_id + (f"  <- {', '.join(task.upstream)}" if tree and task.upstream else ""))


@tasks_app.command("clear")
def tasks_clear(
    dag: str = typer.Argument(..., help="The DAG (its metadata.name)."),
    run: str = RUN_OPTION,
    task: list[str] = typer.Option([], "--task", "-t", help="A task to clear (repeat; default: every task)."),
    downstream: bool = typer.Option(False, "--downstream", "-d", help="Also clear every downstream task."),
    upstream: bool = typer.Option(False, "--upstream", "-u", help="Also clear every upstream task."),
    only_failed: bool = typer.Option(False, "--only-failed", help="Only clear failed and upstream_failed tasks."),
    yes: bool = YES_OPTION,
    file: Optional[Path] = FILE_OPTION,
    no_wait: bool = NO_WAIT_OPTION,
    timeout: float = TIMEOUT_OPTION,
    namespace: Optional[str] = NAMESPACE_OPTION,
    kubeconfig: Optional[str] = KUBECONFIG_OPTION,
    context: Optional[str] = CONTEXT_OPTION,
) -> None:
    """Clear task instances of a run so that they run again with the next try number, as `airflow tasks
    clear`; a finished run is reopened. Asks for confirmation unless --yes.

    With -f FILE, on this machine: the task instances are reset in the metadata DB and, as there is no
    scheduler here, the run is then run to completion by this command (exit 1 if it failed). Otherwise a
    clear action is added to the DAGRun and applied by the controller.
    """
    from datetime import datetime, timezone

    from kubedag.app import operations as ops

    if file is not None:
        _clear_local(file, dag, run, task, upstream, downstream, only_failed, yes)
        return
    from kubedag.cli.cluster import report_submitted
    from kubedag.k8s.kubeapi import ClusterRuns

    with connect_cluster(kubeconfig, context, namespace) as api:
        runs = ClusterRuns(api)
        now = datetime.now(timezone.utc)
        with operation_errors():
            obj = runs.find(dag, run)
            parsed = _cluster_dag(api, dag)
            if parsed is not None:
                preview = ops.preview_clear(parsed, runs, run, task, upstream=upstream, downstream=downstream,
                                            only_failed=only_failed, now=now)
                rows = preview.rows()
            else:
                rows = [(t, "none", 0) for t in task]
        confirm([f"You are about to clear these {len(rows)} task instance(s) of run "
                 f"{obj['spec'].get('runId') or run} (DAGRun {obj['metadata']['name']}):",
                 *(f"  {t} ({state}, try {n})" for t, state, n in rows)], "Are you sure?", yes)
        with operation_errors():
            if parsed is not None:
                ops.clear(parsed, runs, run, task, upstream=upstream, downstream=downstream, only_failed=only_failed,
                          now=now)
            else:
                runs.apply(dag, ops.RunChange("clear", tuple(task), _placeholder_run(dag, obj), upstream=upstream,
                                              downstream=downstream, only_failed=only_failed))
        report_submitted(api, runs.submitted, no_wait, timeout)


def _placeholder_run(dag: str, obj: dict):  # noqa: ANN202
    """The run of a DAGRun whose DAG does not parse: only its run id matters (the controller applies the action)."""
    from datetime import datetime, timezone

    from kubedag.app import operations as ops

    return ops.manual_run(dag, datetime.now(timezone.utc), run_id=(obj.get("spec") or {}).get("runId") or None)


def _clear_local(file: Path, dag_name: str, run_id: str, tasks: list[str], upstream: bool, downstream: bool,
                 only_failed: bool, yes: bool) -> None:
    from kubedag.app import operations as ops
    from kubedag.cli.backfill import local_run_options
    from kubedag.local.operations import resume_run
    from kubedag.store.operations import DbRuns, open_db
    from kubedag.local.runner import utcnow

    dag = local_dag(file, dag_name)
    runs = DbRuns(open_db())
    options = local_run_options(dag, file)
    with operation_errors():
        preview = ops.preview_clear(dag, runs, run_id, tasks, upstream=upstream, downstream=downstream,
                                    only_failed=only_failed, now=utcnow()).rows()
    if not preview:
        typer.echo("No task instances to clear.")
        return
    confirm([f"You are about to clear these {len(preview)} task instance(s) of run {run_id}:",
             *(f"  {t} ({state}, try {n})" for t, state, n in preview)], "Are you sure?", yes)
    with operation_errors():
        done = ops.clear(dag, runs, run_id, tasks, upstream=upstream, downstream=downstream, only_failed=only_failed,
                         now=utcnow())
    result = done.result
    typer.echo(f"Cleared {len(result.task_ids)} task instance(s): {', '.join(result.task_ids)}; running run {run_id} "
               "to completion on this machine (there is no local scheduler)")
    final, tis = resume_run(dag, result.run, {**done.loaded.tis, **result.updates}, runs=runs, options=options)
    for task_id in result.task_ids:
        ti = tis[task_id]
        typer.echo(f"  {task_id}: {ti.state} (try {ti.try_number})")
    typer.echo(f"run {run_id}: {final.state}")
    raise typer.Exit(0 if str(final.state) == "success" else 1)


class _MarkState(str, Enum):
    success = "success"
    failed = "failed"
    skipped = "skipped"


@tasks_app.command("mark")
def tasks_mark(
    dag: str = typer.Argument(..., help="The DAG (its metadata.name)."),
    state: _MarkState = typer.Argument(..., help="success, failed or skipped."),
    run: str = RUN_OPTION,
    task: list[str] = typer.Option(..., "--task", "-t", help="A task to mark (repeat for several)."),
    file: Optional[Path] = FILE_OPTION,
    no_wait: bool = NO_WAIT_OPTION,
    timeout: float = TIMEOUT_OPTION,
    namespace: Optional[str] = NAMESPACE_OPTION,
    kubeconfig: Optional[str] = KUBECONFIG_OPTION,
    context: Optional[str] = CONTEXT_OPTION,
) -> None:
    """Set task instances of a run to success, failed or skipped, as Airflow's "mark success/failed"; a
    running try is stopped and the run's state re-evaluated.

    With -f FILE, in the local metadata DB (nothing is run: tasks left to run stay waiting; see `tasks
    clear`). Otherwise a mark action is added to the DAGRun and applied by the controller.
    """
    from kubedag.app import operations as ops
    from kubedag.local.runner import utcnow

    if file is not None:
        from kubedag.store.operations import DbRuns, open_db

        dag_obj = local_dag(file, dag)
        try:
            run_obj, changed = ops.mark(dag_obj, DbRuns(open_db()), run, task, state.value, now=utcnow())
        except ops.OperationError as exc:
            raise fail(str(exc)) from None
        typer.echo(f"Marked {len(changed)} task instance(s) {state.value}" + (f": {', '.join(changed)}" if changed else
                                                                              " (they were already)"))
        note = "" if run_obj.finished else " (tasks left to run wait: there is no local scheduler; `kubedag tasks clear` runs them)"
        typer.echo(f"run {run}: {run_obj.state}{note}")
        return
    from kubedag.cli.cluster import report_submitted
    from kubedag.k8s.kubeapi import ClusterRuns

    with connect_cluster(kubeconfig, context, namespace) as api:
        runs = ClusterRuns(api)
        with operation_errors():
            obj = runs.find(dag, run)
            parsed = _cluster_dag(api, dag)
            if parsed is not None:
                ops.mark(parsed, runs, run, task, state.value, now=utcnow())
            else:
                runs.apply(dag, ops.RunChange("mark", tuple(task), _placeholder_run(dag, obj), state=state.value))
        report_submitted(api, runs.submitted, no_wait, timeout)


def _cluster_dag(api, name: str):  # noqa: ANN001, ANN202
    """The DAG object ``name`` parsed, or None when it is invalid (the controller reports it; an action waits)."""
    from kubedag.core.spec import DAGValidationError
    from kubedag.core.spec.loader import parse_dag

    try:
        return parse_dag(api.get_dag(name))
    except DAGValidationError:
        return None

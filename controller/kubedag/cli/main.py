"""``kubedag``: validate, inspect and run DAG manifests on this machine, read their history, and
list, trigger, pause and read the logs of DAGs deployed to a Kubernetes cluster.

Commands mirror Airflow's CLI where one exists (``dags test``, ``tasks test``, ``dags trigger``...),
with kubectl's ``-o json`` for scripts and kubectl's ``--kubeconfig``/``--context``/``-n``/``-A`` for the
cluster (see :mod:`kubedag.k8s.kubeapi`). Exit codes: 0 success, 1 the thing checked or run failed (or
the cluster or metadata DB cannot be used), 2 bad usage.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Optional

import typer

from kubedag.cli.output import OUTPUT_OPTION, OutputFormat, fail, print_json

if TYPE_CHECKING:
    from kubedag.k8s.kubeapi import KubeApi

app = typer.Typer(
    name="kubedag",
    help="kubedag: Airflow-style DAGs as Kubernetes custom resources. Run `kubedag dags test FILE` to try one locally.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
dags_app = typer.Typer(help="Validate, inspect and run DAG manifests.", no_args_is_help=True)
tasks_app = typer.Typer(help="Run single task instances.", no_args_is_help=True)
runs_app = typer.Typer(
    help="Inspect DAG runs: recorded in the metadata database, or DAGRun objects in a cluster.", no_args_is_help=True
)
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
    from kubedag.core.spec import DAGValidationError, load_dag

    try:
        return load_dag(file, dag_name)
    except DAGValidationError as exc:
        lines = [f"{exc.source or file}: {e}" for e in exc.errors]
        raise fail("invalid DAG manifest:\n  " + "\n  ".join(lines)) from None
    except OSError as exc:
        raise fail(f"{file}: {exc.strerror or exc}") from None


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


@contextmanager
def _cluster(kubeconfig: str | None, context: str | None, namespace: str | None) -> Iterator[KubeApi]:
    """A connection to the cluster; any :class:`~kubedag.k8s.kubeapi.KubeError` ends the command with its
    one-line message and exit 1."""
    from kubedag.k8s.kubeapi import KubeError, connect

    try:
        with connect(kubeconfig, context, namespace) as api:
            yield api
    except KubeError as exc:
        raise fail(str(exc)) from None


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == type_:
            return condition
    return None


def _parse_k8s_time(value: Any):  # noqa: ANN202
    from datetime import datetime, timezone

    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


def _human_duration(seconds: float | None) -> str:
    """``4.2s``, ``3m05s``, ``2h07m``, ``3d04h``."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


def _dag_row(obj: dict[str, Any]) -> dict[str, Any]:
    """What `dags list` shows of a DAG object."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    ready = _condition(obj, "Ready")
    last = status.get("lastRun") or None
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        **_dag_about(obj),
        "schedule": spec.get("schedule"),
        "paused": bool(spec.get("paused", False)),
        "ready": ready.get("status") if ready else None,
        "ready_reason": ready.get("reason") if ready else None,
        "ready_message": (ready.get("message") or None) if ready else None,
        "last_run": None if not last else {
            "run_id": last.get("runId"), "state": last.get("phase"), "logical_date": last.get("logicalDate"),
        },
        "next_run_at": status.get("nextRunAt"),
    }


def _dag_about(obj: dict[str, Any]) -> dict[str, Any]:
    """``{description, owner, tags}`` of a DAG object as the DAG reads them (Airflow's ``DAG.owner``: its tasks'
    owners); of an invalid DAG, what its spec says."""
    from kubedag.core.spec import DAGValidationError, parse_dag

    try:
        dag = parse_dag(obj)
    except DAGValidationError:
        spec = obj.get("spec") or {}
        tags = spec.get("tags")
        return {"description": spec.get("description"), "owner": spec.get("owner"),
                "tags": [str(t) for t in tags] if isinstance(tags, list) else []}
    return {"description": dag.description, "owner": dag.owner, "tags": list(dag.tags)}


def _run_row(obj: dict[str, Any], now) -> dict[str, Any]:  # noqa: ANN001
    """What `runs list` shows of a DAGRun object (keys as the local `runs list -o json`, plus the object's)."""
    from kubedag.core.naming import LABEL_DAG
    from kubedag.core.timetable import iso_utc

    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    started, finished = _parse_k8s_time(status.get("startedAt")), _parse_k8s_time(status.get("finishedAt"))
    duration = None
    if started is not None:
        duration = max(0.0, ((finished or now) - started).total_seconds())
    counts = {k: v for k, v in (status.get("counts") or {}).items() if isinstance(v, int) and v}
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "dag_id": spec.get("dagName") or (meta.get("labels") or {}).get(LABEL_DAG),
        "run_id": spec.get("runId"),
        "run_type": spec.get("runType"),
        "state": status.get("phase"),
        "logical_date": spec.get("logicalDate"),
        "data_interval_start": spec.get("dataIntervalStart"),
        "data_interval_end": spec.get("dataIntervalEnd"),
        "start_date": iso_utc(started),
        "end_date": iso_utc(finished),
        "duration": duration,
        "counts": counts,
        "conf": spec.get("conf") or {},
    }


def _is_run_of(obj: dict[str, Any], dag: str) -> bool:
    from kubedag.core.naming import LABEL_DAG

    labels = (obj.get("metadata") or {}).get("labels") or {}
    return (obj.get("spec") or {}).get("dagName") == dag or labels.get(LABEL_DAG) == dag


def _newest_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from datetime import datetime, timezone

    oldest = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(
        rows,
        key=lambda r: (_parse_k8s_time(r["logical_date"]) or _parse_k8s_time(r["start_date"]) or oldest, r["name"] or ""),
        reverse=True,
    )


@app.command()
def version() -> None:
    """Print kubedag's version."""
    from kubedag import __version__

    typer.echo(__version__)


def _duration_option(value: str, option: str):  # noqa: ANN202
    from kubedag.core.spec.durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


@app.command()
def controller(
    namespace: list[str] = typer.Option(
        [], "--namespace", "-n", envvar="KUBEDAG_NAMESPACES",
        help="Namespace to watch (repeat, or comma-separated in KUBEDAG_NAMESPACES); none: the whole cluster."),
    database_url: Optional[str] = typer.Option(
        None, envvar="KUBEDAG_DATABASE_URL", help="Metadata DB URL (postgresql://...); default: local SQLite."),
    kubeconfig: Optional[str] = typer.Option(None, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)."),
    context: Optional[str] = typer.Option(None, help="kubeconfig context (default: the current one)."),
    api_qps: float = typer.Option(50.0, envvar="KUBEDAG_API_QPS", help="API requests per second (client-side limit)."),
    api_burst: int = typer.Option(100, envvar="KUBEDAG_API_BURST", help="API requests allowed in a burst."),
    workers: int = typer.Option(8, envvar="KUBEDAG_WORKERS", min=1, help="DAGRuns reconciled at once."),
    pod_retention: str = typer.Option("10m", envvar="KUBEDAG_POD_RETENTION",
                                      help="Keep a finished try's pod this long (its log is archived first)."),
    run_history_limit: int = typer.Option(50, envvar="KUBEDAG_RUN_HISTORY_LIMIT", min=0,
                                          help="Finished DAGRun objects kept per DAG (0: all); history stays in the DB."),
    image_pull_timeout: str = typer.Option("5m", envvar="KUBEDAG_IMAGE_PULL_TIMEOUT",
                                           help="Fail a try whose image cannot be pulled for this long."),
    liveness_port: int = typer.Option(8080, envvar="KUBEDAG_LIVENESS_PORT", help="Port of GET /healthz (0: off)."),
    sensor_image: Optional[str] = typer.Option(
        None, envvar="KUBEDAG_SENSOR_IMAGE",
        help="Image of built-in file/http sensor pods (default: kubedag/controller:<version>)."),
    log_level: str = typer.Option("INFO", envvar="KUBEDAG_LOG_LEVEL", help="DEBUG, INFO, WARNING or ERROR."),
) -> None:
    """Run the Kubernetes controller: schedule DAG custom resources and run each task instance as a pod."""
    from kubedag.k8s.kubeapi import KubeError
    from kubedag.cli.controller import main as run_controller
    from kubedag.http import webhook_sender
    from kubedag.k8s.manager import ControllerConfig

    namespaces = [ns.strip() for value in namespace for ns in value.split(",") if ns.strip()]
    config = ControllerConfig(
        namespaces=namespaces, database_url=database_url, api_qps=api_qps, api_burst=api_burst, workers=workers,
        pod_retention=_duration_option(pod_retention, "--pod-retention"), run_history_limit=run_history_limit,
        image_pull_timeout=_duration_option(image_pull_timeout, "--image-pull-timeout"),
        liveness_port=liveness_port or None, kubeconfig=kubeconfig, context=context,
        **({"sensor_image": sensor_image} if sensor_image else {}),
    )
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise typer.BadParameter(f"{log_level!r} is not one of DEBUG, INFO, WARNING, ERROR", param_hint="--log-level")
    try:
        run_controller(config, log_level, make_sender=webhook_sender)
    except KubeError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        pass


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
        from kubedag.http import webhook_sender
        from kubedag.local.session import run_dag_locally

        dag = _load(file, dag_name)
    except BaseException:
        writer.close()
        raise
    try:
        result = run_dag_locally(
            dag,
            workdir=file.resolve().parent,
            logical_date=_parse_instant(logical_date, "--logical-date"),
            conf=_parse_conf(conf),
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


@dags_app.command("list")
def dags_list(
    namespace: Optional[str] = NAMESPACE_OPTION,
    all_namespaces: bool = ALL_NAMESPACES_OPTION,
    kubeconfig: Optional[str] = KUBECONFIG_OPTION,
    context: Optional[str] = CONTEXT_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """List the DAGs deployed to the cluster (DAG objects): owner, tags, schedule, paused, Ready, last and next run
    (and the description with -o json)."""
    with _cluster(kubeconfig, context, namespace) as api:
        dags = api.list_dags(None if all_namespaces else api.namespace)
    rows = sorted((_dag_row(d) for d in dags), key=lambda r: (r["namespace"] or "", r["name"] or ""))
    if output == OutputFormat.json:
        print_json(rows)
        return
    from rich.markup import escape
    from rich.table import Table

    from kubedag.cli.output import console
    from kubedag.local.view import styled_state

    if not rows:
        where = "any namespace" if all_namespaces else f"namespace {api.namespace}"
        typer.echo(f"No DAGs found in {where}.", err=True)
        return
    table = Table()
    for column in ("name", "namespace", "owner", "tags", "schedule", "paused", "ready", "last_run", "next_run"):
        table.add_column(column)
    for r in rows:
        if r["ready"] == "True":
            ready = "[green]True[/]"
        elif r["ready"] == "False":
            ready = "[red]False[/]" + (f": {escape(r['ready_message'])}" if r["ready_message"] else "")
        else:
            ready = r["ready"] or ""
        last = r["last_run"]
        last_text = "" if not last else escape(last["run_id"] or "") + (
            f" ({styled_state(last['state'])})" if last["state"] else "")
        table.add_row(escape(r["name"] or ""), r["namespace"] or "", escape(r["owner"] or ""),
                      escape(", ".join(r["tags"])), escape(r["schedule"] or "None"),
                      str(r["paused"]).lower(), ready, last_text, r["next_run_at"] or "")
    console().print(table)


@dags_app.command("trigger")
def dags_trigger(
    name: str = typer.Argument(..., help="The DAG (its metadata.name)."),
    conf: Optional[str] = typer.Option(None, "--conf", "-c", help="dag_run.conf as a JSON object."),
    logical_date: Optional[str] = typer.Option(None, "--logical-date", help="Logical date (ISO 8601; default: now)."),
    run_id: Optional[str] = typer.Option(None, "--run-id", "-r", help="The run id (default: manual__<logical date>)."),
    namespace: Optional[str] = NAMESPACE_OPTION,
    kubeconfig: Optional[str] = KUBECONFIG_OPTION,
    context: Optional[str] = CONTEXT_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Create a manual run of a deployed DAG (a DAGRun object), as `airflow dags trigger`.

    The DAGRun is named from the DAG and the run id (`kubectl get dagruns` shows it); triggering the same
    run id twice fails.
    """
    import re
    from datetime import datetime, timezone

    from kubedag.core import timetable
    from kubedag.core import naming as names
    from kubedag.k8s.kubeapi import AlreadyExists
    from kubedag.k8s.manifests import dagrun_manifest
    from kubedag.core.spec.dagrun import RUN_ID_PATTERN

    conf_value = _parse_conf(conf)
    when = _parse_instant(logical_date, "--logical-date") or datetime.now(timezone.utc)
    if run_id is None:
        run_id = timetable.run_id("manual", when)
    elif len(run_id) > 250 or not re.fullmatch(RUN_ID_PATTERN, run_id):
        raise fail(f"--run-id: {run_id!r} is not a valid run id (at most 250 of A-Z a-z 0-9 _ . ~ : + -)", 2)
    obj_name = names.run_name(name, run_id)
    with _cluster(kubeconfig, context, namespace) as api:
        dag_obj = api.get_dag(name)  # NotFound: "DAG 'x' in namespace 'y' not found"
        ready = _condition(dag_obj, "Ready")
        if ready is not None and ready.get("status") == "False":
            detail = " ".join(str(ready.get("message") or ready.get("reason") or "").split())
            typer.echo(f"warning: DAG {name!r} is not Ready: {detail}", err=True)
        body = dagrun_manifest(api.namespace, name, run_id, "manual", when, conf=conf_value)
        try:
            api.create_dagrun(body)
        except AlreadyExists:
            raise fail(f"run {run_id!r} of DAG {name!r} already exists (DAGRun {obj_name} in namespace "
                       f"{api.namespace}); pass another --run-id or --logical-date") from None
        ns = api.namespace
    if output == OutputFormat.json:
        print_json({"name": obj_name, "namespace": ns, "dag_id": name, "run_id": run_id, "run_type": "manual",
                    "logical_date": timetable.iso_utc(when), "conf": conf_value})
        return
    typer.echo(f"Created DAGRun {obj_name} in namespace {ns}")
    typer.echo(f"run_id: {run_id}")


def _set_paused(name: str, paused: bool, namespace: str | None, kubeconfig: str | None, context: str | None,
                output: OutputFormat) -> None:
    with _cluster(kubeconfig, context, namespace) as api:
        obj = api.patch_dag(name, {"spec": {"paused": paused}})
        ns = api.namespace
    now_paused = bool((obj.get("spec") or {}).get("paused", False))
    if output == OutputFormat.json:
        print_json({"name": name, "namespace": ns, "paused": now_paused})
        return
    typer.echo(f"DAG {name} in namespace {ns}: {'paused' if now_paused else 'unpaused'}")


@dags_app.command("pause")
def dags_pause(
    name: str = typer.Argument(..., help="The DAG (its metadata.name)."),
    namespace: Optional[str] = NAMESPACE_OPTION,
    kubeconfig: Optional[str] = KUBECONFIG_OPTION,
    context: Optional[str] = CONTEXT_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Pause a deployed DAG's scheduling (sets spec.paused), as `airflow dags pause`."""
    _set_paused(name, True, namespace, kubeconfig, context, output)


@dags_app.command("unpause")
def dags_unpause(
    name: str = typer.Argument(..., help="The DAG (its metadata.name)."),
    namespace: Optional[str] = NAMESPACE_OPTION,
    kubeconfig: Optional[str] = KUBECONFIG_OPTION,
    context: Optional[str] = CONTEXT_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Resume a deployed DAG's scheduling (clears spec.paused), as `airflow dags unpause`."""
    _set_paused(name, False, namespace, kubeconfig, context, output)


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
    cluster: bool = CLUSTER_OPTION,
    namespace: Optional[str] = NAMESPACE_OPTION,
    all_namespaces: bool = ALL_NAMESPACES_OPTION,
    kubeconfig: Optional[str] = KUBECONFIG_OPTION,
    context: Optional[str] = CONTEXT_OPTION,
) -> None:
    """List DAG runs, newest logical date first: from the metadata database, or with --cluster (or any of
    --kubeconfig, --context, -n, -A) the DAGRun objects in the cluster."""
    if cluster or all_namespaces or namespace or kubeconfig or context:
        _runs_list_cluster(dag, limit, output, namespace, all_namespaces, kubeconfig, context)
        return
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


def _runs_list_cluster(dag: str | None, limit: int, output: OutputFormat, namespace: str | None,
                       all_namespaces: bool, kubeconfig: str | None, context: str | None) -> None:
    from datetime import datetime, timezone

    with _cluster(kubeconfig, context, namespace) as api:
        objs = api.list_dagruns(None if all_namespaces else api.namespace)
    now = datetime.now(timezone.utc)
    rows = _newest_first([_run_row(o, now) for o in objs if dag is None or _is_run_of(o, dag)])[:limit]
    if output == OutputFormat.json:
        print_json(rows)
        return
    from rich.markup import escape
    from rich.table import Table

    from kubedag.cli.output import console
    from kubedag.local.view import styled_state

    if not rows:
        where = "any namespace" if all_namespaces else f"namespace {api.namespace}"
        typer.echo(f"No DAG runs{f' of DAG {dag}' if dag else ''} found in {where}.", err=True)
        return
    table = Table()
    columns = ["name", "dag_id", "run_id", "run_type", "logical_date", "state", "start_date", "duration", "tasks"]
    if all_namespaces:
        columns.insert(1, "namespace")
    for column in columns:
        table.add_column(column)
    for r in rows:
        tasks = ", ".join(f"{styled_state(state)} {n}" for state, n in r["counts"].items())
        cells = [escape(r["name"] or ""), escape(r["dag_id"] or ""), escape(r["run_id"] or ""), r["run_type"] or "",
                 r["logical_date"] or "", styled_state(r["state"]) if r["state"] else "", r["start_date"] or "",
                 _human_duration(r["duration"]), tasks]
        if all_namespaces:
            cells.insert(1, r["namespace"] or "")
        table.add_row(*cells)
    console().print(table)


@app.command("logs")
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
        _logs_cluster(dag, run_id, task, try_number, namespace, kubeconfig, context)
        return
    from kubedag.local.session import LogNotFound, read_log
    from kubedag.store.db import make_engine

    try:
        text = read_log(dag, run_id, task, try_number)
    except LogNotFound as exc:
        raise fail(str(exc)) from None
    typer.echo(text + _failed_try_note(text, _db_try(make_engine(None), dag, run_id, task, try_number)), nl=False)


def _db_try(engine: Any, dag: str, run_id: str, task: str, number: int | None) -> tuple[int, str | None, str | None,
                                                                                         str | None] | None:
    """``(try_number, state, reason, archived log)`` of a try's history row in the metadata DB (the latest try when
    ``number`` is None; read only: no migration is run), or None without one; disposes of ``engine``.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the DB cannot be read.
    """
    from kubedag.store import repository
    from kubedag.store.db import session_factory

    try:
        with session_factory(engine)() as session:
            row = repository.get_try(session, dag, run_id, task, number)
            return None if row is None else (row.try_number, row.state, row.reason, row.log)
    finally:
        engine.dispose()


def _failed_try_note(log: str, row: tuple[int, str | None, str | None, str | None] | None) -> str:
    """The line `kubedag logs` ends with when the try failed: ``[kubedag] try N failed: <reason>`` (the reason
    the run table shows), with the metadata DB's password and any URL's password masked; "" otherwise."""
    if row is None or row[1] != "failed":
        return ""
    import os
    import re

    from kubedag.core.secrets import MASK, Masker

    number, _, reason, _ = row
    masker = Masker()
    if os.environ.get("KUBEDAG_DATABASE_URL"):
        masker.add_connection(os.environ["KUBEDAG_DATABASE_URL"])
    line = masker.mask(f"[kubedag] try {number} failed" + (f": {reason}" if reason else ""))
    line = re.sub(r"(://[^/\s:@]*:)[^/\s@]+@", rf"\g<1>{MASK}@", line)
    return ("" if not log or log.endswith("\n") else "\n") + line + "\n"


_DNS1123_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"


def _find_run(api: KubeApi, dag: str, run: str) -> dict[str, Any]:
    """The DAGRun of ``dag`` whose run id or object name is ``run``: by the deterministic name first, then by
    name, then (runs created by hand with generateName) by ``spec.runId``."""
    import re

    from kubedag.core import naming as names

    obj = api.get_dagrun(names.run_name(dag, run))
    if obj is not None and _is_run_of(obj, dag):
        return obj
    if len(run) <= 253 and re.fullmatch(_DNS1123_SUBDOMAIN, run):
        obj = api.get_dagrun(run)
        if obj is not None:
            if not _is_run_of(obj, dag):
                owner = (obj.get("spec") or {}).get("dagName")
                raise fail(f"DAGRun {run} in namespace {api.namespace} is a run of DAG {owner!r}, not {dag!r}")
            return obj
    for obj in api.list_dagruns():
        if _is_run_of(obj, dag) and (obj.get("spec") or {}).get("runId") == run:
            return obj
    raise fail(f"no run {run!r} of DAG {dag!r} in namespace {api.namespace} "
               f"(see `kubedag runs list --dag {dag} -n {api.namespace}`)")


def _logs_cluster(dag: str, run: str, task: str, try_number: int | None, namespace: str | None,
                  kubeconfig: str | None, context: str | None) -> None:
    import os

    from kubedag.core import naming as names
    from kubedag.k8s.kubeapi import NotFound

    with _cluster(kubeconfig, context, namespace) as api:
        obj = _find_run(api, dag, run)
        run_name = obj["metadata"]["name"]
        run_id = (obj.get("spec") or {}).get("runId") or run
        entry = ((obj.get("status") or {}).get("tasks") or {}).get(task) or {}
        tries = int(entry.get("t") or 0)
        if tries == 0:
            state = entry.get("s") or "none"
            raise fail(f"task {task!r} has no try yet in run {run_id!r} of DAG {dag!r} (state: {state}; "
                       f"DAGRun {run_name})")
        if try_number is not None and try_number > tries:
            raise fail(f"task {task!r} has {tries} tr{'y' if tries == 1 else 'ies'} in run {run_id!r}; "
                       f"there is no try {try_number}")
        number = try_number or tries
        pod = names.pod_name(dag, run_name, task, number)
        try:
            text = api.read_pod_log(pod, obj["metadata"].get("namespace") or api.namespace)
        except NotFound:
            text = None
    url = os.environ.get("KUBEDAG_DATABASE_URL")
    if text is None and not url:
        raise fail(f"pod {pod} (try {number} of task {task!r}) was deleted, so its log is no longer in the "
                   "cluster; set KUBEDAG_DATABASE_URL to the controller's metadata DB to read the archived copy")
    row = None
    if url:  # the try's history row: its archived log (once the pod is deleted) and its failure reason
        import sqlalchemy.exc

        from kubedag.store.history import db_dag_id
        from kubedag.store.db import make_engine

        try:
            row = _db_try(make_engine(url), db_dag_id(obj["metadata"].get("namespace") or "default", dag), run_id,
                          task, number)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            if text is None:
                message = " ".join(str(exc).split("\n(Background on this error")[0].split())
                raise fail(f"pod {pod} was deleted and the metadata DB cannot be read: {message}") from None
    if text is None:
        text = row[3] if row is not None else None
        if not text:
            raise fail(f"pod {pod} was deleted and the metadata DB has no archived log of try {number} of task "
                       f"{task!r} in run {run_id!r}")
    typer.echo(text + _failed_try_note(text, row), nl=False)


# --- operations: backfill, clear, mark, delete -------------------------------------------------------------
#
# One rule for every operations command: with -f/--file FILE the DAG comes from that manifest and the command
# works on this machine (the metadata DB, tasks as local processes); without it, on the cluster (the DAG, DAGRun
# and Backfill objects; --kubeconfig, --context, -n as everywhere).

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


def _parse_date_arg(value: str, option: str):  # noqa: ANN202
    """An ISO 8601 date or date-time as given (naive kept naive: read in the DAG's timezone later)."""
    from kubedag.core.spec.models import parse_datetime

    try:
        return parse_datetime(value)
    except (TypeError, ValueError):
        raise fail(f"{option}: invalid ISO 8601 date or time {value!r}", 2) from None


def _local_dag(file: Path, name: str):  # noqa: ANN202
    """The DAG ``name`` of manifest ``file`` (exit 2 when the file holds no such DAG)."""
    try:
        return _load(file, name)
    except (KeyError, ValueError) as exc:
        raise fail(f"--file {file}: {exc}", 2) from None


def _print_planned(planned: list, dry_run: bool) -> None:  # noqa: ANN001
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
    start, end = _parse_date_arg(start_date, "--start-date"), _parse_date_arg(end_date, "--end-date")
    conf_value = _parse_conf(conf)
    if file is not None:
        _backfill_local(file, name, start, end, reset_dagruns, max_active_runs, dry_run, conf_value, output)
    else:
        _backfill_cluster(name, start_date, end_date, start, end, reset_dagruns, max_active_runs, dry_run, conf_value,
                          backfill_name, no_wait, namespace, kubeconfig, context, output)


def _backfill_local(file: Path, name: str, start, end, reset: bool, max_active: int | None, dry_run: bool,  # noqa: ANN001
                    conf: dict, output: OutputFormat) -> None:
    import threading

    from kubedag.local import operations as ops

    dag = _local_dag(file, name)
    sessionmaker = ops.open_db()
    try:
        planned = ops.plan_backfill(dag, start, end, ops.existing_runs(sessionmaker, dag.dag_id), reset=reset)
    except ops.OperationError as exc:
        raise fail(str(exc), 2) from None
    rows = [p.as_json() for p in planned]
    if dry_run:
        if output == OutputFormat.json:
            print_json(rows)
        else:
            _print_planned(rows, True)
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
        result = ops.run_backfill(dag, planned, workdir=file.resolve().parent, max_active_runs=limit, conf=conf,
                                  on_finish=finished)
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
    with _cluster(kubeconfig, context, namespace) as api:
        dag_obj = api.get_dag(name)  # NotFound: "DAG 'x' in namespace 'y' not found"
        if dry_run:
            rows = _cluster_backfill_preview(api, dag_obj, body)
            if output == OutputFormat.json:
                print_json(rows)
            else:
                _print_planned(rows, True)
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
        status = _follow_backfill(api, obj_name, output == OutputFormat.table)
    if output == OutputFormat.json:
        print_json({"name": obj_name, "namespace": ns, "dag_id": name, **status})
    else:
        typer.echo(f"Backfill {obj_name}: {status.get('phase')}: {status.get('succeeded', 0)} of "
                   f"{status.get('total', 0)} run(s) succeeded, {status.get('failed', 0)} failed")
    raise typer.Exit(0 if status.get("phase") == "success" else 1)


def _cluster_backfill_preview(api: KubeApi, dag_obj: dict[str, Any], body: dict[str, Any]) -> list[dict[str, Any]]:
    """What a Backfill would do now, from the DAG object and its DAGRuns (the controller's own planning)."""
    from datetime import datetime, timezone

    from kubedag.k8s import backfill as bf
    from kubedag.core.spec import DAGValidationError
    from kubedag.core.spec.loader import parse_dag

    try:
        dag = parse_dag(dag_obj)
    except DAGValidationError as exc:
        raise fail(f"DAG {body['spec']['dagName']} is invalid: " + "; ".join(map(str, exc.errors))) from None
    runs = [r for r in (bf.existing_from_object(o, dag) for o in api.list_dagruns() if _is_run_of(o, dag.dag_id)) if r]
    planned = bf.plan_backfill({**body, "metadata": {**body["metadata"], "namespace": api.namespace}}, dag, runs,
                               datetime.now(timezone.utc))
    condition = next(iter(planned.status.get("conditions") or []), {})
    if condition.get("status") == "False":
        raise fail(condition.get("message") or "invalid backfill", 2)
    from kubedag.local.operations import plan_backfill as plan_local
    from kubedag.core.spec.models import parse_datetime

    existing = {r.logical_date: (r.run_id, r.phase or "queued") for r in runs}
    local = plan_local(dag, parse_datetime(body["spec"]["startDate"]), parse_datetime(body["spec"]["endDate"]),
                       existing, reset=bool(body["spec"].get("resetDagRuns")))
    return [p.as_json() for p in local]


def _follow_backfill(api: KubeApi, name: str, show: bool) -> dict[str, Any]:
    """Poll the Backfill's status until its phase is success or failed; a progress bar on stderr when ``show``."""
    import time

    progress = bar = None
    if show:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from kubedag.cli.output import console

        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=console(stderr=True))
        progress.start()
        bar = progress.add_task(name, total=None)
    try:
        while True:
            status = api.get_backfill(name).get("status") or {}
            if progress is not None:
                done = int(status.get("succeeded") or 0) + int(status.get("failed") or 0)
                progress.update(bar, total=status.get("total") or None, completed=done,
                                description=f"{name} {status.get('phase') or 'pending'}: {status.get('running', 0)} "
                                f"running, {status.get('failed', 0)} failed")
            if status.get("phase") in ("success", "failed"):
                return status
            time.sleep(1.0)
    finally:
        if progress is not None:
            progress.stop()


def _action_id(kind: str) -> str:
    """A new RunAction id: ``<kind>-<UTC time>-<random>``, at most 64 characters."""
    import secrets
    from datetime import datetime, timezone

    return f"{kind}-{datetime.now(timezone.utc):%Y%m%dt%H%M%S}-{secrets.token_hex(3)}"


def _append_action(api: KubeApi, obj: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
    """Append ``action`` to the DAGRun's ``spec.actions`` (a patch guarded by its resourceVersion; on a
    conflict the run is read again and the append retried)."""
    from kubedag.k8s.kubeapi import Conflict

    name = obj["metadata"]["name"]
    for _ in range(5):
        actions = list((obj.get("spec") or {}).get("actions") or [])
        try:
            return api.patch_dagrun(name, {"spec": {"actions": [*actions, action]}},
                                    resource_version=obj["metadata"].get("resourceVersion"))
        except Conflict:
            fresh = api.get_dagrun(name)
            if fresh is None:
                raise fail(f"DAGRun {name} in namespace {api.namespace} was deleted meanwhile") from None
            obj = fresh
    raise fail(f"DAGRun {name} keeps changing; try again")


def _wait_applied(api: KubeApi, name: str, action_id: str, timeout: float) -> dict[str, Any]:
    """Poll the DAGRun until ``action_id`` is in ``status.appliedActions``; exit 1 after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        obj = api.get_dagrun(name)
        if obj is None:
            raise fail(f"DAGRun {name} in namespace {api.namespace} was deleted")
        if action_id in ((obj.get("status") or {}).get("appliedActions") or []):
            return obj
        if time.monotonic() >= deadline:
            raise fail(f"the controller did not apply action {action_id} to DAGRun {name} within {timeout:g}s "
                       "(it stays in spec.actions and is applied when the controller gets to it; is the controller "
                       "running?)")
        time.sleep(0.5)


def _confirm(lines: list[str], question: str, yes: bool) -> None:
    if yes:
        return
    for line in lines:
        typer.echo(line)
    if not typer.confirm(question, default=False):
        typer.echo("Cancelled, nothing was changed.")
        raise typer.Exit(1)


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
    if file is not None:
        _clear_local(file, dag, run, task, upstream, downstream, only_failed, yes)
        return
    from kubedag.core.engine import select_tasks
    from kubedag.core.spec import DAGValidationError
    from kubedag.core.spec.loader import parse_dag

    with _cluster(kubeconfig, context, namespace) as api:
        obj = _find_run(api, dag, run)
        try:
            parsed = parse_dag(api.get_dag(dag))
            selected = select_tasks(parsed, task, upstream=upstream, downstream=downstream)
        except DAGValidationError:
            selected = tuple(task)
        except ValueError as exc:
            raise fail(str(exc), 2) from None
        entries = (obj.get("status") or {}).get("tasks") or {}
        if only_failed:
            selected = tuple(t for t in selected if (entries.get(t) or {}).get("s") in ("failed", "upstream_failed"))
        lines = [f"  {t} ({(entries.get(t) or {}).get('s', 'none')}, try {(entries.get(t) or {}).get('t', 0)})"
                 for t in selected]
        _confirm([f"You are about to clear these {len(selected)} task instance(s) of run "
                  f"{obj['spec'].get('runId') or run} (DAGRun {obj['metadata']['name']}):", *lines], "Are you sure?", yes)
        action = {"id": _action_id("clear"), "type": "clear", "tasks": list(task), "upstream": upstream,
                  "downstream": downstream, "onlyFailed": only_failed}
        _submit_action(api, obj, action, no_wait, timeout)


def _submit_action(api: KubeApi, obj: dict[str, Any], action: dict[str, Any], no_wait: bool, timeout: float) -> None:
    name = obj["metadata"]["name"]
    _append_action(api, obj, action)
    if no_wait:
        typer.echo(f"Added {action['type']} action {action['id']} to DAGRun {name}; the controller applies it")
        return
    _wait_applied(api, name, action["id"], timeout)
    typer.echo(f"The controller applied {action['type']} action {action['id']} to DAGRun {name}")


def _clear_local(file: Path, dag_name: str, run_id: str, tasks: list[str], upstream: bool, downstream: bool,
                 only_failed: bool, yes: bool) -> None:
    from kubedag.local import operations as ops

    dag = _local_dag(file, dag_name)
    try:
        preview = ops.preview_clear(dag, run_id, tasks, upstream=upstream, downstream=downstream,
                                    only_failed=only_failed)
    except ops.OperationError as exc:
        raise fail(str(exc)) from None
    if not preview:
        typer.echo("No task instances to clear.")
        return
    _confirm([f"You are about to clear these {len(preview)} task instance(s) of run {run_id}:",
              *(f"  {t} ({state}, try {n})" for t, state, n in preview)], "Are you sure?", yes)
    result, tis = ops.clear_tasks(dag, run_id, tasks, upstream=upstream, downstream=downstream, only_failed=only_failed)
    typer.echo(f"Cleared {len(result.task_ids)} task instance(s): {', '.join(result.task_ids)}; running run {run_id} "
               "to completion on this machine (there is no local scheduler)")
    final, tis = ops.resume_run(dag, result.run, tis, workdir=file.resolve().parent)
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
    if file is not None:
        from kubedag.local import operations as ops

        dag_obj = _local_dag(file, dag)
        try:
            run_obj, changed = ops.mark_tasks(dag_obj, run, task, state.value)
        except ops.OperationError as exc:
            raise fail(str(exc)) from None
        typer.echo(f"Marked {len(changed)} task instance(s) {state.value}" + (f": {', '.join(changed)}" if changed else
                                                                              " (they were already)"))
        note = "" if run_obj.finished else " (tasks left to run wait: there is no local scheduler; `kubedag tasks clear` runs them)"
        typer.echo(f"run {run}: {run_obj.state}{note}")
        return
    with _cluster(kubeconfig, context, namespace) as api:
        obj = _find_run(api, dag, run)
        action = {"id": _action_id("mark"), "type": "mark", "tasks": list(task), "state": state.value}
        _submit_action(api, obj, action, no_wait, timeout)


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
    if file is not None:
        from kubedag.local import operations as ops

        dag_obj = _local_dag(file, dag)
        _confirm([], f"Delete run {run} of DAG {dag_obj.dag_id} with its task instances, tries and XComs?", yes)
        try:
            ops.delete_run(dag_obj.dag_id, run)
        except ops.OperationError as exc:
            raise fail(str(exc)) from None
        typer.echo(f"Deleted run {run} of DAG {dag_obj.dag_id} from the metadata DB")
        return
    from kubedag.k8s.kubeapi import NotFound

    with _cluster(kubeconfig, context, namespace) as api:
        obj = _find_run(api, dag, run)
        name = obj["metadata"]["name"]
        _confirm([], f"Delete DAGRun {name} (run {obj['spec'].get('runId') or run}) in namespace {api.namespace}?", yes)
        try:
            api.delete_dagrun(name)
        except NotFound:
            pass
        typer.echo(f"Deleted DAGRun {name} in namespace {api.namespace} (its history stays in the metadata DB)")


def main() -> None:
    """Console-script entry point. Metadata DB failures end with one clear line and exit 1, not a traceback."""
    import sys

    try:
        app()
    except Exception as exc:  # noqa: BLE001 - only cluster, DB and writer errors are turned into messages
        kubeapi = sys.modules.get("kubedag.k8s.kubeapi")  # not imported by local commands: they start faster
        if kubeapi is not None and isinstance(exc, kubeapi.KubeError):  # commands report these already
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        if type(exc).__module__.startswith("sqlalchemy") or "metadata DB writer failed" in str(exc):
            message = str(exc).split("\n(Background on this error")[0]
            print(f"error: cannot use the metadata DB: {message}", file=sys.stderr)
            raise SystemExit(1) from None
        raise


if __name__ == "__main__":  # pragma: no cover
    main()

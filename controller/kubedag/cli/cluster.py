"""The cluster's side of the CLI: DAG and DAGRun objects read into the rows `dags list` and `runs list` show, a
try's pod log (or its copy archived in the metadata DB), and following the controller (a Backfill's progress,
an action applied). Every call goes through :mod:`kubedag.k8s.kubeapi`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import typer

from kubedag.cli.common import connect_cluster
from kubedag.cli.output import OutputFormat, fail, print_json
from kubedag.k8s.kubeapi import is_run_of

if TYPE_CHECKING:
    from kubedag.k8s.kubeapi import KubeApi


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == type_:
            return condition
    return None


def parse_k8s_time(value: Any):  # noqa: ANN202
    from datetime import datetime, timezone

    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


def human_duration(seconds: float | None) -> str:
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


def dag_row(obj: dict[str, Any]) -> dict[str, Any]:
    """What `dags list` shows of a DAG object."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    ready = condition(obj, "Ready")
    last = status.get("lastRun") or None
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        **dag_about(obj),
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


def dag_about(obj: dict[str, Any]) -> dict[str, Any]:
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


def run_row(obj: dict[str, Any], now) -> dict[str, Any]:  # noqa: ANN001
    """What `runs list` shows of a DAGRun object (keys as the local `runs list -o json`, plus the object's, and its
    ``Ready`` condition's ``ready_reason``/``ready_message`` when the run cannot go on)."""
    from kubedag.core.naming import LABEL_DAG
    from kubedag.core.timetable import iso_utc

    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    started, finished = parse_k8s_time(status.get("startedAt")), parse_k8s_time(status.get("finishedAt"))
    duration = None
    if started is not None:
        duration = max(0.0, ((finished or now) - started).total_seconds())
    counts = {k: v for k, v in (status.get("counts") or {}).items() if isinstance(v, int) and v}
    ready = condition(obj, "Ready")  # set when the run cannot go on (RunIdTaken, PoolUnavailable, DAGDeleted ...)
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
        "ready_reason": ready.get("reason") if ready else None,
        "ready_message": (ready.get("message") or None) if ready else None,
    }


def newest_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from datetime import datetime, timezone

    oldest = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(
        rows,
        key=lambda r: (parse_k8s_time(r["logical_date"]) or parse_k8s_time(r["start_date"]) or oldest, r["name"] or ""),
        reverse=True,
    )



def dags_list_cluster(namespace: str | None, all_namespaces: bool, kubeconfig: str | None, context: str | None,
                      output: OutputFormat) -> None:
    """`dags list` on the cluster: the DAG objects with owner, tags, schedule, paused, Ready, last and next run (and
    the description with -o json)."""
    with connect_cluster(kubeconfig, context, namespace) as api:
        dags = api.list_dags(None if all_namespaces else api.namespace)
    rows = sorted((dag_row(d) for d in dags), key=lambda r: (r["namespace"] or "", r["name"] or ""))
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


def runs_list_cluster(dag: str | None, limit: int, output: OutputFormat, namespace: str | None,
                       all_namespaces: bool, kubeconfig: str | None, context: str | None) -> None:
    from datetime import datetime, timezone

    with connect_cluster(kubeconfig, context, namespace) as api:
        objs = api.list_dagruns(None if all_namespaces else api.namespace)
    now = datetime.now(timezone.utc)
    rows = newest_first([run_row(o, now) for o in objs if dag is None or is_run_of(o, dag)])[:limit]
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
                 r["logical_date"] or "", (styled_state(r["state"]) if r["state"] else "") + (
                     f" ({escape(r['ready_reason'])})" if r["ready_reason"] else ""), r["start_date"] or "",
                 human_duration(r["duration"]), tasks]
        if all_namespaces:
            cells.insert(1, r["namespace"] or "")
        table.add_row(*cells)
    console().print(table)



def logs_cluster(dag: str, run: str, task: str, try_number: int | None, namespace: str | None,
                  kubeconfig: str | None, context: str | None) -> None:
    from kubedag.core import naming as names
    from kubedag.k8s.kubeapi import NotFound

    with connect_cluster(kubeconfig, context, namespace) as api:
        obj = find_run(api, dag, run)
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
        namespace = obj["metadata"].get("namespace") or api.namespace
        try:
            text = api.read_pod_log(pod, namespace)
        except NotFound:
            text = None
        if text is not None:  # a live pod's log holds what templates rendered: mask it as the archived copy is
            text = log_masker(api, namespace, dag).mask(text)
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
            row = db_try(make_engine(url), db_dag_id(obj["metadata"].get("namespace") or "default", dag), run_id,
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
    typer.echo(text + failed_try_note(text, row), nl=False)


def log_masker(api: KubeApi, namespace: str, dag: str) -> Any:
    """A :class:`kubedag.core.secrets.Masker` of what the DAG ``dag``'s variables and connections hold, as the
    controller masks them (every Secret value, ConfigMap values under a sensitive key, each connection's URI and
    password) plus the metadata DB's URL; the ConfigMaps and Secrets it names are read with the user's identity
    (:meth:`kubedag.k8s.kubeapi.KubeApi.read_source`). Exits 1 when the DAG or one of them cannot be read (e.g.
    forbidden): a log that may hold secrets is not printed unmasked."""
    from kubedag.core.secrets import load_sources
    from kubedag.k8s.kubeapi import KubeError, NotFound

    try:  # the references as the object holds them: a DAG edited into an invalid one still names its sources
        spec = api.get_dag(dag, namespace).get("spec") or {}
        sources = load_sources(spec.get("variablesFrom") or [], spec.get("connectionsFrom") or [],
                               lambda kind, name: api.read_source(kind, name, namespace))
    except NotFound:
        raise fail(f"DAG {dag!r} is gone from namespace {namespace!r}: its variables and connections cannot be read "
                   "to mask the pod's log; set KUBEDAG_DATABASE_URL to read the archived (masked) copy") from None
    except (KubeError, TypeError, AttributeError) as exc:  # TypeError/AttributeError: a malformed reference
        raise fail(f"cannot read what DAG {dag!r} names in variablesFrom/connectionsFrom to mask the pod's log: "
                   f"{' '.join(str(exc).split())}") from None
    masker = sources.masker
    url = os.environ.get("KUBEDAG_DATABASE_URL")
    if url:
        masker.add_connection(url)
    return masker


def db_try(engine: Any, dag: str, run_id: str, task: str, number: int | None) -> tuple[int, str | None, str | None,
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


def failed_try_note(log: str, row: tuple[int, str | None, str | None, str | None] | None) -> str:
    """The line `kubedag logs` ends with when the try failed: ``[kubedag] try N failed: <reason>`` (the reason
    the run table shows), with the metadata DB's password and any URL's password masked; "" otherwise."""
    if row is None or row[1] != "failed":
        return ""
    import re

    from kubedag.core.secrets import MASK, Masker

    number, _, reason, _ = row
    masker = Masker()
    if os.environ.get("KUBEDAG_DATABASE_URL"):
        masker.add_connection(os.environ["KUBEDAG_DATABASE_URL"])
    line = masker.mask(f"[kubedag] try {number} failed" + (f": {reason}" if reason else ""))
    line = re.sub(r"(://[^/\s:@]*:)[^/\s@]+@", rf"\g<1>{MASK}@", line)
    return ("" if not log or log.endswith("\n") else "\n") + line + "\n"


# --- operations: backfill, clear, mark, delete -------------------------------------------------------------
#
# One rule for every operations command: with -f/--file FILE the DAG comes from that manifest and the command
# works on this machine (the metadata DB, tasks as local processes); without it, on the cluster (the DAG, DAGRun
# and Backfill objects; --kubeconfig, --context, -n as everywhere).

def follow_backfill(api: KubeApi, name: str, show: bool) -> dict[str, Any]:
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



def wait_applied(api: KubeApi, name: str, action_id: str, timeout: float) -> dict[str, Any]:
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




def find_run(api: KubeApi, dag: str, run: str) -> dict[str, Any]:
    """The DAGRun of ``dag`` whose run id or object name is ``run`` (:meth:`kubedag.k8s.kubeapi.ClusterRuns.find`);
    exit 1 naming what is missing."""
    from kubedag.cli.common import operation_errors
    from kubedag.k8s.kubeapi import ClusterRuns

    with operation_errors():
        return ClusterRuns(api).find(dag, run)


def report_submitted(api: KubeApi, submitted: list[tuple[str, dict[str, Any]]], no_wait: bool, timeout: float) -> None:
    """Say which action was added to which DAGRun; unless ``no_wait``, wait for the controller to apply it."""
    for name, action in submitted:
        if no_wait:
            typer.echo(f"Added {action['type']} action {action['id']} to DAGRun {name}; the controller applies it")
            continue
        wait_applied(api, name, action["id"], timeout)
        typer.echo(f"The controller applied {action['type']} action {action['id']} to DAGRun {name}")

"""How the CLI shows DAGs on this machine: the rows of ``dags list`` (schedule in words, paused, last and next
run from the metadata DB) and the structure ``dags show`` prints, as text or as Graphviz DOT (plain text:
no graphviz package is needed to write it)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from kubedag.core.spec.dag import DAG

_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_PRESETS = {
    "@once": "once", "@continuous": "continuously", "@hourly": "every hour at minute 0",
    "@daily": "every day at 00:00", "@midnight": "every day at 00:00", "@weekly": "every Sunday at 00:00",
    "@monthly": "on day 1 of every month at 00:00", "@yearly": "every year on 1 January at 00:00",
    "@annually": "every year on 1 January at 00:00",
}
_NUMBER = re.compile(r"^\d+$")


def schedule_words(dag: DAG) -> str:
    """The DAG's schedule in words, e.g. ``every day at 16:00 (UTC)`` for ``0 16 * * *``; ``never (manual runs
    only)`` without a schedule; the expression itself for a cron it cannot say simply."""
    schedule = dag.schedule
    if schedule is None:
        return "never (manual runs only)"
    tz = f" ({dag.timezone})"
    if schedule in _PRESETS:
        return _PRESETS[schedule] + ("" if schedule in ("@once", "@continuous") else tz)
    fields = schedule.split()
    if len(fields) != 5:
        return f"every {schedule}"  # a duration schedule (Airflow's timedelta), e.g. 10m
    minute, hour, dom, month, dow = fields
    if minute.startswith("*/") and _NUMBER.match(minute[2:]) and fields[1:] == ["*"] * 4:
        return f"every {minute[2:]} minutes"
    if _NUMBER.match(minute) and hour == dom == month == dow == "*":
        return f"every hour at minute {int(minute)}"
    if not (_NUMBER.match(minute) and _NUMBER.match(hour)):
        return f"cron {schedule}{tz}"
    at = f"{int(hour):02d}:{int(minute):02d}"
    if dom == month == dow == "*":
        return f"every day at {at}{tz}"
    if dom == month == "*" and _NUMBER.match(dow) and int(dow) <= 7:
        return f"every {_DAYS[int(dow) % 7]} at {at}{tz}"
    if month == dow == "*" and _NUMBER.match(dom):
        return f"on day {int(dom)} of every month at {at}{tz}"
    return f"cron {schedule}{tz}"


def local_dag_rows(source: Any, now: datetime | None = None) -> list[dict[str, Any]]:
    """What ``dags list`` shows of each DAG of ``source`` (a :class:`~kubedag.app.operations.DagSource`), with
    the metadata DB's paused flag (the manifest's ``spec.paused`` for a DAG it does not know), last run and next
    run (the first scheduled run not created yet, by the DAG's timetable after its last scheduled run; None
    when paused). Instants ISO 8601 UTC."""
    from kubedag.core import timetable
    from kubedag.core.timetable import DataInterval
    from kubedag.store.operations import DbRuns, open_db

    now = now or datetime.now(timezone.utc)
    dags = source.dags()
    runs = DbRuns(open_db())
    paused_of, last_of, scheduled_of = runs.paused_flags(), runs.last_runs(), runs.last_runs(("scheduled",))
    rows = []
    for dag in dags:
        paused = paused_of.get(dag.dag_id, dag.paused)
        last, sched = last_of.get(dag.dag_id), scheduled_of.get(dag.dag_id)
        interval = None
        if sched is not None and sched.data_interval_start and sched.data_interval_end:
            interval = DataInterval(sched.data_interval_start, sched.data_interval_end)
        following = None if paused else dag.timetable.next_dagrun_info(
            last_automated_data_interval=interval, restriction=dag.restriction, now=now)
        rows.append({
            "name": dag.dag_id,
            "description": dag.description,
            "tags": list(dag.tags),
            "owner": dag.owner,
            "schedule": dag.schedule,
            "schedule_words": schedule_words(dag),
            "cron": getattr(dag.timetable, "summary", None) if dag.schedule else None,
            "paused": paused,
            "last_run": None if last is None else {"run_id": last.run_id, "state": last.state,
                                                   "logical_date": timetable.iso_utc(last.logical_date)},
            "next_run_at": timetable.iso_utc(following.run_after) if following else None,
        })
    return rows


def print_dag_rows(rows: list[dict[str, Any]]) -> None:
    """The ``dags list`` table for people."""
    from rich.markup import escape
    from rich.table import Table

    from kubedag.cli.output import console
    from kubedag.local.view import styled_state

    table = Table()
    for column in ("name", "description", "tags", "schedule", "paused", "last_run", "next_run"):
        table.add_column(column)
    for r in rows:
        last = r["last_run"]
        last_text = "" if not last else escape(last["run_id"]) + (f" ({styled_state(last['state'])})" if last["state"]
                                                                   else "")
        schedule = escape(r["schedule_words"]) + (f" [dim]({escape(r['cron'])})[/]" if r["cron"] and r["cron"] not in
                                                  r["schedule_words"] else "")
        table.add_row(escape(r["name"]), escape(r["description"] or ""), escape(", ".join(r["tags"])), schedule,
                      str(r["paused"]).lower(), last_text, r["next_run_at"] or "")
    console().print(table)


def _task_kind(dag: DAG, task_id: str) -> str:
    task = dag.tasks[task_id]
    if task.trigger is not None:
        return f"trigger {task.trigger.dag}"
    if task.sensor is not None:
        check = next((k for k in ("file", "http", "external_task") if getattr(task.sensor, k) is not None), "command")
        return f"sensor ({check.replace('_', ' ')}, {task.sensor.mode})"
    if task.branch:
        return "branch"
    return "command" if task.command or task.args else "empty"


def dag_text(dag: DAG) -> str:
    """The DAG's structure as text: a header, then one line per task in topological order with what it runs,
    its trigger rule when not ``all_success``, and the tasks it depends on."""
    lines = [f"DAG {dag.dag_id}: {len(dag.tasks)} task(s), schedule {schedule_words(dag)}"]
    for task_id, task in dag.tasks.items():
        extra = f", trigger rule {task.trigger_rule}" if str(task.trigger_rule) != "all_success" else ""
        after = f"  <- {', '.join(task.upstream)}" if task.upstream else ""
        lines.append(f"  {task_id} [{_task_kind(dag, task_id)}{extra}]{after}")
    return "\n".join(lines) + "\n"


def _dot_id(text: str) -> str:
    return json.dumps(text)  # a DOT quoted ID: "..." with \" and \\ escaped, as JSON strings are


def dag_dot(dag: DAG) -> str:
    """The DAG as a Graphviz DOT digraph (left to right, one node per task labelled with its kind, one edge per
    dependency), as ``airflow dags show`` prints it; render it with ``dot -Tsvg``."""
    lines = [f"digraph {_dot_id(dag.dag_id)} {{", "  graph [label=" + _dot_id(dag.dag_id) + ", labelloc=t, rankdir=LR];",
             "  node [shape=rectangle, style=\"rounded,filled\", fillcolor=\"#f0f0f0\"];"]
    for task_id in dag.tasks:
        lines.append(f"  {_dot_id(task_id)} [label={_dot_id(task_id + chr(10) + _task_kind(dag, task_id))}];")
    for task_id, task in dag.tasks.items():
        for up in task.upstream:
            lines.append(f"  {_dot_id(up)} -> {_dot_id(task_id)};")
    lines.append("}")
    return "\n".join(lines) + "\n"

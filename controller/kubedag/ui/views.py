"""The UI's page models: plain values computed from the catalog's records, that the templates only lay out.

Kept apart from the HTTP routes so that the benchmark (``benchmarks/ui.py``) and tests can build them directly.
States and colors are Airflow's (``airflow/settings.py`` ``STATE_COLORS``, Airflow 2.10); a task instance with
no state is Airflow's "no status".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cron_descriptor import ExpressionDescriptor

from kubedag.app.catalog import (
    Catalog, DagInfo, GridReader, GridVersion, RunInfo, RunQuery, TaskInstanceInfo, TryInfo,
)
from kubedag.app.operations import LoadedRun, OperationError
from kubedag.core import engine, timetable
from kubedag.core.secrets import is_sensitive
from kubedag.core.spec.dag import DAG, Task, topological_order

STATE_COLORS: dict[str, str] = {
    "queued": "gray", "running": "lime", "success": "green", "restarting": "violet", "failed": "red",
    "up_for_retry": "gold", "up_for_reschedule": "turquoise", "upstream_failed": "orange", "skipped": "hotpink",
    "removed": "lightgrey", "scheduled": "tan", "deferred": "mediumpurple", "none": "white",
}
"""Airflow 2.10's ``STATE_COLORS`` (task instance and run states); ``none`` is "no status"."""

STATE_CODES: dict[str, str] = {state: chr(97 + i) for i, state in enumerate(STATE_COLORS)}
"""One letter per state, for the compact grid (``a`` queued, ``b`` running, ...)."""

FINISHED_RUN_STATES = frozenset({"success", "failed"})
FINISHED_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
RECENT_RUNS = 10
"""How many recent runs the DAG list shows as state dots (Airflow's home shows the last runs' states)."""


def state_name(state: str | None) -> str:
    """The state as the UI names it: ``none`` for Airflow's ``None``."""
    return str(state) if state else "none"


def schedule_words(schedule: str | None) -> str:
    """The schedule in words, as Airflow's ``timetable.description`` (which uses ``cron_descriptor``):
    ``None`` -> "Never, external triggers only"; ``@once`` -> "Once, as soon as possible"; a cron or preset ->
    e.g. "At 00:00"; a duration -> "Every 1:00:00"."""
    if schedule is None:
        return "Never, external triggers only"
    if schedule == "@once":
        return "Once, as soon as possible"
    expression = timetable.PRESETS.get(schedule, schedule)
    if len(expression.split()) == 5:
        try:
            return ExpressionDescriptor(expression, use_24hour_time_format=True).get_description()
        except Exception:  # noqa: BLE001 - a description is cosmetic; the validated cron is shown beside it
            return expression
    return f"Every {schedule}"


def duration_text(seconds: float | None) -> str:
    """``seconds`` as ``H:MM:SS`` (``""`` for ``None``), rounded to the second."""
    if seconds is None:
        return ""
    return str(timedelta(seconds=round(seconds)))


def when(value: datetime | None) -> str:
    """A UTC instant as ``YYYY-MM-DD HH:MM:SS`` (``""`` for ``None``)."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def hover_lines(ti: TaskInstanceInfo, now: datetime) -> list[str]:
    """What hovering a grid cell shows beyond task, run and state: ``try n of m``, start, end (or "running for"),
    duration and reason, one text line each (UTC; lines with nothing to say are left out)."""
    lines = [f"try {ti.try_number} of {ti.max_tries + 1}"] if ti.try_number else ["not tried yet"]
    if ti.start_date:
        lines.append(f"start {when(ti.start_date)}")
    if ti.end_date:
        lines.append(f"end {when(ti.end_date)}")
    seconds = ti.duration if ti.duration is not None else (
        (now - ti.start_date).total_seconds() if ti.start_date and not ti.end_date else None)
    if seconds is not None:
        lines.append(f"duration {duration_text(seconds)}" + ("" if ti.end_date else " so far"))
    if ti.reason:
        lines.append(f"reason: {ti.reason}")
    return lines


def short_when(value: datetime | None) -> str:
    """A UTC instant as ``MM-DD HH:MM:SS`` (``""`` for ``None``), for narrow tables."""
    return value.strftime("%m-%d %H:%M:%S") if value else ""


def task_kind(task: Task) -> str:
    """The task's kind as the UI shows it: ``sensor``, ``branch``, ``trigger``, ``empty`` or ``command``."""
    if task.sensor is not None:
        return "sensor"
    if task.branch:
        return "branch"
    if task.trigger is not None:
        return "trigger"
    if task.empty:
        return "empty"
    return "command"


# ------------------------------------------------------------------------------------------------ DAG list
@dataclass(frozen=True)
class DagRow:
    """One row of the DAG list."""

    info: DagInfo
    recent: list[RunInfo]
    total_runs: int

    @property
    def dag_id(self) -> str:
        return self.info.dag_id

    @property
    def description(self) -> str:
        return (self.info.dag.description or "") if self.info.dag else ""

    @property
    def tags(self) -> tuple[str, ...]:
        return self.info.dag.tags if self.info.dag else ()

    @property
    def schedule(self) -> str | None:
        return self.info.dag.schedule if self.info.dag else None

    @property
    def cron(self) -> str:
        if not self.info.dag or self.schedule is None:
            return "None"
        return timetable.PRESETS.get(self.schedule, self.schedule)

    @property
    def last_run(self) -> RunInfo | None:
        return self.recent[0] if self.recent else None

    @property
    def failed_recently(self) -> bool:
        return any(r.state == "failed" for r in self.recent)


@dataclass(frozen=True)
class DagFilter:
    """The DAG list's search and filters: ``search`` (substring of the id, description or a tag,
    case-insensitive), ``paused`` (``"paused"``, ``"active"`` or ``""`` for all), ``failed`` (only DAGs with a
    failed run among the recent ones), ``tag`` (exact tag)."""

    search: str = ""
    paused: str = ""
    failed: bool = False
    tag: str = ""

    def keep(self, row: DagRow) -> bool:
        needle = self.search.strip().lower()
        if needle and not any(needle in text.lower() for text in (row.dag_id, row.description, *row.tags)):
            return False
        if self.paused == "paused" and not row.info.is_paused:
            return False
        if self.paused == "active" and row.info.is_paused:
            return False
        if self.failed and not row.failed_recently:
            return False
        return not self.tag or self.tag in row.tags


def dag_rows(catalog: Catalog, chosen: DagFilter) -> tuple[list[DagRow], list[str]]:
    """The DAG list's rows that pass ``chosen``, and every tag of every DAG (for the tag filter), sorted."""
    rows, tags = [], set()
    for info in catalog.dags():
        recent, total = catalog.runs(RunQuery(dag_id=info.dag_id, order_by="-logical_date", limit=RECENT_RUNS))
        row = DagRow(info, recent, total)
        tags.update(row.tags)
        if chosen.keep(row):
            rows.append(row)
    return rows, sorted(tags)


# ------------------------------------------------------------------------------------------------ grid
@dataclass(frozen=True)
class Grid:
    """The grid view: ``runs`` oldest first (columns), ``task_ids`` in the DAG's topological order (rows) and
    ``cells[row][column]`` the task instance of that task in that run (``None`` when the run has no row for
    it). ``version``: a digest of everything shown, so that a poll can answer "unchanged"."""

    dag: DAG
    runs: list[RunInfo]
    task_ids: list[str]
    cells: list[list[TaskInstanceInfo | None]]
    total_runs: int
    version: str = ""
    kinds: Mapping[str, str] = field(default_factory=dict)

    def row_codes(self, row: int) -> str:
        """The row as one letter per run (:data:`STATE_CODES`), ``-`` where there is no task instance."""
        return "".join(STATE_CODES[state_name(ti.state)] if ti else "-" for ti in self.cells[row])


def grid_version(catalog: Catalog, info: DagInfo, limit: int) -> str | None:
    """The grid's version from the catalog's cheap token (:class:`~kubedag.app.catalog.GridVersion`) and what the
    grid shows of the DAG itself (its tasks, their kinds, whether it is paused); ``None`` when the catalog has no
    such token (then :func:`grid` digests what it read)."""
    if not isinstance(catalog, GridVersion):
        return None
    digest = hashlib.blake2b(catalog.grid_version(info.dag_id, limit).encode(), digest_size=8)
    digest.update(f"{info.is_paused};".encode())
    for task_id, task in (info.dag.tasks.items() if info.dag else ()):
        digest.update(f"{task_id}:{task_kind(task)}:{','.join(task.upstream)};".encode())
    return digest.hexdigest()


def grid(catalog: Catalog, dag_id: str, *, limit: int = 25, version: str | None = None) -> Grid:
    """The grid of ``dag_id``'s latest ``limit`` runs. ``version``: :func:`grid_version`, when the caller has
    it already (it is read first otherwise, before the runs: a change while the grid is read shows at the next
    poll). Raises NotFound for the DAG, or OperationError if it is invalid."""
    info = catalog.dag(dag_id)
    if info.dag is None:
        raise OperationError(f"DAG {dag_id} is invalid: {info.error}")
    dag = info.dag
    version = version or grid_version(catalog, info, limit)
    runs, total = catalog.runs(RunQuery(dag_id=dag_id, order_by="-logical_date", limit=limit))
    runs = list(reversed(runs))
    task_ids = topological_order({t: task.upstream for t, task in dag.tasks.items()})
    index = {t: i for i, t in enumerate(task_ids)}
    cells: list[list[TaskInstanceInfo | None]] = [[None] * len(runs) for _ in task_ids]
    digest = hashlib.blake2b(digest_size=8)
    if isinstance(catalog, GridReader):                 # one read for every run
        batch = catalog.grid(dag_id, [run.run_id for run in runs])
        per_run = [batch.get(run.run_id, []) for run in runs]
    else:
        per_run = [catalog.task_instances(dag_id, run.run_id) for run in runs]
    for column, (run, tis) in enumerate(zip(runs, per_run, strict=True)):
        digest.update(f"{run.run_id}:{run.state};".encode())
        for ti in tis:
            row = index.get(ti.task_id)
            if row is not None:
                cells[row][column] = ti
                digest.update(f"{ti.task_id}:{ti.state}:{ti.try_number};".encode())
    return Grid(dag, runs, task_ids, cells, total, version or digest.hexdigest(),
                {t: task_kind(dag.tasks[t]) for t in task_ids})


# ------------------------------------------------------------------------------------------------ charts
def gantt_data(run: RunInfo, task_ids: list[str], tries: Mapping[str, list[TryInfo]], now: datetime) -> dict[str, Any]:
    """The Gantt chart of a run for the browser (Chart.js): ``tasks`` (rows, in order) and ``bars``
    ``[{task, try, state, color, queued, start, end}]`` with times in seconds from ``origin`` (the run's start,
    else its earliest try), ``end`` ``now`` for a try still running, ``queued`` ``None`` where unknown.
    ``origin``: ISO 8601 UTC."""
    starts = [t.queued_at or t.start_date for ts in tries.values() for t in ts if t.queued_at or t.start_date]
    origin = run.start_date or (min(starts) if starts else now)
    bars = []
    for task_id in task_ids:
        for t in tries.get(task_id, []):
            if t.start_date is None:
                continue
            end = t.end_date or now
            bars.append({"task": task_id, "try": t.try_number, "state": state_name(t.state),
                         "color": STATE_COLORS.get(state_name(t.state), "white"),
                         "queued": (t.queued_at - origin).total_seconds() if t.queued_at else None,
                         "start": (t.start_date - origin).total_seconds(), "end": (end - origin).total_seconds()})
    return {"origin": origin.isoformat(), "tasks": task_ids, "bars": bars}


def durations_data(runs: list[RunInfo], now: datetime) -> dict[str, Any]:
    """The run duration chart: one bar per run, oldest first: ``runs`` ``[{run_id, label, state, color,
    duration, queued}]`` (seconds; ``duration`` up to now for a running run, ``queued``: queued to start)."""
    out = []
    for r in runs:
        duration = ((r.end_date or now) - r.start_date).total_seconds() if r.start_date else None
        queued = (r.start_date - r.queued_at).total_seconds() if r.start_date and r.queued_at else None
        out.append({"run_id": r.run_id, "label": when(r.logical_date)[:16], "state": r.state,
                    "color": STATE_COLORS.get(r.state, "white"), "duration": duration, "queued": queued,
                    "run_type": r.run_type})
    return {"runs": out}


# ------------------------------------------------------------------------------------------------ schedule
SCHEDULE_SCAN = 500
"""At most this many due runs are listed (the count says when there are more)."""


@dataclass(frozen=True)
class Schedule:
    """A DAG's next runs from its timetable: ``due``: the runs whose time has come after the latest scheduled run
    (what the scheduler creates at once: catchup's backlog, or the runs unpausing creates), ``upcoming``: the
    next ones after those, ``more_due``: whether more than :data:`SCHEDULE_SCAN` are due."""

    due: list[timetable.DagRunInfo]
    upcoming: list[timetable.DagRunInfo]
    more_due: bool = False


def schedule(dag: DAG, last: RunInfo | None, now: datetime, count: int = 10) -> Schedule:
    """The :class:`Schedule` of ``dag`` after its latest scheduled run ``last`` (``None``: none yet), at ``now``
    (UTC), as Airflow's scheduler iterates ``next_dagrun_info`` (:func:`kubedag.core.timetable.upcoming_runs`)."""
    after = None
    if last is not None and last.data_interval_start and last.data_interval_end:
        after = timetable.DataInterval(last.data_interval_start, last.data_interval_end)
    runs = timetable.upcoming_runs(dag.timetable, dag.restriction, now, after, SCHEDULE_SCAN + count)
    due = [r for r in runs if r.run_after <= now]
    later = [r for r in runs if r.run_after > now][:count]
    return Schedule(due[:SCHEDULE_SCAN], later, len(due) > SCHEDULE_SCAN)


# ------------------------------------------------------------------------------------------------ why
WAITING_STATES = frozenset({"none", "scheduled", "up_for_retry", "up_for_reschedule"})


def why_waiting(dag: DAG, loaded: LoadedRun, task_id: str, now: datetime) -> str | None:
    """Why task ``task_id`` of the run has not started, from the engine's own planning (one pass of
    :func:`kubedag.core.engine.plan` that changes nothing): the trigger rule's reason ("trigger rule all_success
    requires ..., upstream: 1 done of 3"), a retry or reschedule not yet due, or that it is ready and starts at
    the scheduler's next pass. ``None`` when the engine has nothing to say (a finished run)."""
    run = loaded.run
    if str(run.state) in FINISHED_RUN_STATES:
        return None
    if str(run.state) == "queued":
        return ("the run is queued: the scheduler starts it when the DAG's max_active_runs "
                f"({dag.max_active_runs}) allows")
    tis = {t: loaded.tis.get(t) or engine.TaskInstance(t) for t in dag.tasks}
    plan = engine.plan(dag, run, tis, now)
    if task_id in plan.waiting:
        return "; ".join(plan.waiting[task_id])
    if any(start.task_id == task_id for start in plan.starts):
        return "ready: its upstream tasks allow it; the scheduler starts it at its next pass, when a slot is free"
    return None


# ------------------------------------------------------------------------------------------------ graph
def graph_data(dag: DAG, tis: Iterable[TaskInstanceInfo] = ()) -> dict[str, Any]:
    """The graph view's data for the browser's layout (dagre): ``nodes`` ``[{id, kind, state, rule}]`` and
    ``edges`` ``[{source, target, rule}]`` where ``rule`` is the downstream task's trigger rule when it is not
    ``all_success`` (``None`` otherwise)."""
    states = {ti.task_id: state_name(ti.state) for ti in tis}
    nodes, edges = [], []
    for task_id, task in dag.tasks.items():
        rule = str(task.trigger_rule)
        shown = None if rule == "all_success" else rule
        nodes.append({"id": task_id, "kind": task_kind(task), "state": states.get(task_id, "none"), "rule": shown})
        edges.extend({"source": up, "target": task_id, "rule": shown} for up in task.upstream)
    return {"nodes": nodes, "edges": edges}


def script_json(value: Any) -> str:
    """``value`` as JSON safe inside a ``<script type="application/json">`` element (``<`` escaped)."""
    return json.dumps(value).replace("<", "\\u003c")


def masked_env(env: Mapping[str, Any]) -> dict[str, Any]:
    """``env`` with the value of every sensitive name (:func:`kubedag.core.secrets.is_sensitive`, Airflow's
    ``DEFAULT_SENSITIVE_FIELDS``) and of every ``valueFrom`` reference (a mapping) replaced by ``***``."""
    return {name: "***" if is_sensitive(name) or isinstance(value, Mapping) else value for name, value in env.items()}

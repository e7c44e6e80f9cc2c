"""State-machine steps beyond a try's plain success or failure: a sensor's "not yet", a branch's choice, and
the user's clear and mark requests. Pure functions of their inputs, like :mod:`kubedag.core.engine.plan`; the
executors call them and persist what they return.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from kubedag.core.engine.model import DagRun, KillTry, TaskInstance
from kubedag.core.engine.plan import ACTIVE_STATES, format_duration, format_instant
from kubedag.core.sensors.poke import next_poke_interval, reschedule_poke_count
from kubedag.core.spec.dag import DAG
from kubedag.core.states import DagRunState, TaskInstanceState

S = TaskInstanceState


def sensor_not_met(dag: DAG, run: DagRun, ti: TaskInstance, now: datetime) -> TaskInstance:
    """A sensor's try reported "not met" (its check exited 75) at ``now``; the task instance is ``running``.

    As Airflow 2.10's ``BaseSensorOperator.execute``: past the sensor ``timeout`` since the first poke
    (``ti.start_date``, kept across reschedules) the task fails without retrying (``AirflowSensorTimeout``),
    or is ``skipped`` with ``softFail``; in ``poke`` mode the process itself pokes until the timeout, so a
    "not met" from it always means the timeout passed. In ``reschedule`` mode, before the timeout, the
    task instance becomes ``up_for_reschedule`` with ``next_retry_at = now +`` the next poke interval
    (:func:`kubedag.core.sensors.next_poke_interval`: ``pokeInterval``, or Airflow's exponential backoff) and
    keeps its try number.

    Raises:
        ValueError: the task is not a sensor, or ``ti`` is not queued or running (a stale report).
    """
    task = dag.tasks.get(ti.task_id)
    if task is None or task.sensor is None:
        raise ValueError(f"task {ti.task_id!r} is not a sensor")
    if ti.state not in ACTIVE_STATES:
        raise ValueError(f"task {ti.task_id!r} is {ti.state}, not queued or running: stale outcome")
    sensor = task.sensor
    first = ti.start_date or now
    elapsed = now - first
    if sensor.mode == "poke" or elapsed >= sensor.timeout:
        why = f"sensor timeout: not met after {format_duration(sensor.timeout)}"
        state = S.SKIPPED if sensor.soft_fail else S.FAILED
        reason = f"skipped: {why} (softFail)" if sensor.soft_fail else why
        return replace(ti, state=state, start_date=first, end_date=now, next_retry_at=None, reason=reason,
                       exit_code=None)
    # kubedag keeps no row per poke (Airflow's TaskReschedule): the count is derived from the elapsed time,
    # one poke per interval, or Airflow's own estimate with exponential backoff
    if sensor.exponential_backoff:
        pokes = reschedule_poke_count(sensor, dag_id=run.dag_id, task_id=ti.task_id, started_at=first, elapsed=elapsed)
    else:
        pokes = 1 + int(elapsed.total_seconds() // max(sensor.poke_interval.total_seconds(), 1.0))
    interval = next_poke_interval(sensor, dag_id=run.dag_id, task_id=ti.task_id, started_at=first,
                                  poke_count=pokes, elapsed=elapsed)
    due = now + max(interval, timedelta(0))
    return replace(ti, state=S.UP_FOR_RESCHEDULE, start_date=first, end_date=now, next_retry_at=due,
                   reason=f"not met after {pokes} poke{'s' if pokes != 1 else ''}: reschedule at {format_instant(due)}",
                   exit_code=None)


def branch_follow(dag: DAG, task_id: str, value: Any) -> tuple[str, ...]:
    """The downstream tasks a branch task's XCom return value names (Airflow's ``BranchMixIn.do_branch``).

    ``value``: a task name, a list of task names, or None/empty (follow none: every direct downstream task
    is skipped). Raises ValueError naming the invalid entries when a name is not a direct downstream task
    of ``task_id`` (Airflow: "'branch_task_ids' must contain only valid task_ids"), or when the value is
    not a string or a list of strings; the branch task's try then fails.
    """
    if value is None:
        return ()
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"a branch task returns a task name or a list of task names, not {value!r}")
    downstream = dag.downstream[task_id]
    invalid = [n for n in names if n not in downstream]
    if invalid:
        raise ValueError(
            f"branch task {task_id!r} returned {', '.join(map(repr, invalid))}, not among its downstream tasks "
            f"({', '.join(downstream) or 'none'})"
        )
    return tuple(dict.fromkeys(names))


def apply_branch(
    dag: DAG, tis: Mapping[str, TaskInstance], task_id: str, follow: Iterable[str], now: datetime
) -> dict[str, TaskInstance]:
    """Skip the direct downstream tasks of branch task ``task_id`` that it does not follow, as Airflow's
    ``SkipMixin.skip_all_except``; returns the changed task instances. Only tasks not started yet
    (``none``/``scheduled``) are skipped; skips then propagate by trigger rules (a join with
    ``none_failed_min_one_success`` still runs)."""
    followed = set(follow)
    chosen = ", ".join(sorted(followed)) or "none"
    out: dict[str, TaskInstance] = {}
    for down in dag.downstream[task_id]:
        ti = tis.get(down) or TaskInstance(down)
        if down not in followed and ti.state in (S.NONE, S.SCHEDULED):
            out[down] = replace(ti, state=S.SKIPPED, start_date=now, end_date=now,
                                reason=f"skipped: branch {task_id} followed {chosen}")
    return out


@dataclass(frozen=True)
class ClearResult:
    """What :func:`clear` or :func:`mark` changed: the run (reopened when it was finished), the changed task
    instances, and tries to stop. ``task_ids``: the tasks acted on, for messages."""

    run: DagRun
    updates: Mapping[str, TaskInstance]
    kills: tuple[KillTry, ...]
    task_ids: tuple[str, ...]


def _closure(dag: DAG, start: Iterable[str], edges: Mapping[str, Iterable[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(start)
    while stack:
        t = stack.pop()
        for n in edges[t]:
            if n not in seen:
                seen.add(n)
                stack.append(n)
    return seen


def select_tasks(dag: DAG, task_ids: Iterable[str], *, upstream: bool = False, downstream: bool = False) -> tuple[str, ...]:
    """The tasks named (all when none is), with every upstream and/or downstream task, in topological order
    (Airflow's ``dag.partial_subset(task_ids, include_upstream, include_downstream)``).

    Raises:
        ValueError: naming tasks that are not in the DAG.
    """
    names = list(task_ids)
    unknown = [t for t in names if t not in dag.tasks]
    if unknown:
        raise ValueError(f"no task {', '.join(map(repr, unknown))} in DAG {dag.dag_id} (tasks: {', '.join(dag.tasks)})")
    chosen = set(names) if names else set(dag.tasks)
    if downstream:
        chosen |= _closure(dag, list(chosen), dag.downstream)
    if upstream:
        chosen |= _closure(dag, list(chosen), {t: task.upstream for t, task in dag.tasks.items()})
    return tuple(t for t in dag.tasks if t in chosen)


def clear(
    dag: DAG,
    run: DagRun,
    tis: Mapping[str, TaskInstance],
    task_ids: Iterable[str],
    *,
    upstream: bool = False,
    downstream: bool = False,
    only_failed: bool = False,
    now: datetime,
) -> ClearResult:
    """Reset task instances so they run again, as Airflow 2.10's ``airflow tasks clear`` (``clear_task_instances``).

    The selected tasks (:func:`select_tasks`; with ``only_failed`` only those ``failed`` or
    ``upstream_failed``) go back to ``none`` keeping their try number, so the next try is numbered after
    the last, and get their retries again (``max_tries = try_number + retries``); a running or queued try
    is stopped first. A finished run is reopened (``queued``, start and end dates cleared, as Airflow's
    ``clear_task_instances`` with ``dag_run_state=QUEUED``), so it is scheduled again.

    Raises:
        ValueError: naming unknown tasks.
    """
    selected = select_tasks(dag, task_ids, upstream=upstream, downstream=downstream)
    failed = (S.FAILED, S.UPSTREAM_FAILED)
    updates: dict[str, TaskInstance] = {}
    kills: list[KillTry] = []
    for task_id in selected:
        ti = tis.get(task_id) or TaskInstance(task_id)
        if only_failed and ti.state not in failed:
            continue
        if ti.state in ACTIVE_STATES:
            kills.append(KillTry(task_id, ti.try_number, "cleared"))
        updates[task_id] = replace(
            ti, state=S.NONE, start_date=None, end_date=None, next_retry_at=None, exit_code=None,
            reason="cleared", max_tries=ti.try_number + dag.tasks[task_id].retries,
        )
    new_run = run
    if updates and run.finished:
        new_run = replace(run, state=DagRunState.QUEUED, start_date=None, end_date=None, reason=None)
    return ClearResult(new_run, updates, tuple(kills), tuple(updates))


def mark(
    dag: DAG,
    run: DagRun,
    tis: Mapping[str, TaskInstance],
    task_ids: Iterable[str],
    state: TaskInstanceState,
    *,
    now: datetime,
) -> ClearResult:
    """Set task instances to ``success``, ``failed`` or ``skipped``, as Airflow's "mark success/failed"
    (``airflow tasks ... set_state``): a running try is stopped first. The run's state then follows from
    the engine's next pass; a finished run is reopened (``running``) so that it is re-evaluated, as Airflow
    does when a task of a finished run is marked.

    Raises:
        ValueError: naming unknown tasks, or for a state other than success, failed, skipped.
    """
    if state not in (S.SUCCESS, S.FAILED, S.SKIPPED):
        raise ValueError(f"a task can be marked success, failed or skipped, not {state}")
    selected = select_tasks(dag, task_ids) if list(task_ids) else ()
    updates: dict[str, TaskInstance] = {}
    kills: list[KillTry] = []
    for task_id in selected:
        ti = tis.get(task_id) or TaskInstance(task_id)
        if ti.state == state:
            continue
        if ti.state in ACTIVE_STATES:
            kills.append(KillTry(task_id, ti.try_number, f"marked {state}"))
        updates[task_id] = replace(ti, state=state, start_date=ti.start_date or now, end_date=now,
                                   next_retry_at=None, reason=f"marked {state} by a user")
    new_run = run
    if updates and run.finished:
        new_run = replace(run, state=DagRunState.RUNNING, end_date=None, reason=None)
    return ClearResult(new_run, updates, tuple(kills), tuple(updates))

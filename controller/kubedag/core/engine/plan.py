"""The scheduler's decision step for one DAG run, as a pure function of its inputs.

:func:`plan` is level-triggered: it looks only at the DAG, the run, its task instances and ``now``,
so applying its result and calling it again with the same ``now`` returns an idle plan (a fixed
point). It mirrors one pass of Airflow 2.10's scheduler over a run: ``DagRun.update_state`` /
``task_instance_scheduling_decisions`` (``airflow/models/dagrun.py``) for trigger rules, removed
tasks and the run's final state, ``DagRun.schedule_tis`` for try numbers, and the task runner's
``execution_timeout``. Unlike Airflow, which needs one scheduler loop per level, a failure or skip
cascades down the whole DAG in one call (one pass in topological order).

:func:`apply_outcome` and :func:`mark_running` are the state-machine steps for the executor's
reports. Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from types import MappingProxyType

from kubedag.core.engine.model import DagRun, KillTry, Plan, StartTry, TaskInstance
from kubedag.core.engine.retry import can_retry, next_retry_at
from kubedag.core.engine.trigger_rules import evaluate, summarize
from kubedag.core.spec.dag import DAG
from kubedag.core.states import UNFINISHED_STATES, DagRunState, TaskInstanceState

S = TaskInstanceState

SCHEDULABLE_STATES = frozenset({S.NONE, S.SCHEDULED, S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE})
"""States from which :func:`plan` may start a try (Airflow's ``SCHEDULEABLE_STATES`` plus ``scheduled``)."""

ACTIVE_STATES = frozenset({S.QUEUED, S.RUNNING})
"""States that take a ``max_active_tasks`` slot."""

FAILED_STATES = frozenset({S.FAILED, S.UPSTREAM_FAILED})
"""Airflow's ``State.failed_states``: a leaf in one of these fails the run."""

SUCCESS_STATES = frozenset({S.SUCCESS, S.SKIPPED})
"""Airflow's ``State.success_states``: the run succeeds when every leaf is in one of these."""


EMPTY_REASON = "kind: empty: succeeded without a process or pod"
"""The reason of a ``kind: empty`` task instance set to success by :func:`plan`."""


def format_duration(value: timedelta) -> str:
    """A duration as a user reads it: ``30s``, ``5m``, ``1h30m``, ``1.5s``."""
    secs = value.total_seconds()
    if secs != int(secs) or secs < 0:
        return f"{secs:g}s"
    h, rest = divmod(int(secs), 3600)
    m, s = divmod(rest, 60)
    text = "".join(f"{n}{unit}" for n, unit in ((h, "h"), (m, "m"), (s, "s")) if n)
    return text or "0s"


def format_instant(value: datetime) -> str:
    """A UTC instant in ISO 8601 with a ``Z``: ``2026-01-01T00:05:00Z``."""
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")


def mark_running(ti: TaskInstance, now: datetime) -> TaskInstance:
    """The executor reports a queued try running: ``queued`` -> ``running`` with ``start_date=now``.

    Idempotent for a ``running`` task instance (returned unchanged). Raises ValueError from any
    other state (the report is stale: the try was killed, removed or already ended).
    """
    _require_aware(now)
    if ti.state == S.RUNNING:
        return ti
    if ti.state != S.QUEUED:
        raise ValueError(f"task {ti.task_id!r} is {ti.state}, not queued: cannot mark it running")
    # a queued try keeps a start date only when it is a rescheduled sensor's next poke: the date of the
    # first poke, as Airflow 2.10 restores it from the first TaskReschedule (the sensor timeout's base)
    return replace(ti, state=S.RUNNING, start_date=ti.start_date or now, end_date=None)


def apply_outcome(
    dag: DAG,
    run: DagRun,
    ti: TaskInstance,
    *,
    succeeded: bool,
    now: datetime,
    exit_code: int | None = None,
    reason: str | None = None,
) -> TaskInstance:
    """The state-machine step when try ``ti.try_number`` of a ``queued``/``running`` task ends at ``now``.

    Success -> ``success``. Failure (also an execution timeout) -> ``up_for_retry`` with
    ``next_retry_at`` from :func:`~kubedag.core.engine.retry.next_retry_at` when
    :func:`~kubedag.core.engine.retry.can_retry` (Airflow 2.10: ``retries and try_number <= max_tries``,
    i.e. ``try_number < task.max_tries``), else ``failed`` (Airflow's ``handle_failure``).
    ``end_date`` is ``now`` (the base of the retry delay, as Airflow's ``ti.end_date = utcnow()``);
    ``reason`` defaults to ``"exit code N"`` on a failure with an exit code.

    Raises:
        ValueError: if the task is not in ``dag`` or ``ti`` is not queued or running (a stale report).
    """
    _require_aware(now)
    task = dag.tasks.get(ti.task_id)
    if task is None:
        raise ValueError(f"task {ti.task_id!r} is not in DAG {dag.dag_id!r}")
    if ti.state not in ACTIVE_STATES:
        raise ValueError(f"task {ti.task_id!r} is {ti.state}, not queued or running: stale outcome")
    if reason is None and not succeeded and exit_code is not None:
        reason = f"exit code {exit_code}"
    done = replace(ti, start_date=ti.start_date or now, end_date=now, exit_code=exit_code, reason=reason)
    if succeeded:
        return replace(done, state=S.SUCCESS, next_retry_at=None)
    if can_retry(task, ti.try_number, ti.max_tries):
        due = next_retry_at(
            task,
            dag_id=run.dag_id,
            task_id=ti.task_id,
            logical_date=run.logical_date,
            try_number=ti.try_number,
            end_date=now,
        )
        return replace(done, state=S.UP_FOR_RETRY, next_retry_at=due)
    return replace(done, state=S.FAILED, next_retry_at=None)


def plan(
    dag: DAG,
    run: DagRun,
    tis: Mapping[str, TaskInstance],
    now: datetime,
    *,
    free_slots: int | None = None,
    pool_free: Mapping[str, int] | None = None,
) -> Plan:
    """Decide what to do for ``run`` at ``now``, given its task instances ``tis`` (task_id -> TI).

    In order: a task of ``dag`` without a TI gets one in ``none``; a TI whose task is not in ``dag``
    becomes ``removed`` (and its try is killed if queued/running; a ``removed`` TI whose task is in
    ``dag`` stays removed: restoring it is the caller's decision, as Airflow's ``verify_integrity``);
    a running try past ``task.execution_timeout`` (``now - start_date >= timeout``) is killed and
    failed via :func:`apply_outcome`. Then, in topological order, each task in ``none``,
    ``scheduled``, ``up_for_retry`` or ``up_for_reschedule`` has its trigger rule evaluated on its
    direct upstream states: when the rule can never pass it is set ``upstream_failed``/``skipped``;
    when it passes, and any retry/reschedule is due (``next_retry_at <= now``), and fewer than
    ``dag.max_active_tasks`` TIs of this run are queued/running, and fewer than ``free_slots``
    (when given: the executor's free parallelism) tries were started by this plan, a try is
    started: ``try_number + 1`` (Airflow 2.10's ``schedule_tis``; unchanged for
    ``up_for_reschedule``, whose first poke's ``start_date`` is kept), state ``queued``. A ready ``kind: empty``
    task is not started but set ``success`` at once (``try_number + 1``, start and end ``now``), taking no
    ``max_active_tasks`` slot, executor slot or pool slot, as Airflow 2.10's ``DagRun.schedule_tis`` does for an
    ``EmptyOperator`` (its downstream tasks are decided in the same call). Ready tasks
    start in decreasing :attr:`~kubedag.core.spec.dag.DAG.priority_weights` (Airflow's ``priority_weight``
    with its ``weight_rule``), ties in topological order. ``pool_free`` (when given: pool name -> slots
    free across every run, as Airflow's ``Pool.open_slots``): a try takes ``task.pool_slots`` of its
    pool and waits while they are not free; a pool missing from ``pool_free`` does not exist and its
    tasks wait. A sensor's running try is governed by its sensor ``timeout``, not ``executionTimeout``.
    ``dag.dagrun_timeout``: a running run that has run that long fails with reason ``timed_out``, its
    unfinished task instances ``skipped`` and its tries killed (Airflow's ``SchedulerJobRunner._schedule_dag_run``).
    Finally the run (``queued`` -> ``running`` with ``start_date=now``) gets its state from Airflow's
    ``DagRun.update_state``; a finished run plans nothing. Pass the free slots left after applying a
    plan for the next call to be idle.
    """
    _require_aware(now)
    if run.finished:
        return Plan(MappingProxyType({}), (), (), run, MappingProxyType({}), None)
    for key, ti in tis.items():
        if key != ti.task_id:
            raise ValueError(f"tis[{key!r}] holds task instance {ti.task_id!r}")
    current: dict[str, TaskInstance] = dict(tis)
    updates: dict[str, TaskInstance] = {}
    kills: list[KillTry] = []

    def put(ti: TaskInstance) -> None:
        current[ti.task_id] = updates[ti.task_id] = ti

    for task_id, ti in tis.items():  # task_instance_scheduling_decisions: _filter_tis_and_exclude_removed
        if task_id not in dag.tasks and ti.state != S.REMOVED:
            if ti.state in ACTIVE_STATES:
                kills.append(KillTry(task_id, ti.try_number, "task removed from the DAG"))
            put(replace(ti, state=S.REMOVED, reason="task removed from the DAG"))
    for task_id, task in dag.tasks.items():
        ti = current.get(task_id)
        if ti is None:  # DagRun.verify_integrity creates the missing TIs with state None
            put(TaskInstance(task_id))
        elif (
            ti.state == S.RUNNING
            and task.sensor is None
            and task.execution_timeout is not None
            and ti.start_date is not None
            and now - ti.start_date >= task.execution_timeout
        ):
            reason = f"execution timeout after {format_duration(task.execution_timeout)}"
            kills.append(KillTry(task_id, ti.try_number, reason))
            put(apply_outcome(dag, run, ti, succeeded=False, now=now, reason=reason))

    if _timed_out(dag, run, now):
        return _time_out(dag, run, current, updates, kills, now)

    active = sum(1 for t in dag.tasks if current[t].state in ACTIVE_STATES)
    starts: list[StartTry] = []
    waiting: dict[str, tuple[str, ...]] = {}
    ready: list[str] = []
    runnable = active > 0  # DagRun._are_premature_tis: some unfinished TI has its deps met
    for task_id, task in dag.tasks.items():
        ti = current[task_id]
        if ti.state not in SCHEDULABLE_STATES:
            continue
        result = evaluate(task.trigger_rule, summarize(current[u].state for u in task.upstream))
        if not result.passed:
            if result.new_state is not None:  # TaskInstance.set_state: start/end date default to now
                put(
                    replace(
                        ti,
                        state=result.new_state,
                        reason=f"{result.new_state}: {result.reason}",
                        start_date=ti.start_date or now,
                        end_date=ti.end_date or now,
                        next_retry_at=None,
                    )
                )
            else:
                waiting[task_id] = (result.reason,)
            continue
        runnable = True
        if task.empty:  # DagRun.schedule_tis: an EmptyOperator's TI is set to success directly, never queued
            put(replace(ti, state=S.SUCCESS, try_number=ti.try_number + 1, start_date=now, end_date=now,
                        next_retry_at=None, exit_code=None, reason=EMPTY_REASON))
            continue
        if ti.state in (S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE) and ti.next_retry_at and ti.next_retry_at > now:
            what = "retry" if ti.state == S.UP_FOR_RETRY else "reschedule"
            waiting[task_id] = (f"{what} at {format_instant(ti.next_retry_at)}",)
        else:
            ready.append(task_id)

    # SchedulerJobRunner._executable_task_instances_to_queued: by priority, within the pools' open slots
    order = {t: i for i, t in enumerate(dag.tasks)}
    weights = dag.priority_weights
    pools = dict(pool_free) if pool_free is not None else None
    for task_id in sorted(ready, key=lambda t: (-weights[t], order[t])):
        task, ti = dag.tasks[task_id], current[task_id]
        if active >= dag.max_active_tasks:
            waiting[task_id] = (f"max_active_tasks {dag.max_active_tasks} reached",)
            continue
        if free_slots is not None and len(starts) >= free_slots:
            waiting[task_id] = (f"no free executor slot ({free_slots} free at planning)",)
            continue
        if pools is not None:
            if task.pool not in pools:
                waiting[task_id] = (f"pool {task.pool} does not exist",)
                continue
            if pools[task.pool] < task.pool_slots:
                waiting[task_id] = (f"pool {task.pool}: {max(0, pools[task.pool])} open slots, {task.pool_slots} needed",)
                continue
            pools[task.pool] -= task.pool_slots
        rescheduled = ti.state == S.UP_FOR_RESCHEDULE
        try_number = ti.try_number if rescheduled else ti.try_number + 1
        put(
            replace(
                ti,
                state=S.QUEUED,
                try_number=try_number,
                start_date=ti.start_date if rescheduled else None,
                end_date=None,
                next_retry_at=None,
                reason=None,
                exit_code=None,
            )
        )
        starts.append(StartTry(task_id, try_number))
        active += 1

    new_run = _run_state(dag, run, current, now, runnable, waiting)
    return Plan(
        updates=MappingProxyType(updates),
        starts=tuple(starts),
        kills=tuple(kills),
        run=new_run,
        waiting=MappingProxyType(waiting if not new_run.finished else {}),
        wake_at=None if new_run.finished else _wake_at(dag, new_run, current, now),
    )


def _timed_out(dag: DAG, run: DagRun, now: datetime) -> bool:
    """Whether a running run has exceeded ``dag.dagrun_timeout`` at ``now``."""
    return (
        dag.dagrun_timeout is not None
        and run.state == DagRunState.RUNNING
        and run.start_date is not None
        and now - run.start_date >= dag.dagrun_timeout
    )


def _time_out(
    dag: DAG,
    run: DagRun,
    current: dict[str, TaskInstance],
    updates: dict[str, TaskInstance],
    kills: list[KillTry],
    now: datetime,
) -> Plan:
    """A run past ``dagrun_timeout``: as Airflow 2.10's ``_schedule_dag_run``, unfinished task instances
    become ``skipped`` (their tries killed) and the run ``failed`` with reason ``timed_out``."""
    assert dag.dagrun_timeout is not None
    why = f"timed_out: the run exceeded dagrunTimeout {format_duration(dag.dagrun_timeout)}"
    for task_id, ti in list(current.items()):
        if ti.state in UNFINISHED_STATES:
            if ti.state in ACTIVE_STATES and not any(k.task_id == task_id for k in kills):
                kills.append(KillTry(task_id, ti.try_number, why))
            new = replace(ti, state=S.SKIPPED, reason=f"skipped: {why}", start_date=ti.start_date or now,
                          end_date=now, next_retry_at=None)
            current[task_id] = updates[task_id] = new
    new_run = replace(run, state=DagRunState.FAILED, end_date=now, reason=why)
    return Plan(MappingProxyType(updates), (), tuple(kills), new_run, MappingProxyType({}), None)


def _run_state(
    dag: DAG,
    run: DagRun,
    current: Mapping[str, TaskInstance],
    now: datetime,
    runnable: bool,
    waiting: Mapping[str, tuple[str, ...]],
) -> DagRun:
    """The run's new state, as Airflow 2.10's ``DagRun.update_state`` after this plan's changes."""
    if run.state == DagRunState.QUEUED:  # SchedulerJobRunner._start_queued_dagruns
        run = replace(run, state=DagRunState.RUNNING, start_date=now, end_date=None, reason=None)
    unfinished = [t for t in dag.tasks if current[t].state in UNFINISHED_STATES]
    # _tis_for_dagrun_state: the leaves' TIs, removed ones excluded
    leaves = [current[t] for t in dag.leaves if current[t].state != S.REMOVED]
    if not unfinished and any(ti.state in FAILED_STATES for ti in leaves):
        failed = ", ".join(f"{ti.task_id} ({ti.state})" for ti in leaves if ti.state in FAILED_STATES)
        return replace(run, state=DagRunState.FAILED, end_date=now, reason=f"task_failure: leaf task {failed}")
    if not unfinished and all(ti.state in SUCCESS_STATES for ti in leaves):
        reason = "success: every leaf task succeeded or was skipped"
        return replace(run, state=DagRunState.SUCCESS, end_date=now, reason=reason)
    if unfinished and not runnable:
        stuck = "; ".join(f"{t}: {' '.join(waiting.get(t, (str(current[t].state),)))}" for t in unfinished)
        reason = f"all_tasks_deadlocked: no unfinished task can ever run ({stuck})"
        return replace(run, state=DagRunState.FAILED, end_date=now, reason=reason)
    return run


def _wake_at(dag: DAG, run: DagRun, current: Mapping[str, TaskInstance], now: datetime) -> datetime | None:
    """The earliest instant after ``now`` at which a retry/reschedule falls due, a running try times out or
    the run reaches its ``dagrun_timeout``."""
    times: list[datetime] = []
    for task_id, task in dag.tasks.items():
        ti = current[task_id]
        if ti.state in (S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE) and ti.next_retry_at and ti.next_retry_at > now:
            times.append(ti.next_retry_at)
        elif ti.state == S.RUNNING and task.sensor is None and task.execution_timeout is not None and ti.start_date is not None:
            times.append(ti.start_date + task.execution_timeout)
    if dag.dagrun_timeout is not None and run.start_date is not None:
        times.append(run.start_date + dag.dagrun_timeout)
    return min(times, default=None)

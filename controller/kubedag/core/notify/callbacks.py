"""What to notify, decided from state transitions: :func:`task_notifications` (Airflow's task
``on_failure_callback``, ``on_success_callback``, ``on_retry_callback``), :func:`run_notifications` (the DAG's
``on_failure_callback`` / ``on_success_callback``) and :func:`sla_misses` / :func:`next_sla_check` (Airflow 2's
task ``sla`` and the DAG's ``sla_miss_callback``). Pure: no I/O, no clock ("now" is passed in).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import replace
from datetime import datetime, timedelta

from kubedag.core.engine.model import DagRun, TaskInstance
from kubedag.core.engine.plan import format_duration, format_instant
from kubedag.core.notify.messages import Event, Notification, tail
from kubedag.core.spec.dag import DAG
from kubedag.core.spec.models import Notifier
from kubedag.core.states import DagRunState, RunType, TaskInstanceState
from kubedag.core.tries import TryRecord

S = TaskInstanceState
SLA_MET_STATES = frozenset({S.SUCCESS, S.SKIPPED})
"""A task instance in one of these states by its deadline met its SLA (Airflow 2's ``manage_slas`` query)."""

SLA_RUN_TYPES = frozenset({RunType.SCHEDULED})
"""Runs whose SLAs are checked. Airflow 2: "Manually-triggered tasks and tasks in event-driven DAGs will not
be checked for an SLA miss" (core-concepts/tasks.rst); backfills cover past intervals, whose deadlines have
passed before they start, and Airflow's ``manage_slas`` only looks at intervals after the latest success."""


_TASK_EVENTS: dict[TaskInstanceState, tuple[Event, str]] = {
    S.FAILED: ("task_failure", "on_failure"),
    S.SUCCESS: ("task_success", "on_success"),
    S.UP_FOR_RETRY: ("task_retry", "on_retry"),
}


def task_notifications(
    dag: DAG,
    run: DagRun,
    before: TaskInstance | None,
    after: TaskInstance,
    *,
    log: str | Callable[[], str | None] | None = None,
) -> list[tuple[Notifier, Notification]]:
    """What to notify for a task instance that changed from ``before`` (None: new) to ``after``.

    As Airflow 2.10's task callbacks: entering ``failed`` -> ``task_failure`` to the task's ``onFailure``
    (``on_failure_callback``, called by ``TaskInstance.handle_failure`` when no retry is left, also after an
    execution timeout, or when a running try is marked failed); entering ``up_for_retry`` -> ``task_retry`` to
    ``onRetry`` (``on_retry_callback``; a failure that is retried calls no failure callback); entering ``success``
    -> ``task_success`` to ``onSuccess``. Nothing for ``upstream_failed`` (set by the scheduler's trigger-rule
    check, which calls no callback), ``skipped``, ``removed`` or any other state. "Entering" means the state
    differs from ``before``'s, or is the same for a later try (a retry that ended the same way between two
    observations). Each returned pair is one notifier of the task (from ``defaults`` when the task sets none)
    with the notification, in the manifest's order; [] when the task has no notifier for the event or is no
    longer in ``dag``.

    ``log``: the try's log, or a callable returning it, called only when a ``task_failure`` or ``task_retry`` is
    returned; its :func:`tail` becomes ``log_tail`` (success notifications carry none).
    """
    entry = _TASK_EVENTS.get(after.state)
    task = dag.tasks.get(after.task_id)
    if entry is None or task is None:
        return []
    if before is not None and before.state == after.state and before.try_number == after.try_number:
        return []
    event, attr = entry
    notifiers: tuple[Notifier, ...] = getattr(task, attr)
    if not notifiers:
        return []
    log_tail = None
    if event != "task_success" and log is not None:
        log_tail = tail(log() if callable(log) else log)
    n = Notification(
        event=event,
        dag_id=run.dag_id,
        run_id=run.run_id,
        logical_date=run.logical_date,
        task_id=after.task_id,
        try_number=after.try_number,
        state=str(after.state),
        reason=after.reason,
        log_tail=log_tail,
    )
    return [(notifier, n) for notifier in notifiers]


def task_transitions(
    before: Mapping[str, TaskInstance],
    after: Mapping[str, TaskInstance],
    tries: Iterable[TryRecord],
) -> list[tuple[TaskInstance | None, TaskInstance]]:
    """The ``(before, after)`` transitions to give :func:`task_notifications` for one step (a run pass) that took
    task instances from ``before`` to ``after`` (task_id -> task instance; one that is the same object in both is
    skipped) and recorded ``tries`` (the pass's try history rows).

    Usually one pair per changed task instance. A try that failed and was retried within the step (failed ->
    up_for_retry -> queued, with ``retryDelay: 0s``) adds a pair first: into ``up_for_retry`` for that failed try
    (its number, reason and end date from its try record), so ``onRetry`` fires for every retried try, as Airflow
    2.10's ``handle_failure`` calls ``on_retry_callback`` for each one. Used by both executors.
    """
    out: list[tuple[TaskInstance | None, TaskInstance]] = []
    records = list(tries)
    for task_id, ti in after.items():
        was = before.get(task_id)
        if was is ti:
            continue
        retried = [t for t in records if t.task_id == task_id and t.state == S.FAILED and ti.try_number > t.try_number]
        if retried and was is not None and was.state != S.UP_FOR_RETRY:
            end = retried[-1]
            mid = replace(was, state=S.UP_FOR_RETRY, try_number=end.try_number, reason=end.reason,
                          end_date=end.end_date)
            out.append((was, mid))
            was = mid
        out.append((was, ti))
    return out


def run_notifications(dag: DAG, before_run: DagRun | None, after_run: DagRun) -> list[tuple[Notifier, Notification]]:
    """What to notify for a run that changed from ``before_run`` (None: new) to ``after_run``.

    As Airflow 2.10's ``DagRun.update_state`` / ``_schedule_dag_run``: a run entering ``failed`` (a leaf failed,
    ``all_tasks_deadlocked``, or ``dagrun_timeout``) -> ``dag_failure`` to the DAG's ``onFailure``
    (``on_failure_callback``); entering ``success`` -> ``dag_success`` to ``onSuccess``. The run's ``reason``
    (Airflow's callback message) is the notification's. [] when the run did not just finish or the DAG has no
    notifier for it.
    """
    if not after_run.finished or (before_run is not None and before_run.state == after_run.state):
        return []
    if after_run.state == DagRunState.FAILED:
        event: Event = "dag_failure"
        notifiers = dag.on_failure
    else:
        event, notifiers = "dag_success", dag.on_success
    if not notifiers:
        return []
    n = Notification(
        event=event,
        dag_id=after_run.dag_id,
        run_id=after_run.run_id,
        logical_date=after_run.logical_date,
        state=str(after_run.state),
        reason=after_run.reason,
    )
    return [(notifier, n) for notifier in notifiers]


def sla_deadline(run: DagRun, sla: timedelta) -> datetime:
    """When a task of ``run`` with ``sla`` (a timedelta) must have succeeded: ``run.data_interval_end + sla``.

    Airflow 2 measures an SLA from the end of the run's schedule interval (``manage_slas`` compares the
    following schedule's logical date, i.e. this run's ``data_interval_end``, plus ``task.sla`` with now).
    """
    return run.data_interval_end + sla


def _sla_met(ti: TaskInstance | None, deadline: datetime) -> bool:
    return (
        ti is not None
        and ti.state in SLA_MET_STATES
        and (ti.end_date is None or ti.end_date <= deadline)
    )


def sla_misses(
    dag: DAG,
    run: DagRun,
    tis: Mapping[str, TaskInstance],
    now: datetime,
    already: AbstractSet[str] = frozenset(),
) -> list[tuple[str, Notification]]:
    """The tasks of ``run`` that missed their ``sla`` by ``now`` and were not reported yet, in DAG order.

    ``tis``: task_id -> task instance (a task without one has not started). A task with an ``sla`` misses it
    when ``now >= deadline`` (see :func:`sla_deadline`) and it did not reach ``success`` or ``skipped`` by the
    deadline: still unfinished, failed, upstream_failed, or succeeded after it (judged by ``end_date``, so a
    check that runs late still reports it). Tasks in ``already`` (the task ids reported for this run; this
    function does not change it) are skipped, so each task is reported once per run; add the returned ids to
    it. Only scheduled runs are checked (:data:`SLA_RUN_TYPES`). Each pair is ``(task_id, sla_miss
    notification)``; send it to the DAG's ``onSlaMiss`` (Airflow's ``sla_miss_callback``), and record the
    miss even when the DAG has no notifier. Tasks over their SLA keep running, as in Airflow.

    Raises:
        ValueError: if ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    if run.run_type not in SLA_RUN_TYPES:
        return []
    out: list[tuple[str, Notification]] = []
    for task_id, task in dag.tasks.items():
        if task.sla is None or task_id in already:
            continue
        deadline = sla_deadline(run, task.sla)
        ti = tis.get(task_id)
        if now < deadline or _sla_met(ti, deadline):
            continue
        state = str(ti.state) if ti is not None else str(S.NONE)
        if ti is not None and ti.state in SLA_MET_STATES:
            how = f"{state} at {format_instant(ti.end_date)}" if ti.end_date else state
        else:
            how = f"still {state}" if ti is None or not ti.state.finished else state
        reason = (
            f"missed its SLA of {format_duration(task.sla)} after the data interval's end: "
            f"due by {format_instant(deadline)}, {how}"
        )
        out.append(
            (
                task_id,
                Notification(
                    event="sla_miss",
                    dag_id=run.dag_id,
                    run_id=run.run_id,
                    logical_date=run.logical_date,
                    task_id=task_id,
                    try_number=ti.try_number if ti is not None else 0,
                    state=state,
                    reason=reason,
                ),
            )
        )
    return out


def next_sla_check(
    dag: DAG,
    run: DagRun,
    tis: Mapping[str, TaskInstance],
    now: datetime,
    already: AbstractSet[str] = frozenset(),
) -> datetime | None:
    """The earliest future instant (> ``now``) at which :func:`sla_misses` may report a miss for ``run``.

    The nearest deadline of a task with an ``sla`` that has not met it yet and is not in ``already``; None when
    there is none (no ``sla``, every one met or reported, or a run type not checked). Deadlines at or before
    ``now`` are :func:`sla_misses`'s at ``now``: call it first. A finished run may still miss an SLA later (a
    failed task never succeeds), so keep the timer after the run ends until this returns None; recompute it
    whenever a task instance changes.

    Raises:
        ValueError: if ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    if run.run_type not in SLA_RUN_TYPES:
        return None
    deadlines = [
        deadline
        for task_id, task in dag.tasks.items()
        if task.sla is not None and task_id not in already
        for deadline in (sla_deadline(run, task.sla),)
        if deadline > now and not _sla_met(tis.get(task_id), deadline)
    ]
    return min(deadlines, default=None)

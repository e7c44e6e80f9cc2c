"""The run reconcile: a function from a run's observed state to a plan, controller-runtime style.

:func:`reconcile_run` takes what is known of one DAG run (its :class:`RunMemory`, an immutable value), what the
executor observes of its tries (:class:`kubedag.core.runpass.TryObservation` by ``(task_id, try_number)``), the
actions to apply (a DAGRun's ``spec.actions``), the verdicts on in-process tasks, the open pool slots and now,
and returns a :class:`RunPlan`: the tries to launch and stop, the DB write of the pass, events, notifications,
the next memory and when to look again. It calls :func:`kubedag.core.runpass.run_pass`, the one run pass of
both executors, and does no I/O.

A run has one writer: the worker that holds its key. It carries the plan out (launches first: the latency that
matters; then the DB write), and keeps :attr:`RunPlan.memory` (with :func:`after_launches`) only once the write
landed (other runs may count its slots from the plan meanwhile). A write that fails leaves the memory as it was,
so the next pass, retried with backoff, computes the same transitions again from what it observes: nothing is
lost and no dirty flag is needed. A launch that fails does not stop the write (issue 13: a pass never gives up
its changes because one API call failed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from kubedag.app.actions import Event, Stop, apply_actions
from kubedag.app.memory import RunMemory, open_memory
from kubedag.app.ports import PassWrite, TryKey
from kubedag.core import engine, notify, runpass
from kubedag.core.spec.dag import DAG
from kubedag.core.states import DagRunState
from kubedag.core.states import TaskInstanceState as S
from kubedag.core.tries import TryRecord, masked_rendered

FINISHED = (DagRunState.SUCCESS, DagRunState.FAILED)


@dataclass(frozen=True)
class Launch:
    """A try's pod or process to create: the rendered request and its poke number."""

    request: runpass.LaunchRequest
    poke: int


@dataclass(frozen=True)
class Result:
    """What a reconcile asks of its work queue (controller-runtime's ``reconcile.Result``): ``requeue_after``
    seconds (None: only when something changes). An exception raised instead is retried with backoff."""

    requeue_after: float | None = None


@dataclass(frozen=True)
class RunPlan:
    """What :func:`reconcile_run` decided (see the module docstring for how it is carried out).

    ``memory``: the next memory, to keep once ``write`` landed (then :func:`after_launches`). ``launches`` and
    ``stops``: tries to create and stop. ``write``: the pass's DB write (None: nothing to write). ``events``:
    about the run. ``notifications``: ``(notifier, Notification)`` to send. ``failure_notices``: ``(before,
    after)`` task instances whose failure or retry notification carries the try's log tail (the caller reads the
    log, then calls :func:`kubedag.core.notify.task_notifications`). ``finished``: ``(task_id, try_number, poke)`` of
    tries that ended (their logs are to be archived). ``archived``: tries whose log ``write`` archives.
    ``wake_at``: when time alone changes the next pass. ``pools_touched``/``pools_freed``: pools whose usage
    changed / that freed slots. ``was``: the run's state before the pass.
    """

    memory: RunMemory
    was: DagRunState
    launches: tuple[Launch, ...] = ()
    stops: tuple[Stop, ...] = ()
    write: PassWrite | None = None
    events: tuple[Event, ...] = ()
    notifications: tuple[tuple[Any, Any], ...] = ()
    failure_notices: tuple[tuple[engine.TaskInstance | None, engine.TaskInstance], ...] = ()
    finished: tuple[tuple[str, int, int], ...] = ()
    archived: tuple[TryKey, ...] = ()
    wake_at: datetime | None = None
    pools_touched: frozenset[str] = frozenset()
    pools_freed: frozenset[str] = frozenset()

    @property
    def phase_changed(self) -> bool:
        """True when the run changed state in this pass."""
        return self.memory.run.state != self.was


def reconcile_run(
    dag: DAG,
    memory: RunMemory,
    observed: Mapping[TryKey, runpass.TryObservation],
    now: datetime,
    *,
    pod_name: Callable[[str, int, int], str],
    actions: Sequence[Mapping[str, Any]] = (),
    may_start: bool = True,
    free_slots: int | None = None,
    pool_free: Mapping[str, int] | None = None,
    pool_slots: Mapping[str, int] | None = None,
    inputs: runpass.RenderInputs | None = None,
    checks: Mapping[str, runpass.ControllerCheck] | None = None,
    logs: Mapping[TryKey, str | None] | None = None,
    lost: Callable[[str], str] | None = None,
    mask: Callable[[str], str] | None = None,
) -> RunPlan:
    """One pass over a DAG run at ``now`` (UTC-aware); pure.

    ``pod_name(task_id, try_number, poke)`` names a try's pod or process. ``actions``: the run's ``spec.actions``
    (clear/mark, applied once each by id, as :func:`kubedag.app.actions.apply_actions`). ``may_start``,
    ``free_slots``, ``pool_free``, ``inputs``, ``checks``, ``pool_slots``: as :func:`kubedag.core.runpass.run_pass` takes them.
    ``logs``: fetched logs of finished tries to archive in this pass's write (None as a value: the log is gone,
    the try counts as archived); a try that failed with no pod (a template error, a pod the API server refused)
    gets a one-line log saying why (``[<now, ISO 8601>] kubedag: ERROR <reason>``), as its local log would. ``lost(pod_name)``: the reason of a launched try that vanished. ``mask``: hides
    secret values in reasons written to the DB.
    """
    was = memory.run.state
    before_run, before_tis = memory.run, dict(memory.tis)
    applied = apply_actions(dag, memory, actions, now)
    memory = applied.memory

    def name_of(task_id: str, try_number: int) -> str:
        return pod_name(task_id, try_number, memory.poke(task_id, try_number))

    seen = dict(observed)
    for (task_id, try_number), why in memory.rejected.items():
        seen.setdefault((task_id, try_number), runpass.TryObservation("failed", reason=why))
    result = runpass.run_pass(
        dag, memory.run, memory.tis, seen, memory.launched, now, may_start=may_start, free_slots=free_slots,
        name_of=name_of, lost=(lambda t, n: lost(name_of(t, n))) if lost is not None else None,
        pool_free=pool_free, inputs=inputs, checks=checks, pool_slots=pool_slots,
    )
    pokes, launched = dict(memory.pokes), dict(memory.launched)
    archived, rejected = set(memory.archived), dict(memory.rejected)
    xcoms = dict(memory.xcoms)
    for (task_id, _try), values in result.xcoms.items():
        for key, value in values.items():
            xcoms[(task_id, key)] = value
    for key in result.finished:
        rejected.pop(key, None)
    finished = tuple((t, n, memory.poke(t, n)) for t, n in result.finished)
    stops = [Stop(k.task_id, k.try_number, memory.poke(k.task_id, k.try_number), k.reason) for k in result.kill]
    stops += applied.stops
    launches = []
    for req in result.create:
        if not req.new_poke and before_tis.get(req.task_id, engine.TaskInstance(req.task_id)).try_number != req.try_number:
            pokes.pop(req.task_id, None)  # a new try starts at poke 0
        if req.new_poke:  # the next poke of a rescheduled sensor: a new pod of the same try
            pokes[req.task_id] = pokes.get(req.task_id, 0) + 1
            launched.pop(req.task_id, None)
            archived.discard((req.task_id, req.try_number))
        launches.append(Launch(req, pokes.get(req.task_id, 0)))
    logs = dict(logs or {})
    for record in result.tries:  # failed with no pod (a template error, a refused pod): its log says why, as locally
        key = (record.task_id, record.try_number)
        if record.state == S.FAILED and key not in observed and memory.launched.get(record.task_id) != record.try_number:
            reason = mask(record.reason) if mask is not None and record.reason else record.reason
            logs.setdefault(key, f"[{now.isoformat()}] kubedag: ERROR {reason}\n")
    archived |= set(logs)
    checks_kept = dict(memory.checks)
    for task_id, check in (checks or {}).items():
        ti = result.tis.get(task_id)
        checks_kept[task_id] = (ti.try_number if ti is not None else 0, check)
    pool_blocked = frozenset(dag.tasks[t].pool for t, why in result.waiting.items()
                             if t in dag.tasks and why and why[0].startswith("pool "))
    sla_events, sla_notes, reported, sla_wake = _sla(dag, result.run, result.tis, now, memory.sla_reported)
    new = replace(memory, run=result.run, tis=result.tis, launched=launched, pokes=pokes, xcoms=xcoms,
                  archived=frozenset(archived), rejected=rejected, checks=checks_kept, sla_reported=reported,
                  pool_blocked=pool_blocked)
    changed = {**applied.changed, **result.changed}
    tries = [*applied.tries, *result.tries]
    if mask is not None:
        changed = {t: replace(ti, reason=mask(ti.reason)) if ti.reason else ti for t, ti in changed.items()}
        tries = [replace(r, reason=mask(r.reason)) if r.reason else r for r in tries]
    rendered = {(r.task_id, r.try_number): masked_rendered(r.command, r.args, r.env, mask)
                for r in (launch.request for launch in launches) if not r.new_poke}
    write = PassWrite(run=result.run, tis=tuple(changed.values()), tries=tuple(tries), xcoms=dict(result.xcoms),
                      cleared=applied.cleared, logs={k: v for k, v in logs.items() if v is not None}, rendered=rendered)
    if write.empty and result.run.state == was and result.run == before_run:
        write = None
    notifications, notices = _notifications(dag, before_run, result.run, before_tis, result.tis, tries)
    touched, freed = _pool_changes(dag, before_tis, result.tis)
    events = [*applied.events, *_phase_events(was, result.run), *sla_events]
    wake = [t for t in (result.wake_at, sla_wake) if t is not None]
    if rejected:
        wake.append(now)
    return RunPlan(
        memory=new, was=was, launches=tuple(launches), stops=tuple(stops), write=write, events=tuple(events),
        notifications=(*notifications, *sla_notes), failure_notices=notices, finished=finished,
        archived=tuple(logs), wake_at=min(wake, default=None), pools_touched=touched, pools_freed=freed,
    )


def after_launches(memory: RunMemory, created: Sequence[TryKey], rejected: Mapping[TryKey, str]) -> RunMemory:
    """The memory once launches were tried: ``created`` tries are launched (a pod that already existed counts),
    ``rejected`` ones (the API server refused the pod: a 4xx) fail in the next pass with that reason."""
    if not created and not rejected:
        return memory
    launched = dict(memory.launched)
    for task_id, try_number in created:
        launched[task_id] = try_number
    return replace(memory, launched=launched, rejected={**memory.rejected, **rejected})


def free_task_slots(dag: DAG, runs: Iterable[Mapping[str, engine.TaskInstance]]) -> int:
    """Tries of ``dag`` that may start now: ``maxActiveTasks`` less the queued and running task instances of every
    run of the DAG (``runs``: each run's task instances, the one being reconciled included), at least 0. As
    Airflow 2.10, which counts ``max_active_tasks`` per DAG across its runs."""
    return max(0, dag.max_active_tasks - sum(runpass.active_count(tis) for tis in runs))


def _phase_events(was: DagRunState, run: engine.DagRun) -> list[Event]:
    if run.state == was:
        return []
    if run.state == DagRunState.RUNNING:
        return [Event("Normal", "Started", f"run {run.run_id} started")]
    if run.state in FINISHED:
        kind = "Warning" if run.state == DagRunState.FAILED else "Normal"
        reason = "Succeeded" if run.state == DagRunState.SUCCESS else "Failed"
        return [Event(kind, reason, f"run {run.run_id} {run.state}: {run.reason or ''}"[:1024])]
    return []


def _notifications(dag: DAG, before_run: engine.DagRun, run: engine.DagRun, before: Mapping[str, engine.TaskInstance],
                   after: Mapping[str, engine.TaskInstance],
                   tries: Sequence[TryRecord]) -> tuple[list[tuple[Any, Any]], tuple[Any, ...]]:
    """Task and run notifications for what changed (as :func:`kubedag.core.notify.task_notifications`, for each
    transition :func:`kubedag.core.notify.task_transitions` derives from the pass's ``tries``: a try failed and
    retried within the pass still notifies ``onRetry``); failures and retries of tasks that ran in a pod are
    returned as notices, to be sent with their log's tail."""
    if not (dag.on_failure or dag.on_success or any(t.on_failure or t.on_success or t.on_retry for t in dag.tasks.values())):
        return [], ()
    out: list[tuple[Any, Any]] = []
    notices = []
    for old, ti in notify.task_transitions(before, after, tries):
        pairs = notify.task_notifications(dag, run, old, ti)
        if not pairs:
            continue
        if pairs[0][1].event == "task_success" or dag.tasks[ti.task_id].runs_in_controller:
            out += pairs
        else:
            notices.append((old, ti))
    out += notify.run_notifications(dag, before_run, run)
    return out, tuple(notices)


def _sla(dag: DAG, run: engine.DagRun, tis: Mapping[str, engine.TaskInstance], now: datetime,
         reported: frozenset[str]) -> tuple[list[Event], list[tuple[Any, Any]], frozenset[str], datetime | None]:
    """SLA misses of a scheduled run to report (Events and the DAG's ``onSlaMiss``), and the next check."""
    if not any(t.sla is not None for t in dag.tasks.values()):
        return [], [], reported, None
    events, notes = [], []
    done = set(reported)
    for task_id, n in notify.sla_misses(dag, run, tis, now, reported):
        done.add(task_id)
        events.append(Event("Warning", "SlaMiss", f"{task_id} {n.reason}"[:1024]))
        notes += [(notifier, n) for notifier in dag.on_sla_miss]
    return events, notes, frozenset(done), notify.next_sla_check(dag, run, tis, now, frozenset(done))


def _pool_changes(dag: DAG, before: Mapping[str, engine.TaskInstance],
                  after: Mapping[str, engine.TaskInstance]) -> tuple[frozenset[str], frozenset[str]]:
    """Pools whose usage changed (their status is to be written), and pools that freed slots (waiting runs wake)."""
    touched: set[str] = set()
    freed: set[str] = set()
    for task_id, ti in after.items():
        old = before.get(task_id)
        task = dag.tasks.get(task_id)
        if task is None or (old is not None and old.state == ti.state):
            continue
        was_active = old is not None and old.state in engine.ACTIVE_STATES
        if was_active or ti.state in engine.ACTIVE_STATES:
            touched.add(task.pool)
        if was_active and ti.state not in engine.ACTIVE_STATES:
            freed.add(task.pool)
    return frozenset(touched), frozenset(freed)


__all__ = ["Event", "Launch", "Result", "RunMemory", "RunPlan", "Stop", "after_launches", "free_task_slots", "open_memory",
           "reconcile_run"]

"""One reconcile pass of a DAG run, as a pure function: observed tries in, engine plan applied, actions out.

Both executors share it: the controller observes pods (:mod:`kubedag.k8s.observe` reads them as
:class:`TryObservation`), the local executor observes processes. The caller gathers the inputs (the run,
its task instances, what it sees of the tries in flight, the verdicts of in-process checks), calls
:func:`run_pass`, then carries out the result (launch and stop tries, write the DB, write one status). Applying
a result and calling again with the same inputs gives an idle result: the pass is level-triggered, so a
restarted controller or scheduler resumes from whatever state it finds.

What a finished try means is :func:`kubedag.core.execution.finish_try`'s: exit 0 is a success whose XCom is
the try's XCom file (a pod's termination message), a branch skips the tasks it does not follow, a sensor's
exit 75 is "not met yet" (``up_for_reschedule`` in ``reschedule`` mode, with the same try number: its next
poke is a new pod or process), exit 99 is ``skipped``. A try that was launched and then vanished (its pod
deleted by someone else, its process gone after a crash) fails with ``lost(task_id, try_number)`` as its
reason, and retries follow the task's policy, as Airflow does with zombie tasks.

Tasks that run in the controller or scheduler itself (:attr:`kubedag.core.spec.dag.Task.runs_in_controller`:
triggers and ``externalTask`` sensors) have no pod or process: the caller evaluates them before the pass and
hands the verdicts in as ``checks`` (:class:`ControllerCheck`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from kubedag.core import engine, execution, templating
from kubedag.core.spec.dag import DAG, Task
from kubedag.core.states import DagRunState, TaskInstanceState
from kubedag.core.tries import TryRecord, context_env, try_context
from kubedag.core.xcom import NO_XCOM

S = TaskInstanceState


@dataclass(frozen=True)
class TryObservation:
    """What an executor sees of one try: a pod (:func:`kubedag.k8s.observe.observe_pod`) or a local process.

    ``phase``: pending | running | succeeded | failed. Times are UTC-aware. ``exit_code``: the process's;
    ``reason``: why it failed, for the user; ``node``: the node or host it ran on.
    """

    phase: Literal["pending", "running", "succeeded", "failed"]
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None
    node: str | None = None
    message: str | None = None
    """The try's XCom file content when it ended (a pod's termination message); None without one."""
    ended_by: datetime | None = None
    """The latest instant the try can have ended, when ``finished_at`` is coarser than the real end (a pod's
    ``finishedAt`` is whole seconds); a retry delay counts from it, so it is never shorter than ``retryDelay``.
    None: ``finished_at`` is exact."""

    @property
    def finished(self) -> bool:
        """True for succeeded and failed."""
        return self.phase in ("succeeded", "failed")


@dataclass(frozen=True)
class LaunchRequest:
    """A try whose pod or process must exist: its rendered ``command``, ``args`` and ``env`` (context variables included)."""

    task_id: str
    try_number: int
    command: list[str]
    args: list[str]
    env: dict[str, str]
    new_poke: bool = False
    """True for the next poke of a rescheduled sensor: a new pod or process within the same try (the caller numbers it)."""


@dataclass(frozen=True)
class ControllerCheck:
    """The controller's verdict on a task it carries out itself (a trigger, an ``externalTask`` sensor).

    ``outcome``: ``met`` (success), ``not_met`` (keep waiting: running in ``poke`` mode and for a trigger's
    ``waitForCompletion``, ``up_for_reschedule`` in ``reschedule`` mode), ``failed`` (a failure, retried by
    the task's ``retries``), ``skipped``. ``reason``: what the controller sees, for the user. ``xcoms``: key ->
    JSON value to store on success, each under its own key (a trigger's run id is ``return_value``). ``recheck_at``: when to look again while ``not_met``.
    """

    outcome: Literal["met", "not_met", "failed", "skipped"]
    reason: str | None = None
    xcoms: Mapping[str, Any] = field(default_factory=dict)
    recheck_at: datetime | None = None


@dataclass(frozen=True)
class RenderInputs:
    """What templates may read besides the run: ``xcom_pull(task_id, key)`` (a JSON value or
    :data:`kubedag.core.xcom.NO_XCOM`), the DAG's ``variables`` and ``connections`` (None: none), ``missing``:
    sources that could not be read (named in a failing template's reason), ``python``: the interpreter of
    kubedag's image for built-in sensors."""

    xcom_pull: Callable[[str, str], Any] | None = None
    variables: Mapping[str, str] | None = None
    connections: Mapping[str, str] | None = None
    missing: tuple[str, ...] = ()
    python: str = "python"
    prev_success: templating.PreviousRun | None = None
    """The DAG's previous successful run, for ``prev_*_success`` (None: there is none)."""


@dataclass(frozen=True)
class TryKill:
    """A try's pod or process to stop now, and why (execution timeout, task removed, image never pulled)."""

    task_id: str
    try_number: int
    reason: str


@dataclass
class PassResult:
    """What :func:`run_pass` decided.

    ``run``: the run with its new state. ``tis``: every task instance after the pass; ``changed``: those
    that changed (to write to the DB). ``tries``: try history rows (a try that started running or ended).
    ``create``: pods to create (creating one that exists is harmless: names are deterministic).
    ``kill``: pods to delete now. ``finished``: ``(task_id, try_number)`` of tries that ended in this pass
    (their logs are to be archived). ``wake_at``: when time alone changes the next pass. ``xcoms``:
    ``(task_id, try_number)`` -> the XComs a successful try pushed (to store). ``waiting``: the engine's
    ``Plan.waiting`` (task_id -> why it has not started).
    """

    run: engine.DagRun
    tis: dict[str, engine.TaskInstance]
    changed: dict[str, engine.TaskInstance] = field(default_factory=dict)
    tries: list[TryRecord] = field(default_factory=list)
    create: list[LaunchRequest] = field(default_factory=list)
    kill: list[TryKill] = field(default_factory=list)
    finished: list[tuple[str, int]] = field(default_factory=list)
    wake_at: datetime | None = None
    xcoms: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    waiting: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def idle(self) -> bool:
        """True when the pass asks for nothing."""
        return not (self.changed or self.tries or self.create or self.kill)


def template_context(dag: DAG, run: engine.DagRun, task_id: str, try_number: int,
                     inputs: RenderInputs | None = None) -> dict[str, Any]:
    """Airflow's template context for one try (:func:`kubedag.core.tries.try_context`), with ``inputs``' XComs,
    variables, connections and previous successful run."""
    inputs = inputs or RenderInputs()
    return try_context(dag, run, task_id, try_number, xcom_pull=inputs.xcom_pull, variables=inputs.variables,
                       connections=inputs.connections, prev_success=inputs.prev_success)


def render_request(dag: DAG, run: engine.DagRun, ti: engine.TaskInstance, inputs: RenderInputs | None = None,
                   *, new_poke: bool = False) -> LaunchRequest:
    """Render a try's templated fields (Airflow's context for this try) into a :class:`LaunchRequest`: the task's
    ``command + args`` or a built-in sensor's check, as :func:`kubedag.core.execution.try_argv` gives them (the
    whole command line goes into the container's ``command``).

    Raises:
        templating.TemplateError: naming the field that failed.
    """
    inputs = inputs or RenderInputs()
    task = dag.tasks[ti.task_id]
    ctx = template_context(dag, run, ti.task_id, ti.try_number, inputs)
    fields = templating.render_fields(list(task.command), list(task.args), task.env, ctx)
    env = {**fields.env, **context_env(run, ti.task_id, ti.try_number)}
    if task.sensor is None:
        return LaunchRequest(ti.task_id, ti.try_number, fields.command, fields.args, env, new_poke)
    argv = execution.try_argv(dag, ti.task_id, fields.command, fields.args,
                              lambda template, name: templating.render(template, ctx, name), python=inputs.python)
    return LaunchRequest(ti.task_id, ti.try_number, argv, [], env, new_poke)


def _controller_task(dag: DAG, run: engine.DagRun, current: Mapping[str, engine.TaskInstance], ti: engine.TaskInstance,
                     check: ControllerCheck, now: datetime) -> execution.TryEnd | None:
    """The end of an in-controller task's try given the controller's verdict (the TI is running); None while it
    keeps waiting."""
    task = dag.tasks[ti.task_id]
    if check.outcome == "met":  # the verdict's XComs are stored key by key, as the task pushed them
        end = execution.finish_try(dag, run, current, ti, exit_code=0, reason=None, xcom=None, now=now)
        return replace(end, xcoms=dict(check.xcoms)) if end.state == S.SUCCESS else end
    if check.outcome == "skipped":
        return execution.finish_try(dag, run, current, ti, exit_code=execution.SKIP_EXIT_CODE, reason=check.reason,
                                    xcom=None, now=now)
    if check.outcome == "failed":
        if task.sensor is not None and task.sensor.soft_fail:
            new = replace(ti, state=S.SKIPPED, start_date=ti.start_date or now, end_date=now, next_retry_at=None,
                          reason=f"skipped: {check.reason} (softFail)")
            return execution.TryEnd(new, state=S.SKIPPED, reason=new.reason)
        new = engine.apply_outcome(dag, run, ti, succeeded=False, now=now, reason=check.reason)
        return execution.TryEnd(new, state=S.FAILED, reason=new.reason)
    sensor = task.sensor
    if sensor is not None and (sensor.mode == "reschedule" or now - (ti.start_date or now) >= sensor.timeout):
        new = engine.sensor_not_met(dag, run, ti, now)
        if check.reason and new.state == S.UP_FOR_RESCHEDULE:
            new = replace(new, reason=f"{check.reason}; {new.reason}")
        return execution.TryEnd(new, state=new.state, reason=new.reason)
    return None


def _with_xcoms(inputs: RenderInputs | None, pushed: Mapping[tuple[str, int], Mapping[str, Any]]) -> RenderInputs | None:
    """``inputs`` whose ``xcom_pull`` also sees the XComs ``pushed`` by tries that ended in this pass (the caller
    applies them only after the pass, yet a downstream try may be rendered in it)."""
    if not pushed:
        return inputs
    fresh = {(task_id, key): value for (task_id, _), values in pushed.items() for key, value in values.items()}
    inputs = inputs or RenderInputs()
    earlier = inputs.xcom_pull

    def pull(task_id: str, key: str) -> Any:
        if (task_id, key) in fresh:
            return fresh[(task_id, key)]
        return NO_XCOM if earlier is None else earlier(task_id, key)

    return replace(inputs, xcom_pull=pull)


def run_pass(
    dag: DAG,
    run: engine.DagRun,
    tis: Mapping[str, engine.TaskInstance],
    observed: Mapping[tuple[str, int], TryObservation],
    launched: Mapping[str, int],
    now: datetime,
    *,
    may_start: bool = True,
    free_slots: int | None = None,
    name_of: Callable[[str, int], str] | None = None,
    lost: Callable[[str, int], str] | None = None,
    pool_free: Mapping[str, int] | None = None,
    inputs: RenderInputs | None = None,
    checks: Mapping[str, ControllerCheck] | None = None,
    pool_slots: Mapping[str, int] | None = None,
) -> PassResult:
    """Reconcile one DAG run at ``now``.

    ``observed``: what the executor sees of the run's tries by ``(task_id, try_number)`` (pods read by
    :func:`kubedag.k8s.observe.observe_pod`, or local processes). ``launched``: task_id -> the try number whose
    pod or process is known to have been created (``status.tasks[*].p`` set); a queued or running try with
    no observation is failed as lost if it was launched (reason ``lost(task_id, try_number)``), else
    (re)launched.
    ``may_start``: False keeps a queued run queued (its DAG's ``maxActiveRuns`` is reached).
    ``free_slots``: tries that may start in this pass (the DAG's ``maxActiveTasks`` left by its other
    runs). ``name_of(task_id, try_number)`` names a try's pod or process in records. ``pool_free``: pool -> open slots across
    every run (the engine's ``plan(pool_free=)``; None: pools not enforced). ``inputs``: what templates read
    (:class:`RenderInputs`). ``checks``: task_id -> the controller's verdict on an in-controller task that is
    queued or running (none yet: the pass asks to be called again at once). ``pool_slots``: every existing pool's
    slots (None: not checked); a task waiting on a pool that does not exist, or is smaller than its ``poolSlots``,
    gets that as its reason (:func:`pool_problem`) and stays waiting, as in Airflow, until the pool is there.
    """
    name_of = name_of or (lambda task_id, try_number: f"{task_id} try {try_number}")
    lost = lost or (lambda task_id, try_number: f"{name_of(task_id, try_number)} vanished before it finished")
    current = dict(tis)
    result = PassResult(run=run, tis=current)
    if run.finished:
        return result
    if run.state == DagRunState.QUEUED and not may_start:
        return result

    def put(ti: engine.TaskInstance) -> None:
        current[ti.task_id] = result.changed[ti.task_id] = ti

    # 1. what the pods (or the controller's checks) say about the tries in flight
    checks = checks or {}
    rerun = False
    recheck: list[datetime] = []

    def ended(ti: engine.TaskInstance, end: execution.TryEnd, at: datetime, exit_code: int | None, node: str | None,
              pod: str | None) -> None:
        put(end.ti)
        for other in end.updates.values():
            put(other)
        if end.xcoms:
            result.xcoms[(ti.task_id, ti.try_number)] = dict(end.xcoms)
        result.tries.append(TryRecord(ti.task_id, ti.try_number, end.state, ti.start_date, at, exit_code, end.reason,
                                      hostname=node, pod_name=pod))
        result.finished.append((ti.task_id, ti.try_number))

    for task_id, ti in list(current.items()):
        if ti.state not in (S.QUEUED, S.RUNNING):
            continue
        task = dag.tasks.get(task_id)
        if task is not None and task.runs_in_controller:
            check = checks.get(task_id)
            if check is None:
                rerun = True
                continue
            if ti.state == S.QUEUED:
                ti = engine.mark_running(ti, now)
                put(ti)
                result.tries.append(TryRecord(task_id, ti.try_number, S.RUNNING, ti.start_date))
            end = _controller_task(dag, run, current, ti, check, now)
            if end is None:
                if check.recheck_at is not None:
                    recheck.append(check.recheck_at)
                if task.sensor is not None:
                    recheck.append((ti.start_date or now) + task.sensor.timeout)
                if check.reason and check.reason != ti.reason:
                    put(replace(ti, reason=check.reason))
                continue
            ended(ti, end, now, None, None, None)
            continue
        seen = observed.get((task_id, ti.try_number))
        if seen is None:
            if launched.get(task_id) == ti.try_number:
                obs = TryObservation("failed", ti.start_date, now, None, lost(task_id, ti.try_number))
            else:
                continue  # not launched yet (or lost before its launch was confirmed): step 3 launches it
        else:
            obs = seen
        if obs.phase == "pending":
            continue
        if ti.state == S.QUEUED:
            ti = engine.mark_running(ti, obs.started_at or now)
            put(ti)
            if not obs.finished:
                result.tries.append(TryRecord(task_id, ti.try_number, S.RUNNING, ti.start_date,
                                              hostname=obs.node, pod_name=name_of(task_id, ti.try_number)))
        if obs.finished:
            ok = obs.phase == "succeeded"
            at = obs.finished_at or now
            if task is None:  # removed from the DAG meanwhile: the engine marks it removed below
                continue
            end = execution.finish_try(dag, run, current, ti, exit_code=0 if ok else obs.exit_code, reason=obs.reason,
                                       xcom=obs.message if ok else None, now=at)
            if end.ti.next_retry_at is not None and obs.ended_by is not None and obs.ended_by > at:
                # the end date stays as reported; the retry is due retryDelay after the try's latest possible end
                end = replace(end, ti=replace(end.ti, next_retry_at=end.ti.next_retry_at + (obs.ended_by - at)))
            ended(ti, end, at, obs.exit_code, obs.node, name_of(task_id, ti.try_number))
            if seen is not None and obs.started_at is None and not ok:
                result.kill.append(TryKill(task_id, ti.try_number, obs.reason or "failed"))

    # 2. the engine decides
    before = dict(current)
    plan = engine.plan(dag, run, current, now, free_slots=free_slots, pool_free=pool_free)
    result.run = plan.run
    result.waiting = plan.waiting
    for task_id, ti in plan.updates.items():
        put(ti)
    for task_id, ti in list(current.items()) if pool_slots is not None else ():
        waits = plan.waiting.get(task_id) or ("",)
        problem = pool_problem(dag.tasks[task_id], pool_slots) if waits[0].startswith("pool ") else None
        if ti.state in (S.NONE, S.SCHEDULED) and problem != ti.reason and (problem or is_pool_problem(ti.reason)):
            put(replace(ti, reason=problem))
    for kill in plan.kills:
        result.kill.append(TryKill(kill.task_id, kill.try_number, kill.reason))
        result.tries.append(TryRecord(kill.task_id, kill.try_number, S.FAILED, before[kill.task_id].start_date,
                                      now, None, kill.reason,
                                      pod_name=name_of(kill.task_id, kill.try_number)))
        result.finished.append((kill.task_id, kill.try_number))

    # 3. pods for queued tries: new ones, new pokes of rescheduled sensors, and ones whose creation was never
    # confirmed; in-controller tasks have no pod (the controller checks them before the next pass, now)
    inputs = _with_xcoms(inputs, result.xcoms)
    for task_id, ti in current.items():
        if ti.state != S.QUEUED:
            continue
        task = dag.tasks.get(task_id)
        if task is not None and task.runs_in_controller:
            rerun = rerun or task_id not in checks
            continue
        new_poke = before[task_id].state == S.UP_FOR_RESCHEDULE if task_id in before else False
        if not new_poke and (launched.get(task_id) == ti.try_number or (task_id, ti.try_number) in observed):
            continue
        try:
            result.create.append(render_request(dag, result.run, ti, inputs, new_poke=new_poke))
        except (templating.TemplateError, ValueError) as exc:
            missing = f" ({'; '.join(inputs.missing)})" if inputs is not None and inputs.missing else ""
            what = f"template error in {exc}" if isinstance(exc, templating.TemplateError) else str(exc)
            reason = f"{what}{missing}"
            failed = engine.apply_outcome(dag, result.run, engine.mark_running(ti, now), succeeded=False, now=now, reason=reason)
            put(failed)
            result.tries.append(TryRecord(task_id, ti.try_number, S.FAILED, now, now, None, reason))
            rerun = True
    # a try failed by a template error may change the run's state: the next pass (now) sees it
    times = [t for t in (plan.wake_at, *recheck) if t is not None]
    result.wake_at = now if rerun else min(times, default=None)
    return result


_POOL_PROBLEM = re.compile(r"^(pool \S+ does not exist|needs \d+ slots, pool \S+ has \d+)$")


def pool_problem(task: Task, pool_slots: Mapping[str, int]) -> str | None:
    """Why ``task`` can never get its pool slots as the pools stand (``pool_slots``: pool -> slots): ``pool X does
    not exist``, or ``needs N slots, pool X has M``; None when it can once slots are free. Airflow 2.10's scheduler
    logs the same ("Tasks using non-existent pool ... will not be scheduled", "Requested pool slots (N) are greater
    than total pool slots") and leaves the task instance scheduled: so does kubedag, with the reason on it."""
    if task.pool not in pool_slots:
        return f"pool {task.pool} does not exist"
    if task.pool_slots > pool_slots[task.pool]:
        return f"needs {task.pool_slots} slots, pool {task.pool} has {pool_slots[task.pool]}"
    return None


def is_pool_problem(reason: str | None) -> bool:
    """Whether ``reason`` is one :func:`pool_problem` gives."""
    return reason is not None and _POOL_PROBLEM.match(reason) is not None


def ti_from_row(row: Any) -> engine.TaskInstance:
    """A task instance from its metadata DB row (:class:`kubedag.store.models.TaskInstanceRow`), with its stored
    ``max_tries`` (Airflow's: the retries allowed, renewed by a clear) and ``reason``."""
    return engine.TaskInstance(
        task_id=row.task_id,
        state=TaskInstanceState(row.state) if row.state else S.NONE,
        try_number=row.try_number or 0,
        start_date=row.start_date,
        end_date=row.end_date,
        next_retry_at=row.next_retry_at,
        reason=row.reason,
        exit_code=row.exit_code,
        max_tries=row.max_tries,
    )


def active_count(tis: Mapping[str, engine.TaskInstance]) -> int:
    """Task instances that hold a ``maxActiveTasks`` slot (queued or running)."""
    return sum(1 for ti in tis.values() if ti.state in engine.ACTIVE_STATES)

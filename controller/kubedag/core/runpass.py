"""One reconcile pass of a DAGRun, as a pure function: observed pods in, engine plan applied, actions out.

This is the Kubernetes executor's counterpart of :class:`kubedag.local.runner.LocalRunner`'s pass, with
pods in place of processes, and no I/O: the controller (:mod:`kubedag.k8s.controller`) gathers the
inputs (the DAGRun object, its pods by label, the task instances from the metadata DB or its cache),
calls :func:`run_pass`, then carries out the result (create and delete pods, write the DB, write one
status). Applying a result and calling again with the same inputs gives an idle result: the pass is
level-triggered, so a restarted controller resumes from whatever state it finds.

How a pod reads (:func:`observe_pod`), as a kubelet reports it:

* ``Pending`` -> the try is still ``queued``; a container waiting on an image error (``ErrImagePull``,
  ``ImagePullBackOff``, ...) for longer than ``image_pull_timeout`` fails the try
  (``InvalidImageName`` at once);
* ``Running`` -> ``running`` from the container's ``startedAt``;
* ``Succeeded`` -> success; ``Failed`` -> failed with the reason: ``exit code N``, ``OOMKilled``,
  ``Evicted``, ``DeadlineExceeded`` (``activeDeadlineSeconds`` from ``executionTimeout``);
* a pod with a ``deletionTimestamp`` that has not finished, or a pod that vanished after it was
  created, fails the try with "pod deleted" (someone else deleted it: kubedag deletes only pods of
  finished tries). Retries then follow the task's policy, as for any failure.

What a finished try means is :func:`kubedag.core.execution.finish_try`'s, as for local tries: exit 0 is a
success whose XCom is the container's termination message (``state.terminated.message``: the file
``$KUBEDAG_XCOM_PATH``, see :mod:`kubedag.k8s.podspec`), a branch skips the tasks it does not follow,
a sensor's exit 75 is "not met yet" (``up_for_reschedule`` in ``reschedule`` mode, with the same try
number: its next poke is a new pod, see :func:`kubedag.core.naming.pod_name`), exit 99 is ``skipped``.

Tasks that run in the controller (:attr:`kubedag.core.spec.dag.Task.runs_in_controller`: triggers and
``externalTask`` sensors) have no pod: the controller evaluates them before the pass and hands the
verdicts in as ``checks`` (:class:`ControllerCheck`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from kubedag.core import engine, execution, templating, timetable
from kubedag.core.spec.dag import DAG, to_utc
from kubedag.core.spec.dagrun import DAGRunSpec, DAGRunStatus, TaskCounts, TaskEntry
from kubedag.core.states import DagRunState, RunType, TaskInstanceState
from kubedag.core.tries import TryRecord, context_env
from kubedag.core.xcom import NO_XCOM

S = TaskInstanceState

IMAGE_ERRORS = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "RegistryUnavailable", "CreateContainerConfigError", "CreateContainerError"})
"""Container waiting reasons that mean the try cannot start (yet): failed after ``image_pull_timeout``."""
FATAL_WAITING = frozenset({"InvalidImageName"})
"""Waiting reasons that can never resolve: the try fails at once."""


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp from the API (``2026-11-01T16:00:00Z``) as an aware datetime; None stays None."""
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True)
class PodObservation:
    """What a pod says about its try. ``phase``: pending | running | succeeded | failed. Times are UTC-aware."""

    phase: Literal["pending", "running", "succeeded", "failed"]
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None
    node: str | None = None
    message: str | None = None
    """The container's termination message (the try's XCom file) when it ended; None without one."""

    @property
    def finished(self) -> bool:
        """True for succeeded and failed."""
        return self.phase in ("succeeded", "failed")


def _container_status(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((c for c in statuses if c.get("name") == "base"), statuses[0] if statuses else {})


def observe_pod(pod: Mapping[str, Any], now: datetime, image_pull_timeout: timedelta) -> PodObservation:
    """Read a pod as the state of its try (see the module docstring for the rules)."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    node = spec.get("nodeName")
    container = _container_status(pod)
    state = container.get("state") or {}
    terminated = state.get("terminated") or {}
    running = state.get("running") or {}
    phase = status.get("phase") or "Pending"
    started = parse_time(terminated.get("startedAt") or running.get("startedAt"))
    finished = parse_time(terminated.get("finishedAt"))
    if phase == "Succeeded":
        return PodObservation("succeeded", started, finished or now, terminated.get("exitCode", 0), None, node,
                              terminated.get("message"))
    if phase == "Failed":
        code = terminated.get("exitCode")
        pod_reason = status.get("reason")
        if pod_reason == "DeadlineExceeded":
            seconds = spec.get("activeDeadlineSeconds")
            reason = f"execution timeout: the pod ran past activeDeadlineSeconds ({seconds}s)"
        elif pod_reason == "Evicted":
            reason = f"evicted: {status.get('message') or 'the node evicted the pod'}"
        elif terminated.get("reason") == "OOMKilled":
            reason = f"OOMKilled: the container exceeded its memory limit (exit code {code})"
        elif code is not None:
            reason = f"exit code {code}"
        else:
            reason = f"pod failed: {pod_reason or 'unknown reason'}{': ' + status['message'] if status.get('message') else ''}"
        return PodObservation("failed", started, finished or now, code, reason, node)
    if meta.get("deletionTimestamp"):
        return PodObservation("failed", started, now, None, f"pod {meta.get('name')} was deleted before it finished", node)
    if phase == "Running" and running:
        return PodObservation("running", started or now, None, None, None, node)
    waiting = state.get("waiting") or {}
    why = waiting.get("reason")
    created = parse_time(meta.get("creationTimestamp")) or now
    if why in FATAL_WAITING or (why in IMAGE_ERRORS and now - created >= image_pull_timeout):
        detail = f"{why}: {waiting.get('message') or ''}".rstrip(": ")
        return PodObservation("failed", None, now, None, f"the container could not start ({detail})", node)
    return PodObservation("pending", None, None, None, None, node)


def pending_deadline(pod: Mapping[str, Any], image_pull_timeout: timedelta) -> datetime | None:
    """When a pod waiting on an image error will be failed by :func:`observe_pod`; None if it is not waiting so."""
    why = ((_container_status(pod).get("state") or {}).get("waiting") or {}).get("reason")
    created = parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
    if why in IMAGE_ERRORS and created is not None:
        return created + image_pull_timeout
    return None


# ------------------------------------------------------------------------------------- the DAG run
def run_from_object(dag: DAG, body: Mapping[str, Any]) -> engine.DagRun:
    """The engine's :class:`~kubedag.core.engine.DagRun` for a DAGRun object, its defaults filled in.

    As ``airflow dags trigger``: run type ``manual``; ``logicalDate`` the object's
    ``creationTimestamp`` (fixed once the object exists, so every pass agrees); the data interval, unless
    given, from the DAG's timetable: ``infer_manual_data_interval`` for a manual run, else
    :func:`kubedag.core.timetable.infer_automated_data_interval` (Airflow's ``DAG.create_dagrun``); run id
    ``<runType>__<logicalDate>``.
    Naive dates are read in the DAG's timezone. The state, start and end come from ``status``.

    Raises:
        pydantic.ValidationError: the spec is invalid (the CRD schema lets through what only the
            controller checks, e.g. a ``runId`` pattern).
        ValueError: no logical date could be found.
    """
    spec = DAGRunSpec.model_validate(body.get("spec") or {})
    meta = body.get("metadata") or {}
    status = DAGRunStatus.model_validate(body.get("status") or {})

    def aware(value: datetime | None) -> datetime | None:
        return to_utc(value, dag.timezone)

    run_type = spec.run_type or RunType.MANUAL
    logical_date = aware(spec.logical_date) or parse_time(meta.get("creationTimestamp"))
    if logical_date is None:
        raise ValueError("spec.logicalDate: missing, and the object has no creationTimestamp")
    if spec.data_interval_start is not None and spec.data_interval_end is not None:
        start, end = aware(spec.data_interval_start), aware(spec.data_interval_end)
    elif run_type == RunType.MANUAL:
        interval = dag.timetable.infer_manual_data_interval(run_after=logical_date)
        start, end = interval.start, interval.end
    else:  # scheduled or backfill: the interval starting at the logical date, as Airflow's DAG.create_dagrun
        interval = timetable.infer_automated_data_interval(dag.timetable, logical_date)
        start, end = interval.start, interval.end
    return engine.DagRun(
        dag_id=dag.dag_id,
        run_id=spec.run_id or timetable.run_id(str(run_type), logical_date),
        run_type=run_type,
        logical_date=logical_date,
        data_interval_start=start,
        data_interval_end=end,
        state=status.phase or DagRunState.QUEUED,
        start_date=status.started_at,
        end_date=status.finished_at,
        conf=dict(spec.conf),
    )


@dataclass(frozen=True)
class PodRequest:
    """A try whose pod must exist: its rendered ``command``, ``args`` and ``env`` (context variables included)."""

    task_id: str
    try_number: int
    command: list[str]
    args: list[str]
    env: dict[str, str]
    new_poke: bool = False
    """True for the next poke of a rescheduled sensor: a new pod within the same try (the caller numbers it)."""


@dataclass(frozen=True)
class ControllerCheck:
    """The controller's verdict on a task it carries out itself (a trigger, an ``externalTask`` sensor).

    ``outcome``: ``met`` (success), ``not_met`` (keep waiting: running in ``poke`` mode and for a trigger's
    ``waitForCompletion``, ``up_for_reschedule`` in ``reschedule`` mode), ``failed`` (a failure, retried by
    the task's ``retries``), ``skipped``. ``reason``: what the controller sees, for the user. ``xcoms``: to
    store on success. ``recheck_at``: when to look again while ``not_met``.
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


@dataclass(frozen=True)
class PodKill:
    """A try's pod to delete now, and why (execution timeout, task removed, image never pulled)."""

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
    create: list[PodRequest] = field(default_factory=list)
    kill: list[PodKill] = field(default_factory=list)
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
    """Airflow's template context for one try (as :func:`kubedag.core.tries.render_try` builds it), with
    ``inputs``' XComs, variables and connections."""
    inputs = inputs or RenderInputs()

    def pull(upstream_id: str, key: str) -> Any:
        if upstream_id not in dag.tasks:
            raise templating.ContextError(f"ti.xcom_pull: no task {upstream_id!r} in DAG {dag.dag_id!r}")
        return NO_XCOM if inputs.xcom_pull is None else inputs.xcom_pull(upstream_id, key)

    return templating.template_context(templating.RunContext(
        dag_id=run.dag_id, task_id=task_id, run_id=run.run_id, run_type=str(run.run_type),
        logical_date=run.logical_date, data_interval_start=run.data_interval_start,
        data_interval_end=run.data_interval_end, try_number=try_number, params=dag.params, conf=run.conf,
        xcom_pull=pull, variables=inputs.variables, connections=inputs.connections,
    ))


def render_request(dag: DAG, run: engine.DagRun, ti: engine.TaskInstance, inputs: RenderInputs | None = None,
                   *, new_poke: bool = False) -> PodRequest:
    """Render a try's templated fields (Airflow's context for this try) into a :class:`PodRequest`: the task's
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
        return PodRequest(ti.task_id, ti.try_number, fields.command, fields.args, env, new_poke)
    argv = execution.try_argv(dag, ti.task_id, fields.command, fields.args,
                              lambda template, name: templating.render(template, ctx, name), python=inputs.python)
    return PodRequest(ti.task_id, ti.try_number, argv, [], env, new_poke)


def _controller_task(dag: DAG, run: engine.DagRun, current: Mapping[str, engine.TaskInstance], ti: engine.TaskInstance,
                     check: ControllerCheck, now: datetime) -> execution.TryEnd | None:
    """The end of an in-controller task's try given the controller's verdict (the TI is running); None while it
    keeps waiting."""
    task = dag.tasks[ti.task_id]
    if check.outcome == "met":
        import json

        return execution.finish_try(dag, run, current, ti, exit_code=0, reason=None,
                                    xcom=json.dumps(dict(check.xcoms)) if check.xcoms else None, now=now)
    if check.outcome == "skipped":
        return execution.finish_try(dag, run, current, ti, exit_code=execution.SKIP_EXIT_CODE, reason=check.reason,
                                    xcom=None, now=now)
    if check.outcome == "failed":
        if task.sensor is not None and task.sensor.soft_fail:
            from dataclasses import replace

            new = replace(ti, state=S.SKIPPED, start_date=ti.start_date or now, end_date=now, next_retry_at=None,
                          reason=f"skipped: {check.reason} (softFail)")
            return execution.TryEnd(new, state=S.SKIPPED, reason=new.reason)
        new = engine.apply_outcome(dag, run, ti, succeeded=False, now=now, reason=check.reason)
        return execution.TryEnd(new, state=S.FAILED, reason=new.reason)
    sensor = task.sensor
    if sensor is not None and (sensor.mode == "reschedule" or now - (ti.start_date or now) >= sensor.timeout):
        new = engine.sensor_not_met(dag, run, ti, now)
        if check.reason and new.state == S.UP_FOR_RESCHEDULE:
            from dataclasses import replace

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
    pods: Mapping[tuple[str, int], Mapping[str, Any]],
    created: Mapping[str, int],
    now: datetime,
    *,
    may_start: bool = True,
    free_slots: int | None = None,
    image_pull_timeout: timedelta = timedelta(minutes=5),
    pod_name: Any = None,
    pool_free: Mapping[str, int] | None = None,
    inputs: RenderInputs | None = None,
    checks: Mapping[str, ControllerCheck] | None = None,
) -> PassResult:
    """Reconcile one DAG run at ``now``.

    ``pods``: the run's pods by ``(task_id, try_number)`` (from their labels). ``created``: task_id ->
    the try number whose pod is known to have been created (``status.tasks[*].p`` set); a queued or
    running try whose pod is missing is failed as deleted if its pod was created, else (re)created.
    ``may_start``: False keeps a queued run queued (its DAG's ``maxActiveRuns`` is reached).
    ``free_slots``: tries that may start in this pass (the DAG's ``maxActiveTasks`` left by its other
    runs). ``pod_name(task_id, try_number)`` names pods in reasons. ``pool_free``: pool -> open slots across
    every run (the engine's ``plan(pool_free=)``; None: pools not enforced). ``inputs``: what templates read
    (:class:`RenderInputs`). ``checks``: task_id -> the controller's verdict on an in-controller task that is
    queued or running (none yet: the pass asks to be called again at once).
    """
    name_of = pod_name or (lambda task_id, try_number: f"{task_id} try {try_number}")
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
                    from dataclasses import replace

                    put(replace(ti, reason=check.reason))
                continue
            ended(ti, end, now, None, None, None)
            continue
        pod = pods.get((task_id, ti.try_number))
        if pod is None:
            if created.get(task_id) == ti.try_number:
                obs = PodObservation("failed", ti.start_date, now, None,
                                     f"pod {name_of(task_id, ti.try_number)} was deleted before it finished")
            else:
                continue  # not created yet (or lost before its creation was confirmed): step 3 creates it
        else:
            obs = observe_pod(pod, now, image_pull_timeout)
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
            ended(ti, end, at, obs.exit_code, obs.node, name_of(task_id, ti.try_number))
            if pod is not None and obs.started_at is None and not ok:
                result.kill.append(PodKill(task_id, ti.try_number, obs.reason or "failed"))

    # 2. the engine decides
    before = dict(current)
    plan = engine.plan(dag, run, current, now, free_slots=free_slots, pool_free=pool_free)
    result.run = plan.run
    result.waiting = plan.waiting
    for task_id, ti in plan.updates.items():
        put(ti)
    for kill in plan.kills:
        result.kill.append(PodKill(kill.task_id, kill.try_number, kill.reason))
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
        if not new_poke and (created.get(task_id) == ti.try_number or (task_id, ti.try_number) in pods):
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


# ------------------------------------------------------------------------------------------ status
def build_status(
    run: engine.DagRun,
    tis: Mapping[str, engine.TaskInstance],
    created: Mapping[str, int],
    pod_suffix: Any,
    *,
    observed_generation: int | None,
    conditions: list[Any] | None = None,
) -> DAGRunStatus:
    """The DAGRun status for the run and its task instances (compact: see :mod:`kubedag.core.spec.dagrun`).

    ``pod_suffix(task_id, try_number)`` gives ``p`` for tries whose pod was created (``created``).
    """
    counts: dict[str, int] = {}
    tasks: dict[str, TaskEntry] = {}
    for task_id, ti in tis.items():
        state = str(ti.state)
        counts[state] = counts.get(state, 0) + 1
        if ti.state == S.NONE and ti.try_number == 0:
            continue
        p = pod_suffix(task_id, ti.try_number) if created.get(task_id) == ti.try_number and ti.try_number else None
        tasks[task_id] = TaskEntry(s=ti.state, t=ti.try_number, p=p)
    return DAGRunStatus.model_validate({
        "phase": run.state,
        "startedAt": run.start_date,
        "finishedAt": run.end_date,
        "observedGeneration": observed_generation,
        "conditions": conditions or [],
        "counts": TaskCounts.model_validate(counts),
        "tasks": tasks,
    })


def tis_from_status(status: Mapping[str, Any] | None) -> dict[str, engine.TaskInstance]:
    """Task instances as far as a status tells (state and try number; no dates): the fallback when the
    metadata DB has no rows for a run (e.g. a new database)."""
    parsed = DAGRunStatus.model_validate(status or {})
    return {task_id: engine.TaskInstance(task_id, e.s, e.t) for task_id, e in parsed.tasks.items()}


def ti_from_row(row: Any) -> engine.TaskInstance:
    """A task instance from its metadata DB row (:class:`kubedag.store.models.TaskInstanceRow`)."""
    return engine.TaskInstance(
        task_id=row.task_id,
        state=TaskInstanceState(row.state) if row.state else S.NONE,
        try_number=row.try_number or 0,
        start_date=row.start_date,
        end_date=row.end_date,
        next_retry_at=row.next_retry_at,
        exit_code=row.exit_code,
    )


def active_count(tis: Mapping[str, engine.TaskInstance]) -> int:
    """Task instances that hold a ``maxActiveTasks`` slot (queued or running)."""
    return sum(1 for ti in tis.values() if ti.state in engine.ACTIVE_STATES)


def finished_pod_deletions(
    pods: Mapping[tuple[str, int], Mapping[str, Any]],
    tis: Mapping[str, engine.TaskInstance],
    archived: set[tuple[str, int]],
    now: datetime,
    retention: timedelta,
) -> tuple[list[tuple[str, int]], datetime | None]:
    """Pods of finished tries whose log is archived and whose retention has passed: ``(deletable, next_at)``.

    A try is finished when its task instance has moved to a later try or to a finished state. ``next_at``:
    when the next pod falls due, for a timer.
    """
    due: list[tuple[str, int]] = []
    later: list[datetime] = []
    for (task_id, try_number), pod in pods.items():
        ti = tis.get(task_id)
        active = ti is not None and ti.try_number == try_number and ti.state in (S.QUEUED, S.RUNNING)
        if active or (task_id, try_number) not in archived or (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        obs_end = parse_time(((_container_status(pod).get("state") or {}).get("terminated") or {}).get("finishedAt"))
        end = obs_end or (ti.end_date if ti is not None and ti.try_number == try_number else None) or now
        if end + retention <= now:
            due.append((task_id, try_number))
        else:
            later.append(end + retention)
    return due, min(later, default=None)

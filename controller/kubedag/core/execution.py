"""What a try runs and what its end means, the same for every executor (local processes, Kubernetes pods).

:func:`try_argv` gives the command line of a try: the task's own ``command + args``, or a built-in sensor
check (``python -m kubedag.sensors file|http ...``), wrapped in the poke loop for a ``poke``-mode sensor.
:func:`finish_try` turns a try's exit code and XCom file into the task instance's next state:

* exit 0: success; the XCom file (``$KUBEDAG_XCOM_PATH``) is parsed and stored; a ``branch`` task's
  return value picks the downstream tasks to follow and the others are skipped;
* exit 75 (:data:`~kubedag.core.spec.models.SENSOR_NOT_MET_EXIT_CODE`) from a sensor: not met yet
  (:func:`kubedag.core.engine.sensor_not_met`: ``up_for_reschedule``, or a timeout);
* exit 99 (:data:`SKIP_EXIT_CODE`, Airflow's ``BashOperator.skip_on_exit_code``): ``skipped``;
* anything else: a failure, retried by the task's ``retries``.

Pure: no I/O; the executors read files and pods and write the results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from kubedag.core import engine
from kubedag.core.spec.dag import DAG
from kubedag.core.spec.models import SENSOR_NOT_MET_EXIT_CODE
from kubedag.core.sensors import check_argv, poke_command
from kubedag.core.states import TaskInstanceState

S = TaskInstanceState

SKIP_EXIT_CODE = 99
"""A try exiting with this code leaves its task ``skipped`` (Airflow's ``BashOperator`` ``skip_on_exit_code``)."""


def try_argv(dag: DAG, task_id: str, command: list[str], args: list[str], render: Callable[[str, str], str],
             *, python: str) -> list[str]:
    """The command line of one try: ``command + args`` (already rendered), or for a ``file``/``http`` sensor the
    built-in check (:func:`kubedag.core.sensors.check_argv`, templated fields rendered with ``render(template,
    field)``; ``python``: the interpreter, ``sys.executable`` locally, ``python`` in kubedag's image); wrapped
    in :func:`kubedag.core.sensors.poke_command` for a sensor in ``poke`` mode. Empty when the task has no command.

    Raises:
        kubedag.core.templating.TemplateError: a templated sensor field failed to render.
    """
    task = dag.tasks[task_id]
    sensor = task.sensor
    if sensor is not None and (sensor.file is not None or sensor.http is not None):
        argv = check_argv(sensor, render, python)
    else:
        argv = list(command) + list(args)
    if argv and sensor is not None and sensor.mode == "poke":
        argv = poke_command(argv, sensor)
    return argv


@dataclass(frozen=True)
class TryEnd:
    """The end of one try, as :func:`finish_try` reads it.

    ``ti``: the task instance after the try. ``updates``: other task instances changed (a branch's skips).
    ``xcoms``: key -> JSON value to store for this try (empty when none or on failure). ``state``: the try's
    own outcome for its history row (success, failed, skipped, or up_for_reschedule for a sensor's poke).
    ``reason``: why, for the user.
    """

    ti: engine.TaskInstance
    updates: Mapping[str, engine.TaskInstance] = field(default_factory=dict)
    xcoms: Mapping[str, Any] = field(default_factory=dict)
    state: TaskInstanceState = S.SUCCESS
    reason: str | None = None


def finish_try(
    dag: DAG,
    run: engine.DagRun,
    tis: Mapping[str, engine.TaskInstance],
    ti: engine.TaskInstance,
    *,
    exit_code: int | None,
    reason: str | None,
    xcom: bytes | str | None,
    now: datetime,
) -> TryEnd:
    """The next state of ``ti`` (queued or running) whose try ended at ``now`` with ``exit_code`` (None: no
    exit code, e.g. a pod that never started; ``reason`` says why) and XCom file content ``xcom`` (None: no
    file). See the module docstring for the rules.

    Raises:
        ValueError: ``ti`` is not queued or running (a stale report), from :func:`kubedag.core.engine.apply_outcome`.
    """
    from kubedag.core.xcom import XComError, parse_xcom

    task = dag.tasks[ti.task_id]

    def failed(why: str | None, code: int | None = exit_code) -> TryEnd:
        new = engine.apply_outcome(dag, run, ti, succeeded=False, now=now, exit_code=code, reason=why)
        return TryEnd(new, state=S.FAILED, reason=new.reason)

    if exit_code == 0:
        try:
            values = parse_xcom(xcom or "", multiple_outputs=task.multiple_outputs)
        except XComError as exc:
            return failed(f"XCom: {exc}")
        updates: dict[str, engine.TaskInstance] = {}
        if task.branch:
            from kubedag.core.xcom import RETURN_KEY

            try:
                follow = engine.branch_follow(dag, ti.task_id, values.get(RETURN_KEY))
            except ValueError as exc:
                return failed(f"branch: {exc}")
            updates = engine.apply_branch(dag, tis, ti.task_id, follow, now)
        new = engine.apply_outcome(dag, run, ti, succeeded=True, now=now, exit_code=0)
        return TryEnd(new, updates, values, S.SUCCESS, None)
    if exit_code == SENSOR_NOT_MET_EXIT_CODE and task.sensor is not None:
        new = engine.sensor_not_met(dag, run, ti, now)
        return TryEnd(new, state=new.state, reason=new.reason)
    if exit_code == SKIP_EXIT_CODE:
        start = ti.start_date or now
        new = replace(ti, state=S.SKIPPED, start_date=start, end_date=now, exit_code=exit_code, next_retry_at=None,
                      reason=f"skipped: the task exited {SKIP_EXIT_CODE}")
        return TryEnd(new, state=S.SKIPPED, reason=new.reason)
    return failed(reason)


def template_renderer(
    dag: DAG,
    run: engine.DagRun,
    task_id: str,
    try_number: int,
    *,
    xcom_pull: Callable[[str, str], Any] | None = None,
    variables: Mapping[str, str] | None = None,
    connections: Mapping[str, str] | None = None,
    prev_success: Any = None,
) -> Callable[[str, str], str]:
    """``render(template, field) -> str`` with the same template context as :func:`kubedag.core.tries.render_try`
    for that try (``xcom_pull``, ``variables``, ``connections`` and ``prev_success``, a
    :class:`kubedag.core.templating.PreviousRun` or None, as it takes them): the ``render`` of
    :func:`try_argv` for sensor fields, and of a trigger's ``conf`` and ``logicalDate``. The context is built
    on the first call only.

    Raises (from the returned callable):
        kubedag.core.templating.TemplateError: naming ``field``.
    """
    from kubedag.core import templating
    from kubedag.core.tries import try_context

    context: dict[str, Any] = {}

    def render(template: str, field_name: str) -> str:
        if not context:
            context.update(try_context(dag, run, task_id, try_number, xcom_pull=xcom_pull, variables=variables,
                                       connections=connections, prev_success=prev_success))
        return templating.render(template, context, field_name)

    return render


def render_value(value: Any, render: Callable[[str, str], str], field_name: str) -> Any:
    """A JSON-like ``value`` (a trigger's ``conf``) with every string rendered by ``render(template, field)``,
    at any depth; dict keys are kept as written. Field names read ``trigger.conf.key[0]``.

    Raises:
        kubedag.core.templating.TemplateError: naming the field, from ``render``.
    """
    if isinstance(value, str):
        return render(value, field_name)
    if isinstance(value, Mapping):
        return {k: render_value(v, render, f"{field_name}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, render, f"{field_name}[{i}]") for i, v in enumerate(value)]
    return value

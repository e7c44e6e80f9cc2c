"""What every executor (local processes, Kubernetes pods) reports the same way: a try's history record,
the environment every try sees, and how an exit status reads for a user."""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from kubedag.core import engine, templating
from kubedag.core.secrets import MASK, is_sensitive
from kubedag.core.spec.dag import DAG
from kubedag.core.states import TaskInstanceState
from kubedag.core.xcom import NO_XCOM


@dataclass(frozen=True)
class TryRecord:
    """One try's history row: ``state`` is the try's own outcome (running, success or failed)."""

    task_id: str
    try_number: int
    state: TaskInstanceState
    start_date: datetime | None
    end_date: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None
    log_location: str | None = None
    hostname: str | None = None
    """Where the try ran: the node of its pod (None: this machine, for local tries)."""
    pod_name: str | None = None
    rendered_fields: Mapping[str, Any] | None = None
    """What the try was launched with, secrets masked (:func:`masked_rendered`); None: not recorded by this pass."""


def masked_rendered(command: list[str], args: list[str], env: Mapping[str, str],
                    mask: Callable[[str], str] | None) -> dict[str, Any]:
    """A launched try's rendered fields as recorded (Airflow's ``rendered_task_instance_fields``):
    ``{"command": [...], "args": [...], "env": {name: value}}`` with every string passed through ``mask`` (the
    DAG's secrets by value, as logs are masked; None: no secret known) and the value of every env name that
    :func:`kubedag.core.secrets.is_sensitive` replaced by ``***`` (Airflow's ``redact`` by field name)."""
    m = mask if mask is not None else (lambda text: text)
    return {"command": [m(c) for c in command], "args": [m(a) for a in args],
            "env": {k: MASK if is_sensitive(k) else m(v) for k, v in env.items()}}


def context_env(run: engine.DagRun, task_id: str, try_number: int) -> dict[str, str]:
    """Variables every try sees, as Airflow's ``AIRFLOW_CTX_*``: ``KUBEDAG_DAG_ID``, ``KUBEDAG_TASK_ID``,
    ``KUBEDAG_RUN_ID``, ``KUBEDAG_LOGICAL_DATE`` (ISO 8601, UTC) and ``KUBEDAG_TRY_NUMBER``."""
    return {
        "KUBEDAG_DAG_ID": run.dag_id,
        "KUBEDAG_TASK_ID": task_id,
        "KUBEDAG_RUN_ID": run.run_id,
        "KUBEDAG_LOGICAL_DATE": run.logical_date.astimezone(timezone.utc).isoformat(),
        "KUBEDAG_TRY_NUMBER": str(try_number),
    }


def describe_exit(code: int) -> str:
    """``0`` -> ``exit code 0``; ``-9`` -> ``killed by signal SIGKILL``."""
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def render_try(
    dag: DAG,
    run: engine.DagRun,
    task_id: str,
    try_number: int,
    *,
    xcom_pull: Callable[[str, str], Any] | None = None,
    variables: Mapping[str, str] | None = None,
    connections: Mapping[str, str] | None = None,
    prev_success: templating.PreviousRun | None = None,
) -> templating.RenderedFields:
    """Render a try's ``command``, ``args`` and ``env`` with Airflow's template context for that try
    (``params`` from the DAG, ``dag_run.conf`` from the run). Every executor renders through here.

    ``xcom_pull(task_id, key)`` returns the XCom a task of this run pushed (a JSON value) or
    :data:`kubedag.core.xcom.NO_XCOM` (e.g. ``repository.get_xcom(..., default=NO_XCOM)``); it is called only
    for tasks of ``dag`` (``ti.xcom_pull`` of another task id is a template error naming it), and only when
    a template pulls. None: nothing was pushed. ``variables`` (name -> value) and ``connections``
    (conn id -> URI) are :func:`kubedag.core.secrets.load_sources`' (None: none). ``prev_success``: the DAG's
    previous successful run (see :class:`~kubedag.core.templating.PreviousRun`; None: there is none).

    Raises:
        templating.TemplateError: naming the field that failed (e.g. ``command[1]``).
    """
    task = dag.tasks[task_id]
    ctx = try_context(dag, run, task_id, try_number, xcom_pull=xcom_pull, variables=variables, connections=connections,
                      prev_success=prev_success)
    return templating.render_fields(list(task.command), list(task.args), task.env, ctx)


def try_context(
    dag: DAG,
    run: engine.DagRun,
    task_id: str,
    try_number: int,
    *,
    xcom_pull: Callable[[str, str], Any] | None = None,
    variables: Mapping[str, str] | None = None,
    connections: Mapping[str, str] | None = None,
    prev_success: templating.PreviousRun | None = None,
) -> dict[str, Any]:
    """Airflow's template context for one try, as :func:`render_try` renders with (same arguments): a
    ``ti.xcom_pull`` of a task not in ``dag`` is a :class:`~kubedag.core.templating.ContextError` naming it;
    ``next_ds``/``prev_ds`` come from the DAG's timetable."""

    def pull(upstream_id: str, key: str) -> Any:
        if upstream_id not in dag.tasks:
            raise templating.ContextError(f"ti.xcom_pull: no task {upstream_id!r} in DAG {dag.dag_id!r}")
        return NO_XCOM if xcom_pull is None else xcom_pull(upstream_id, key)

    return templating.template_context(
        templating.RunContext(
            dag_id=run.dag_id, task_id=task_id, run_id=run.run_id, run_type=str(run.run_type),
            logical_date=run.logical_date, data_interval_start=run.data_interval_start,
            data_interval_end=run.data_interval_end, try_number=try_number, params=dag.params, conf=run.conf,
            xcom_pull=pull, variables=variables, connections=connections, prev_success=prev_success,
            timetable=dag.timetable,
        )
    )

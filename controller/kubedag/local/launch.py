"""What a local try runs: a :class:`~kubedag.core.runpass.LaunchRequest` turned into a command line and an
environment, and the files a try leaves next to its log.

The run pass (:func:`kubedag.core.runpass.run_pass`) renders the task's ``command + args`` (or a built-in
``file``/``http`` sensor's check). The two kinds of task the Kubernetes controller carries out itself
(:attr:`kubedag.core.spec.dag.Task.runs_in_controller`) run here as local programs instead, so the local
executor has no in-process checks: an ``externalTask`` sensor as ``python -m kubedag.sensors external``
against the metadata DB, a ``trigger`` task as ``python -m kubedag.cli.trigger``. Their verdict is their exit
code, read by :func:`kubedag.core.execution.finish_try` exactly as a command's (0 met, 75 not met, 99 skipped).
The metadata DB's URL reaches them through ``$KUBEDAG_DATABASE_URL``, never their argv, so it cannot appear
in the try's log or in ``ps``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from kubedag.core import engine, execution
from kubedag.core.spec.dag import DAG, Task
from kubedag.core.states import TaskInstanceState
from kubedag.core.tries import TryRecord, masked_rendered

DATABASE_URL_ENV = "KUBEDAG_DATABASE_URL"
"""The environment variable programs started here read the metadata DB's URL from (as :mod:`kubedag.store.config`)."""


def log_path(logs_dir: Path, dag_id: str, run_id: str, task_id: str, try_number: int) -> Path:
    """Where a try's log lives: Airflow's default ``log_filename_template`` under ``logs_dir``.

    ``<logs_dir>/dag_id=<dag>/run_id=<run>/task_id=<task>/attempt=<try>.log``
    """
    return logs_dir / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}" / f"attempt={try_number}.log"


def xcom_path(log: Path) -> Path:
    """The XCom file of the try whose log is ``log``: ``attempt=<try>.xcom.json`` next to it."""
    return log.with_name(log.stem + ".xcom.json")


def pid_path(log: Path) -> Path:
    """The pid file of the try whose log is ``log`` (``<pid> <start time>``, see :mod:`kubedag.local.processes`)."""
    return log.with_name(log.stem + ".pid")


def exit_path(log: Path) -> Path:
    """The exit-code file of the try whose log is ``log`` (written by the try's wrapper when it ends)."""
    return log.with_name(log.stem + ".exit")


def process_view(dag: DAG) -> DAG:
    """``dag`` as the run pass should see it locally: ``trigger`` tasks and ``externalTask`` sensors become
    ordinary process tasks (no command: :func:`program_argv` supplies theirs), so their verdict is an exit code.
    The same DAG object when it has none of them."""
    tasks: dict[str, Task] = {}
    for task_id, task in dag.tasks.items():
        if task.trigger is not None:
            task = dataclasses.replace(task, trigger=None)
        elif task.sensor is not None and task.sensor.external_task is not None:
            task = dataclasses.replace(task, sensor=task.sensor.model_copy(update={"external_task": None}))
        tasks[task_id] = task
    if all(tasks[t] is dag.tasks[t] for t in tasks):
        return dag
    return dataclasses.replace(dag, tasks=tasks)


def program_argv(dag: DAG, run: engine.DagRun, task_id: str, try_number: int, *, render: Callable[[str, str], str],
                 python: str, folder: Path, database_url: str | None, now: datetime,
                 queue: bool = False) -> list[str] | None:
    """The command line of a ``trigger`` task or ``externalTask`` sensor (poke-wrapped in ``poke`` mode), None for
    any other task. ``render(template, field)`` renders a templated field for this try. ``queue``: a trigger only
    queues its run, for the scheduler to run (``python -m kubedag.cli.trigger --queue``).

    Raises:
        ValueError: the task cannot run locally (no metadata DB URL, an invalid check); the message says why.
        kubedag.core.templating.TemplateError: a templated field failed to render.
    """
    task = dag.tasks[task_id]
    if task.trigger is None and (task.sensor is None or task.sensor.external_task is None):
        return None
    if not database_url:
        what = "a trigger task" if task.trigger is not None else "an externalTask sensor"
        raise ValueError(f"{what} needs the metadata DB's URL (RunOptions.database_url)")
    if task.trigger is not None:
        argv = _trigger_argv(task, render, python, folder, now)
        if queue:
            argv += ["--queue", f"--poke-interval={task.trigger.poke_interval.total_seconds():g}"]
        return argv
    return _external_argv(task, run, render, python)


def _external_argv(task: Task, run: engine.DagRun, render: Callable[[str, str], str], python: str) -> list[str]:
    """``python -m kubedag.sensors external ...`` for an ``externalTask`` sensor (the DB URL comes from the env)."""
    from kubedag.core.sensors import external_check_problems, external_logical_dates, poke_command

    sensor = task.sensor
    assert sensor is not None and sensor.external_task is not None
    check = sensor.external_task
    problems = external_check_problems(check)
    if problems:
        raise ValueError("; ".join(problems))
    dates = external_logical_dates(check, run.logical_date, render)
    argv = [python, "-m", "kubedag.sensors", "external", f"--dag={check.dag}"]
    if check.task:
        argv.append(f"--task={check.task}")
    argv += [f"--date={d.isoformat()}" for d in dates]
    argv += [f"--allowed={s}" for s in check.allowed_states] + [f"--failed={s}" for s in check.failed_states]
    argv += [f"--skipped={s}" for s in check.skipped_states]
    if sensor.soft_fail:
        argv.append("--soft-fail")
    return poke_command(argv, sensor) if sensor.mode == "poke" else argv


def _trigger_argv(task: Task, render: Callable[[str, str], str], python: str, folder: Path, now: datetime) -> list[str]:
    """``python -m kubedag.cli.trigger ...`` for a ``trigger`` task, its fields rendered."""
    from kubedag.core.sensors import parse_logical_date

    spec = task.trigger
    assert spec is not None
    conf = execution.render_value(dict(spec.conf), render, "trigger.conf")
    when = now
    if spec.logical_date is not None:
        when = parse_logical_date(render(spec.logical_date, "trigger.logicalDate"), "trigger.logicalDate")
    run_id = render(spec.trigger_run_id, "trigger.triggerRunId") if spec.trigger_run_id else None
    return trigger_argv(
        python=python, folder=folder, dag=spec.dag, logical_date=when, conf=conf, run_id=run_id,
        reset_dag_run=spec.reset_dag_run, wait_for_completion=spec.wait_for_completion,
        allowed=spec.allowed_states, failed=spec.failed_states,
    )


def url_secrets(database_url: str | None) -> list[str]:
    """The secret parts of a DB URL to mask in logs: its password (and the URL itself when it has one)."""
    if not database_url or "@" not in database_url:
        return []
    from urllib.parse import urlsplit

    try:
        password = urlsplit(database_url).password
    except ValueError:
        return [database_url]
    return [database_url, password] if password else []


def masker_of(masker: Any, extra: list[str]) -> Callable[[str], str] | None:
    """A function masking ``masker``'s secrets (a :class:`kubedag.secrets.Masker`, or None) and every string of
    ``extra`` as ``***``; None when there is nothing to mask."""
    base = masker.mask if masker is not None and len(masker) else None
    extra = sorted({e for e in extra if e}, key=len, reverse=True)
    if base is None and not extra:
        return None

    def mask(text: str) -> str:
        for secret in extra:
            text = text.replace(secret, "***")
        return base(text) if base is not None else text

    return mask


def trigger_argv(
    *, python: str, folder: Path, dag: str, logical_date: datetime, conf: dict, run_id: str | None,
    reset_dag_run: bool, wait_for_completion: bool, allowed: Sequence[str], failed: Sequence[str],
) -> list[str]:
    """The command line of one trigger try, ``python -m kubedag.cli.trigger ...`` (values already rendered;
    ``logical_date`` timezone-aware; the DB URL goes in the environment)."""
    argv = [python, "-m", "kubedag.cli.trigger", f"--folder={folder}", f"--dag={dag}",
            f"--logical-date={logical_date.isoformat()}", f"--conf={json.dumps(conf)}"]
    if run_id:
        argv.append(f"--run-id={run_id}")
    if reset_dag_run:
        argv.append("--reset-dag-run")
    if wait_for_completion:
        argv.append("--wait-for-completion")
    argv += [f"--allowed={s}" for s in allowed] + [f"--failed={s}" for s in failed]
    return argv


def renderer(dag: DAG, run: engine.DagRun, task_id: str, try_number: int, pull: Callable[[str, str], Any],
              o: Any) -> Callable[[str, str], str]:
    """``render(template, field)`` for one try, with its run's XComs (``pull``) and ``o``'s variables and
    connections (``o``: the :class:`~kubedag.local.runner.RunOptions`)."""
    return execution.template_renderer(dag, run, task_id, try_number, xcom_pull=pull,
                                       variables=o.variables, connections=o.connections)


def stuck_message(dag: DAG, run_id: str, waiting: Mapping[str, tuple[str, ...]], pools: Mapping[str, int] | None,
                  folder: Path) -> str:
    """Why a run cannot progress: what each task waits for (``waiting``: the pass's), naming pools that do not
    exist in ``folder`` or are too small (``pools``: None when pools are not enforced)."""
    waits = "; ".join(f"{t}: {' '.join(r)}" for t, r in waiting.items()) or "no task can start"
    message = f"DAG run {run_id} cannot progress: {waits}"
    known = pools or {}
    missing = sorted({dag.tasks[t].pool for t in waiting if dag.tasks[t].pool not in known})
    if pools is not None and missing:
        message += (f" (no Pool named {', '.join(missing)}: add a manifest with apiVersion: kubedag.io/v1alpha1, "
                    f"kind: Pool, metadata.name and spec.slots to {folder})")
    small = sorted({f"{t.pool} has {known[t.pool]} slots, task {t.task_id} needs {t.pool_slots}"
                    for t in (dag.tasks[w] for w in waiting) if t.pool in known and t.pool_slots > known[t.pool]})
    if small:
        message += f" (pool too small: {'; '.join(small)})"
    return message


def started_try(ti: engine.TaskInstance, log_location: str, request: Any,
                mask: Callable[[str], str] | None) -> TryRecord:
    """The running try of ``ti`` whose process ``request`` (a :class:`kubedag.core.runpass.LaunchRequest`) just
    started, with its rendered fields masked by ``mask`` (the runner's log masker, None: no secret) as
    :func:`kubedag.core.tries.masked_rendered` records them."""
    from kubedag.app.records import HOSTNAME

    return TryRecord(ti.task_id, ti.try_number, TaskInstanceState.RUNNING, ti.start_date,
                     log_location=log_location, hostname=HOSTNAME,
                     rendered_fields=masked_rendered(request.command, request.args, request.env, mask))

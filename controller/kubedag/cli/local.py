"""Glue for the CLI's local commands: the metadata DB, the runner and the live view, wired together.

``kubedag dags test`` -> :func:`run_dag_locally`; ``kubedag tasks test`` -> :func:`test_task`. The local
adapter (:mod:`kubedag.local`: runner, processes, view) is composed here with the metadata DB
(:mod:`kubedag.store`: the writer process, the recorded run of ``tasks test``).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from kubedag.core import engine, templating, timetable
from kubedag.local.options import dag_options
from kubedag.app.operations import manual_run
from kubedag.core.xcom import XCOM_PATH_ENV
from kubedag.local.pool_ledger import ledger_path
from kubedag.local.runner import LocalRunner, RunOptions, utcnow
from kubedag.core.spec.dag import DAG
from kubedag.store import config
from kubedag.store.writer import DBWriter, RunSetup

log = logging.getLogger(__name__)


@dataclass
class LocalRunResult:
    """A finished local DAG run and its task instances (task_id -> TaskInstance, topological order)."""

    run: engine.DagRun
    tis: Mapping[str, engine.TaskInstance]
    logs_dir: Path

    @property
    def state(self) -> str:
        """The run's final state: ``success`` or ``failed``."""
        return str(self.run.state)

    def as_json(self) -> dict[str, Any]:
        """The ``dags test -o json`` contract: ``{run_id, state, tasks: [{task_id, state, try_number,
        start_date, end_date, exit_code}]}`` with ISO 8601 UTC instants."""
        return {
            "run_id": self.run.run_id,
            "state": self.state,
            "tasks": [
                {
                    "task_id": ti.task_id,
                    "state": str(ti.state),
                    "try_number": ti.try_number,
                    "start_date": timetable.iso_utc(ti.start_date),
                    "end_date": timetable.iso_utc(ti.end_date),
                    "exit_code": ti.exit_code,
                }
                for ti in self.tis.values()
            ],
        }


def local_options(dag: DAG, *, workdir: Path, logs_dir: Path, database_url: str | None,
                  make_sender: Callable[..., Any] | None = None, **kwargs: Any) -> RunOptions:
    """The runner's options for ``dag`` with the DAG bag of ``workdir`` (:func:`kubedag.local.options.dag_options`,
    ``make_sender`` as it takes it); the DB URL is ``database_url`` or :func:`kubedag.store.config.database_url`.
    Pools are counted with the other local runners of this machine through the pool ledger
    (:func:`kubedag.local.pool_ledger.ledger_path`: a parent run's, else the one under ``logs_dir``).

    Raises:
        ValueError: a source of ``variablesFrom``/``connectionsFrom`` is missing from the folder.
    """
    from kubedag.local.bag import DagBag
    kwargs.setdefault("pool_ledger", ledger_path(logs_dir))
    return dag_options(dag, DagBag(workdir), workdir=workdir, logs_dir=logs_dir,
                       database_url=database_url or config.database_url(), make_sender=make_sender, **kwargs)


NOTIFY_FLUSH_SECONDS = 10.0
"""How long :func:`run_dag_locally` waits for notifications still being delivered when the run ends."""


def run_dag_locally(
    dag: DAG,
    *,
    workdir: Path,
    logical_date: datetime | None = None,
    conf: Mapping[str, Any] | None = None,
    parallelism: int = 32,
    no_retry_delay: bool = False,
    live: bool = True,
    database_url: str | None = None,
    writer: DBWriter | None = None,
    run_id: str | None = None,
    make_sender: Callable[..., Any] | None = None,
) -> LocalRunResult:
    """Run one manual DAG run of ``dag`` to completion with local processes; see ``kubedag dags test``.

    As Airflow's ``dag.test``, an earlier run of this DAG at the same logical date is replaced. The DB is
    ``database_url`` or :func:`kubedag.store.config.database_url`; logs go under the data directory.
    ``writer``: a :class:`~kubedag.store.writer.DBWriter` started earlier (the CLI starts it before
    parsing the manifest); one is started here otherwise. It is closed before this returns.
    ``run_id``: the run's id (default ``manual__<logical date>``, as Airflow's). ``make_sender``: the webhook
    sender's class (:func:`local_options`).

    ``workdir`` (the manifest's folder) is the DAG bag (:mod:`kubedag.local.bag`): its Pools, ConfigMaps and
    Secrets (``variablesFrom``, ``connectionsFrom``, notifier URLs) and the DAGs ``trigger`` tasks run.
    Notifications (``onFailure``/``onSuccess``/``onRetry`` of tasks and of the DAG) are sent as task instances
    and the run change, and delivered (at most :data:`NOTIFY_FLUSH_SECONDS` of waiting) before this returns.
    A task's ``sla`` never fires here: SLAs apply to scheduled runs only (:func:`kubedag.core.notify.sla_misses`,
    Airflow 2's rule), and a local run is manual.

    Raises:
        RuntimeError: if the metadata DB cannot be written (the run is stopped, its tries killed), or the
            run cannot progress (e.g. a task waits for a Pool the folder does not define; the message names it).
        ValueError: a ``variablesFrom``/``connectionsFrom`` source is not in the folder (nothing was run).
    """
    logical_date = logical_date or utcnow()
    run = manual_run(dag, logical_date, conf or {}, run_id or None)
    recorder = writer or DBWriter(database_url)
    try:
        options = local_options(dag, workdir=workdir, logs_dir=config.logs_dir(), database_url=database_url,
                                parallelism=parallelism, no_retry_delay=no_retry_delay, make_sender=make_sender)
    except BaseException:
        recorder.close()
        raise
    recorder.setup(dag, RunSetup(
        dag_id=dag.dag_id, spec=dict(dag.spec), namespace=dag.namespace, run_id=run.run_id,
        run_type=str(run.run_type), logical_date=run.logical_date, data_interval_start=run.data_interval_start,
        data_interval_end=run.data_interval_end, conf=dict(run.conf), queued_at=utcnow(),
    ))
    logs = options.logs_dir
    if live:
        from kubedag.local.view import LiveView

        view: Any = LiveView(dag, run)
    else:
        view = QuietView()
    images = sorted({t.image for t in dag.tasks.values() if t.image})
    view.note(
        f"running {len(dag.tasks)} tasks of {dag.dag_id} as local processes in {workdir}"
        + (f" (task images are not used locally: {', '.join(images)})" if images else "")
    )
    runner = LocalRunner(dag, run, recorder, options, on_update=view.update)
    try:
        with view:
            final = runner.run()
    finally:
        try:
            recorder.close()
        finally:
            if options.sender is not None:
                options.sender.flush(NOTIFY_FLUSH_SECONDS)
                options.sender.close()
    result = LocalRunResult(final, {t: runner.tis[t] for t in dag.tasks if t in runner.tis}, logs)
    view.summary(result)
    return result


class QuietView:
    """The live view's interface, printing nothing (``-o json``)."""

    def note(self, message: str) -> None:
        """Print nothing."""

    def update(self, run: engine.DagRun, tis: Mapping[str, engine.TaskInstance]) -> None:
        """Show nothing."""

    def summary(self, result: LocalRunResult) -> None:
        """Print nothing."""

    def __enter__(self) -> QuietView:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def test_task(
    dag: DAG, task_id: str, *, workdir: Path, logical_date: datetime | None = None, conf: Mapping[str, Any] | None = None,
    database_url: str | None = None,
) -> int:
    """Run one task instance now in the foreground, ignoring dependencies, as Airflow 2.10's ``airflow tasks
    test``: the task runs as ``dags test`` runs it (:func:`local_options`: the folder's variables, connections and
    Pools; a ``trigger`` task triggers its DAG; an ``externalTask`` sensor reads the metadata DB), but a sensor
    pokes once (its check runs one time: exit 0 met, else "not met"). When the metadata DB holds a run of the DAG at
    ``logical_date`` (default now), the task runs in that run: its ``ti.xcom_pull`` reads that run's XComs and the
    XComs it pushes are stored there; otherwise it runs in a new manual run that is not recorded. Its state is
    never recorded. Returns the process's exit code (1 for a template error, a missing command, or a sensor
    whose condition is not met).

    Raises:
        ValueError: a ``variablesFrom``/``connectionsFrom`` source is missing from the folder.
    """
    import json
    import tempfile

    from kubedag.core.xcom import NO_XCOM, parse_xcom

    from kubedag.store.local_runs import keep_xcoms, recorded_run  # SQLAlchemy: only when the DB is read

    logical_date = logical_date or utcnow()
    recorded, xcoms = recorded_run(dag.dag_id, logical_date, database_url)
    run = recorded or manual_run(dag, logical_date, conf or {})
    if conf and recorded is not None:
        run = replace(run, conf=dict(conf))
    task = dag.tasks[task_id]
    if task.sensor is not None and task.sensor.mode == "poke":  # one poke: the check without the poke loop
        task = replace(task, sensor=task.sensor.model_copy(update={"mode": "reschedule"}))
        dag = replace(dag, tasks={**dag.tasks, task_id: task})
    options = local_options(dag, workdir=workdir, logs_dir=config.logs_dir(), database_url=database_url)
    runner = LocalRunner(dag, run, QuietRecorder(), options)
    runner._xcoms.update(xcoms)  # what ti.xcom_pull reads (the runner's XComs of this run)
    ti = engine.TaskInstance(task_id, try_number=1)
    try:
        argv, own_env = runner.command(ti)
    except templating.TemplateError as exc:
        print(f"error: template error in {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not argv:
        print("error: task has no command", file=sys.stderr)
        return 1
    where = f"in recorded run {run.run_id}" if recorded is not None else f"as {run.run_id} (not recorded)"
    print(f"kubedag: testing task {task_id} of {dag.dag_id} {where}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="kubedag-tasks-test-") as tmp:
        xcom_file = Path(tmp) / "xcom.json"
        env = {**runner._base_env, **own_env, XCOM_PATH_ENV: str(xcom_file)}
        try:
            code = _run_masked(argv, workdir, env, runner.mask if runner._mask is not None else None)
        except OSError as exc:
            print(f"error: cannot start {argv[0]!r}: {exc.strerror or exc}", file=sys.stderr)
            return 127
        try:
            pushed = parse_xcom(xcom_file.read_bytes(), multiple_outputs=task.multiple_outputs) \
                if code == 0 and xcom_file.exists() else {}
        except ValueError as exc:
            print(f"error: invalid XCom: {exc}", file=sys.stderr)
            return 1
    if task.sensor is not None:
        met = code == 0
        print(f"kubedag: sensor {task_id}: {'condition met' if met else 'condition not met'} (one poke)",
              file=sys.stderr)
        code = 0 if met else 1
    for key, value in pushed.items():
        if value is not NO_XCOM:
            print(runner.mask(f"kubedag: XCom {key} = {json.dumps(value)}"), file=sys.stderr)
    if pushed and recorded is not None:
        keep_xcoms(dag.dag_id, run.run_id, task_id, pushed, database_url)
    return code


def _run_masked(argv: list[str], cwd: Path, env: Mapping[str, str], mask: Any) -> int:
    """Run ``argv`` in the foreground; its exit code. With ``mask`` (the DAG has secret values), its stdout and
    stderr are copied to ours line by line with those values replaced by ``***``, as Airflow's secrets masker
    filters task output."""
    if mask is None:
        return subprocess.call(argv, cwd=cwd, env=env)  # noqa: S603
    import threading

    def copy(source: Any, target: Any) -> None:
        for line in source:
            target.write(mask(line))
            target.flush()

    with subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,  # noqa: S603
                          text=True, errors="replace") as proc:
        err = threading.Thread(target=copy, args=(proc.stderr, sys.stderr), daemon=True)
        err.start()
        copy(proc.stdout, sys.stdout)
        err.join()
    return proc.returncode


class QuietRecorder:
    """A :class:`~kubedag.local.runner.Recorder` that records nothing (``tasks test``)."""

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Record nothing."""


__all__ = ["LocalRunResult", "QuietRecorder", "QuietView", "local_options", "run_dag_locally", "test_task"]

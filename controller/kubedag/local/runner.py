"""Run one DAG run to completion on this machine: the engine decides, local processes execute.

The loop is level-triggered, like the Kubernetes controller: every pass hands the DAG run and all its
task instances to :func:`kubedag.core.engine.plan`, applies the plan (launch, kill, new states), records the
pass in the metadata DB in one transaction, then sleeps until a process exits or the plan's
``wake_at`` (a retry falling due, an execution timeout) arrives. A finished try starts its successors
on the very next pass, with no polling interval in between.

What a try runs and what its end means come from :mod:`kubedag.core.execution`, as for Kubernetes pods: the
command (or a built-in sensor check, wrapped in the poke loop in ``poke`` mode), ``$KUBEDAG_XCOM_PATH`` (a
fresh file next to the try's log) and ``$KUBEDAG_CONN_<ID>``; at its end :func:`kubedag.core.execution.finish_try`
(XComs, branch skips, a sensor's reschedule, exit 99 = skipped). The tasks the Kubernetes controller carries
out itself run here as local programs: an ``externalTask`` sensor as ``python -m kubedag.sensors external``
against the metadata DB, a ``trigger`` task as ``python -m kubedag.cli.trigger``. A rescheduled sensor's
next poke starts the same try number again and appends to the same log. Secret values (``variablesFrom``
Secrets, connections) are masked in try logs (the header when written, the process output once the try
ended), reasons and notifications. Pools (``RunOptions.pools``) limit the tries of this run by slots.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from kubedag.core import engine, execution, templating
from kubedag.core.tries import TryRecord, context_env, describe_exit, render_try
from kubedag.core.spec.dag import DAG
from kubedag.core.states import DagRunState, TaskInstanceState
from kubedag.core.xcom import XCOM_PATH_ENV

XComRows = list[tuple[str, int, dict]]

DEFAULT_PARALLELISM = 32
"""Airflow 2.10's ``[core] parallelism``: at most this many tries run at once on this machine."""


def utcnow() -> datetime:
    """The wall clock, UTC-aware (the runner's only clock; tests pass their own)."""
    return datetime.now(timezone.utc)


def xcom_path(log: Path) -> Path:
    """The XCom file of the try whose log is ``log``: ``attempt=<try>.xcom.json`` next to it."""
    return log.with_name(log.stem + ".xcom.json")


def log_path(logs_dir: Path, dag_id: str, run_id: str, task_id: str, try_number: int) -> Path:
    """Where a try's log lives: Airflow's default ``log_filename_template`` under ``logs_dir``.

    ``<logs_dir>/dag_id=<dag>/run_id=<run>/task_id=<task>/attempt=<try>.log``
    """
    return logs_dir / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}" / f"attempt={try_number}.log"


class Recorder(Protocol):
    """Where the runner records each pass (the metadata DB in practice; a list in tests)."""

    def save(self, run: engine.DagRun, tis: list[engine.TaskInstance], tries: list[TryRecord]) -> None:
        """Persist the run, the changed task instances and try history rows, atomically. A pass in which tries
        pushed XComs also passes ``xcoms=[(task_id, try_number, {key: value})]`` (only then)."""


@dataclass
class RunOptions:
    """How the local runner executes tries.

    ``workdir``: every try's working directory (``kubedag dags test`` uses the manifest's folder).
    ``logs_dir``: root of the per-try log files. ``parallelism``: tries running at once at most.
    ``no_retry_delay``: start retries at once instead of after ``retryDelay`` (for tests).
    ``extra_env``: added to every try's environment (after the inherited environment).
    ``pools``: pool name -> slots (:attr:`kubedag.local.bag.DagBag.pools`); None: pools are not enforced.
    ``variables`` / ``connections`` / ``masker``: from :func:`kubedag.core.secrets.load_sources` (None: none).
    ``sender``: a :class:`kubedag.http.notify.WebhookSender` for the DAG's notifiers (None: no notifier).
    ``database_url``: the metadata DB, for ``externalTask`` sensors and ``trigger`` tasks.
    ``dag_folder``: where ``trigger`` tasks find their target DAG (default: ``workdir``).
    ``python``: the interpreter of built-in checks and triggers.
    """

    workdir: Path
    logs_dir: Path
    parallelism: int = DEFAULT_PARALLELISM
    no_retry_delay: bool = False
    extra_env: Mapping[str, str] = field(default_factory=dict)
    pools: Mapping[str, int] | None = None
    variables: Mapping[str, str] | None = None
    connections: Mapping[str, str] | None = None
    masker: Any = None
    sender: Any = None
    database_url: str | None = None
    dag_folder: Path | None = None
    python: str = sys.executable


class LocalRunner:
    """Drives one DAG run: ``LocalRunner(dag, run, recorder, options).run()`` returns the finished run.

    ``tis`` may hold task instances from an earlier, interrupted attempt; the runner resumes from them
    (task instances found RUNNING without a process here are failed as "process lost", as Airflow's
    scheduler does with zombies, and retried by their policy). ``on_update(run, tis)`` is called after
    every pass, for a live view.
    """

    def __init__(
        self,
        dag: DAG,
        run: engine.DagRun,
        recorder: Recorder,
        options: RunOptions,
        *,
        tis: Mapping[str, engine.TaskInstance] | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_update: Callable[[engine.DagRun, Mapping[str, engine.TaskInstance]], None] | None = None,
    ) -> None:
        from kubedag.local.processes import ProcessLauncher

        self.dag = dag
        self.run_ = run
        self.recorder = recorder
        self.options = options
        self.clock = clock
        self.on_update = on_update
        self.tis: dict[str, engine.TaskInstance] = dict(tis or {})
        self.launcher = ProcessLauncher()
        self._base_env = {**os.environ, **options.extra_env}
        self._xcoms: dict[tuple[str, str], Any] = {}
        self._env_error: str | None = None
        if options.connections:
            from kubedag.core.secrets import connections_env

            try:
                self._base_env.update(connections_env(options.connections))
            except ValueError as exc:
                self._env_error = f"spec.connectionsFrom: {exc}"
        masker = options.masker
        self._mask: Callable[[str], str] | None = masker.mask if masker is not None and len(masker) else None

    # -- helpers ----------------------------------------------------------------------------------
    def mask(self, text: str | None) -> str | None:
        """``text`` with secret values replaced by ``***`` (unchanged when there is no secret)."""
        return self._mask(text) if self._mask is not None and text else text

    def _mask_log(self, path: Path) -> None:
        """Mask secrets in a finished try's log file, in place."""
        if self._mask is None:
            return
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
            masked = self._mask(text)
            if masked != text:
                path.write_text(masked, encoding="utf-8")
        except OSError:
            pass

    def _pull(self, task_id: str, key: str) -> Any:
        """An XCom of this run (newest try that pushed ``key``), or :data:`kubedag.core.xcom.NO_XCOM`."""
        from kubedag.core.xcom import NO_XCOM

        return self._xcoms.get((task_id, key), NO_XCOM)

    def _log_of(self, ti: engine.TaskInstance) -> str | None:
        path = log_path(self.options.logs_dir, self.run_.dag_id, self.run_.run_id, ti.task_id, ti.try_number)
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def _set(self, task_id: str, ti: engine.TaskInstance, changed: dict[str, engine.TaskInstance]) -> None:
        """Record a task instance change of this pass, notifying the task's notifiers of it."""
        before = self.tis.get(task_id)
        changed[task_id] = self.tis[task_id] = ti
        if self.options.sender is not None:
            from kubedag.core.notify import task_notifications

            for notifier, n in task_notifications(self.dag, self.run_, before, ti, log=lambda: self._log_of(ti)):
                self.options.sender.send(notifier, n)

    def _pool_free(self) -> dict[str, int] | None:
        """Pool -> slots free: each pool's slots minus those held by this run's queued and running tries."""
        if self.options.pools is None:
            return None
        free = dict(self.options.pools)
        for task_id, ti in self.tis.items():
            if ti.state in engine.ACTIVE_STATES:
                task = self.dag.tasks.get(task_id)
                if task is not None and task.pool in free:
                    free[task.pool] -= task.pool_slots
        return free

    # -- one pass -------------------------------------------------------------------------------
    def _pass(self, finished: list[tuple[tuple[str, int], int]]) -> engine.Plan:
        now = self.clock()
        changed: dict[str, engine.TaskInstance] = {}
        tries: list[TryRecord] = []
        xcoms: XComRows = []
        for (task_id, try_number), code in finished:
            proc = self.launcher.reap((task_id, try_number))
            ti = self.tis.get(task_id)
            log_location = str(proc.log_path) if proc else None
            if proc is not None:
                self._mask_log(proc.log_path)
            if ti is None or ti.state != TaskInstanceState.RUNNING or ti.try_number != try_number:
                # already decided (e.g. killed for a timeout): only the try's end is recorded
                reason = (proc.killed_reason if proc else None) or describe_exit(code)
                start = self._start_of(task_id, try_number)
                tries.append(self._try_end(task_id, try_number, False, now, code, reason, log_location, start))
                continue
            xcom = None
            if code == 0 and proc is not None:
                xcom_file = xcom_path(proc.log_path)
                if xcom_file.exists():
                    xcom = xcom_file.read_bytes()
            end = execution.finish_try(self.dag, self.run_, self.tis, ti, exit_code=code,
                                       reason=None if code == 0 else describe_exit(code), xcom=xcom, now=now)
            new = replace(end.ti, reason=self.mask(end.ti.reason))
            if new.state == TaskInstanceState.UP_FOR_RETRY and self.options.no_retry_delay:
                new = replace(new, next_retry_at=now)
            self._set(task_id, new, changed)
            for other, update in end.updates.items():
                self._set(other, update, changed)
            if end.xcoms:
                for key, value in end.xcoms.items():
                    self._xcoms[(task_id, key)] = value
                xcoms.append((task_id, try_number, dict(end.xcoms)))
            tries.append(TryRecord(task_id, try_number, end.state, ti.start_date, now, code,
                                   self.mask(end.reason), log_location))

        before_run = self.run_
        plan = engine.plan(
            self.dag, self.run_, self.tis, now,
            free_slots=max(0, self.options.parallelism - len(self.launcher.running)), pool_free=self._pool_free(),
        )
        self.run_ = plan.run
        for task_id, ti in plan.updates.items():
            if ti.state == TaskInstanceState.UP_FOR_RETRY and self.options.no_retry_delay:
                ti = replace(ti, next_retry_at=now)
            self._set(task_id, ti, changed)
        for kill in plan.kills:
            proc = self.launcher.running.get((kill.task_id, kill.try_number))
            if proc is not None:
                with open(proc.log_path, "a", encoding="utf-8") as log:
                    log.write(f"[{now.isoformat()}] kubedag: killing the process group: {kill.reason}\n")
                proc.kill(kill.reason)
        for start in plan.starts:
            ti, record = self._launch(self.tis[start.task_id], now)
            self._set(start.task_id, ti, changed)
            tries.append(record)
        if xcoms:
            self.recorder.save(self.run_, list(changed.values()), tries, xcoms=xcoms)  # type: ignore[call-arg]
        else:
            self.recorder.save(self.run_, list(changed.values()), tries)
        if self.options.sender is not None:
            from kubedag.core.notify import run_notifications

            for notifier, n in run_notifications(self.dag, before_run, self.run_):
                self.options.sender.send(notifier, n)
        if self.on_update is not None:
            self.on_update(self.run_, self.tis)
        return plan

    def _outcome(self, ti: engine.TaskInstance, ok: bool, now: datetime, code: int | None, reason: str | None) -> engine.TaskInstance:
        new = engine.apply_outcome(self.dag, self.run_, ti, succeeded=ok, now=now, exit_code=code, reason=reason)
        if new.state == TaskInstanceState.UP_FOR_RETRY and self.options.no_retry_delay:
            new = replace(new, next_retry_at=now)
        return new

    @staticmethod
    def _try_end(task_id, try_number, ok, now, code, reason, log_location, start=None) -> TryRecord:  # noqa: ANN001
        return TryRecord(
            task_id=task_id,
            try_number=try_number,
            state=TaskInstanceState.SUCCESS if ok else TaskInstanceState.FAILED,
            start_date=start,
            end_date=now,
            exit_code=code,
            reason=reason,
            log_location=log_location,
        )

    def _argv(self, ti: engine.TaskInstance) -> tuple[list[str], dict[str, str]]:
        """The try's command line and its own environment (rendered fields' ``env``).

        Raises:
            templating.TemplateError: a templated field failed to render.
            ValueError: the task cannot run locally (the message says why).
        """
        task = self.dag.tasks[ti.task_id]
        o = self.options
        fields = render_try(self.dag, self.run_, ti.task_id, ti.try_number, xcom_pull=self._pull,
                            variables=o.variables, connections=o.connections)
        render = execution.template_renderer(self.dag, self.run_, ti.task_id, ti.try_number, xcom_pull=self._pull,
                                             variables=o.variables, connections=o.connections)
        if task.trigger is not None:
            return self._trigger_argv(task, render), fields.env
        if task.sensor is not None and task.sensor.external_task is not None:
            return self._external_argv(task, render), fields.env
        return execution.try_argv(self.dag, ti.task_id, fields.command, fields.args, render, python=o.python), fields.env

    def _external_argv(self, task: Any, render: Callable[[str, str], str]) -> list[str]:
        """``python -m kubedag.sensors external ...`` for an ``externalTask`` sensor (poke-wrapped in poke mode)."""
        from kubedag.core.sensors import external_check_problems, external_logical_dates, poke_command

        sensor = task.sensor
        check = sensor.external_task
        problems = external_check_problems(check)
        if problems:
            raise ValueError("; ".join(problems))
        if not self.options.database_url:
            raise ValueError("an externalTask sensor needs the metadata DB's URL (RunOptions.database_url)")
        dates = external_logical_dates(check, self.run_.logical_date, render)
        argv = [self.options.python, "-m", "kubedag.sensors", "external", f"--database-url={self.options.database_url}",
                f"--dag={check.dag}"]
        if check.task:
            argv.append(f"--task={check.task}")
        argv += [f"--date={d.isoformat()}" for d in dates]
        argv += [f"--allowed={s}" for s in check.allowed_states] + [f"--failed={s}" for s in check.failed_states]
        argv += [f"--skipped={s}" for s in check.skipped_states]
        if sensor.soft_fail:
            argv.append("--soft-fail")
        return poke_command(argv, sensor) if sensor.mode == "poke" else argv

    def _trigger_argv(self, task: Any, render: Callable[[str, str], str]) -> list[str]:
        """``python -m kubedag.cli.trigger ...`` for a ``trigger`` task, its fields rendered."""
        from kubedag.local.trigger import trigger_argv
        from kubedag.core.sensors import parse_logical_date

        spec = task.trigger
        if not self.options.database_url:
            raise ValueError("a trigger task needs the metadata DB's URL (RunOptions.database_url)")
        conf = execution.render_value(dict(spec.conf), render, "trigger.conf")
        when = self.clock()
        if spec.logical_date is not None:
            when = parse_logical_date(render(spec.logical_date, "trigger.logicalDate"), "trigger.logicalDate")
        run_id = render(spec.trigger_run_id, "trigger.triggerRunId") if spec.trigger_run_id else None
        return trigger_argv(
            python=self.options.python, folder=self.options.dag_folder or self.options.workdir, dag=spec.dag,
            database_url=self.options.database_url, logical_date=when, conf=conf, run_id=run_id,
            reset_dag_run=spec.reset_dag_run, wait_for_completion=spec.wait_for_completion,
            allowed=spec.allowed_states, failed=spec.failed_states,
        )

    def _launch(self, ti: engine.TaskInstance, now: datetime) -> tuple[engine.TaskInstance, TryRecord]:
        """Render and start one queued try; a template or start error fails the try, not the runner."""
        task = self.dag.tasks[ti.task_id]
        run = self.run_
        path = log_path(self.options.logs_dir, run.dag_id, run.run_id, ti.task_id, ti.try_number)
        path.parent.mkdir(parents=True, exist_ok=True)
        xcom_file = xcom_path(path)
        if xcom_file.exists():
            xcom_file.unlink()  # a rescheduled sensor's earlier poke
        running = engine.mark_running(ti, now)
        error: str | None = self._env_error
        argv: list[str] = []
        own_env: Mapping[str, str] = {}
        if error is None:
            try:
                argv, own_env = self._argv(ti)
                if not argv:
                    error = "task has no command: locally a task needs `command` (the image's entrypoint is not used)"
            except templating.TemplateError as exc:
                error = f"template error in {exc}"
            except ValueError as exc:
                error = str(exc)
        header = f"[{now.isoformat()}] kubedag: {run.dag_id} {run.run_id} {ti.task_id} try {ti.try_number} of {engine.tries_allowed(task, ti.max_tries)}\n"
        if error is None:
            env = {**self._base_env, **own_env, **context_env(run, ti.task_id, ti.try_number),
                   XCOM_PATH_ENV: str(xcom_file)}
            with open(path, "a", encoding="utf-8") as log:
                log.write(self.mask(header + f"[{now.isoformat()}] kubedag: running {shlex.join(argv)}\n") or "")
            try:
                self.launcher.start(
                    (ti.task_id, ti.try_number), argv, env=env, cwd=self.options.workdir, log_path=path
                )
            except OSError as exc:
                error = f"cannot start {argv[0]!r}: {exc.strerror or exc}"
        if error is not None:
            error = self.mask(error) or error
            with open(path, "a", encoding="utf-8") as log:
                log.write(header + f"[{now.isoformat()}] kubedag: ERROR {error}\n")
            failed = self._outcome(running, False, now, None, error)
            record = TryRecord(ti.task_id, ti.try_number, TaskInstanceState.FAILED, now, now, None, error, str(path))
            return failed, record
        record = TryRecord(ti.task_id, ti.try_number, TaskInstanceState.RUNNING, running.start_date, log_location=str(path))
        return running, record

    # -- the loop ---------------------------------------------------------------------------------
    def _recover_lost(self) -> list[tuple[tuple[str, int], int]]:
        """Task instances RUNNING or QUEUED from an interrupted attempt have no process here: fail them."""
        lost = []
        for task_id, ti in self.tis.items():
            if ti.state in (TaskInstanceState.RUNNING, TaskInstanceState.QUEUED):
                self.tis[task_id] = replace(ti, state=TaskInstanceState.RUNNING, start_date=ti.start_date or self.clock())
                lost.append(((task_id, ti.try_number), -int(signal.SIGKILL)))
        return lost

    def run(self) -> engine.DagRun:
        """Run passes until the DAG run is finished; returns it. Ctrl-C kills running tries and re-raises."""
        finished = self._recover_lost()
        try:
            while True:
                plan = self._pass(finished)
                if self.run_.state in (DagRunState.SUCCESS, DagRunState.FAILED):
                    self._record_killed()
                    return self.run_
                idle = not (plan.starts or plan.updates or plan.kills or self.launcher.running)
                if idle and plan.wake_at is None and not finished:
                    raise RuntimeError(self._stuck(plan))
                finished = self._wait(self._wake_at(plan), immediate=bool(plan.starts) and not self.launcher.running)
        except BaseException:
            self.launcher.kill_all("runner interrupted")
            raise

    def _stuck(self, plan: engine.Plan) -> str:
        """The "cannot progress" message: what each task waits for, naming pools that do not exist."""
        waits = "; ".join(f"{t}: {' '.join(r)}" for t, r in plan.waiting.items()) or "no task can start"
        message = f"DAG run {self.run_.run_id} cannot progress: {waits}"
        pools = self.options.pools or {}
        missing = sorted({self.dag.tasks[t].pool for t in plan.waiting if self.dag.tasks[t].pool not in pools})
        if self.options.pools is not None and missing:
            where = self.options.dag_folder or self.options.workdir
            message += (f" (no Pool named {', '.join(missing)}: add a manifest with apiVersion: kubedag.io/v1alpha1, "
                        f"kind: Pool, metadata.name and spec.slots to {where})")
        small = sorted({f"{t.pool} has {pools[t.pool]} slots, task {t.task_id} needs {t.pool_slots}"
                        for t in (self.dag.tasks[w] for w in plan.waiting)
                        if t.pool in pools and t.pool_slots > pools[t.pool]})
        if small:
            message += f" (pool too small: {'; '.join(small)})"
        return message

    def _start_of(self, task_id: str, try_number: int) -> datetime | None:
        """When that try started, if the task instance still describes it."""
        ti = self.tis.get(task_id)
        return ti.start_date if ti is not None and ti.try_number == try_number else None

    def _record_killed(self) -> None:
        """After the run finished: wait for tries killed in its last pass and record how they ended."""
        if not self.launcher.running:
            return
        self.launcher.wait_killed()
        now = self.clock()
        tries = []
        for (task_id, try_number), code in self._wait(None, immediate=True):
            proc = self.launcher.reap((task_id, try_number))
            reason = (proc.killed_reason if proc else None) or describe_exit(code)
            log_location = str(proc.log_path) if proc else None
            tries.append(self._try_end(task_id, try_number, False, now, code, reason, log_location, self._start_of(task_id, try_number)))
        if tries:
            self.recorder.save(self.run_, [], tries)

    def _wake_at(self, plan: engine.Plan) -> datetime | None:
        """The plan's ``wake_at``, or earlier: the execution timeout of a try started in this pass."""
        times = [plan.wake_at] if plan.wake_at else []
        for start in plan.starts:
            ti = self.tis[start.task_id]
            timeout = self.dag.tasks[start.task_id].execution_timeout
            if ti.state == TaskInstanceState.RUNNING and timeout is not None and ti.start_date is not None:
                times.append(ti.start_date + timeout)
        return min(times, default=None)

    def _wait(self, wake_at: datetime | None, immediate: bool) -> list[tuple[tuple[str, int], int]]:
        """Block until a process exits or ``wake_at``; then drain every exit already reported."""
        import queue

        events = []
        if not immediate:
            timeout = None
            if wake_at is not None:
                timeout = max(0.0, (wake_at - self.clock()).total_seconds())
            elif not self.launcher.running:
                timeout = 0.0  # nothing can change by itself: re-plan (the engine reports deadlocks)
            try:
                events.append(self.launcher.exits.get(timeout=timeout) if timeout != 0.0 else self.launcher.exits.get_nowait())
            except queue.Empty:
                pass
        while True:
            try:
                events.append(self.launcher.exits.get_nowait())
            except queue.Empty:
                return events

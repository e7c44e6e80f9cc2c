"""Run one DAG run to completion on this machine: the engine decides, local processes execute.

The loop is level-triggered, like the Kubernetes controller: every pass hands the DAG run and all its
task instances to :func:`kubedag.engine.plan`, applies the plan (launch, kill, new states), records the
pass in the metadata DB in one transaction, then sleeps until a process exits or the plan's
``wake_at`` (a retry falling due, an execution timeout) arrives. A finished try starts its successors
on the very next pass, with no polling interval in between.
"""

from __future__ import annotations

import os
import shlex
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from kubedag import engine, templating
from kubedag.tries import TryRecord, context_env, describe_exit, render_try
from kubedag.spec.dag import DAG
from kubedag.states import DagRunState, TaskInstanceState

DEFAULT_PARALLELISM = 32
"""Airflow 2.10's ``[core] parallelism``: at most this many tries run at once on this machine."""


def utcnow() -> datetime:
    """The wall clock, UTC-aware (the runner's only clock; tests pass their own)."""
    return datetime.now(timezone.utc)


def log_path(logs_dir: Path, dag_id: str, run_id: str, task_id: str, try_number: int) -> Path:
    """Where a try's log lives: Airflow's default ``log_filename_template`` under ``logs_dir``.

    ``<logs_dir>/dag_id=<dag>/run_id=<run>/task_id=<task>/attempt=<try>.log``
    """
    return logs_dir / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}" / f"attempt={try_number}.log"


class Recorder(Protocol):
    """Where the runner records each pass (the metadata DB in practice; a list in tests)."""

    def save(self, run: engine.DagRun, tis: list[engine.TaskInstance], tries: list[TryRecord]) -> None:
        """Persist the run, the changed task instances and try history rows, atomically."""


@dataclass
class RunOptions:
    """How the local runner executes tries.

    ``workdir``: every try's working directory (``kubedag dags test`` uses the manifest's folder).
    ``logs_dir``: root of the per-try log files. ``parallelism``: tries running at once at most.
    ``no_retry_delay``: start retries at once instead of after ``retryDelay`` (for tests).
    ``extra_env``: added to every try's environment (after the inherited environment).
    """

    workdir: Path
    logs_dir: Path
    parallelism: int = DEFAULT_PARALLELISM
    no_retry_delay: bool = False
    extra_env: Mapping[str, str] = field(default_factory=dict)


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

    # -- one pass -------------------------------------------------------------------------------
    def _pass(self, finished: list[tuple[tuple[str, int], int]]) -> engine.Plan:
        now = self.clock()
        changed: dict[str, engine.TaskInstance] = {}
        tries: list[TryRecord] = []
        for (task_id, try_number), code in finished:
            proc = self.launcher.reap((task_id, try_number))
            ti = self.tis.get(task_id)
            log_location = str(proc.log_path) if proc else None
            if ti is None or ti.state != TaskInstanceState.RUNNING or ti.try_number != try_number:
                # already decided (e.g. killed for a timeout): only the try's end is recorded
                reason = (proc.killed_reason if proc else None) or describe_exit(code)
                start = self._start_of(task_id, try_number)
                tries.append(self._try_end(task_id, try_number, False, now, code, reason, log_location, start))
                continue
            ok = code == 0
            reason = None if ok else describe_exit(code)
            new = self._outcome(ti, ok, now, code, reason)
            changed[task_id] = self.tis[task_id] = new
            tries.append(self._try_end(task_id, try_number, ok, now, code, reason, log_location, ti.start_date))

        plan = engine.plan(
            self.dag, self.run_, self.tis, now, free_slots=max(0, self.options.parallelism - len(self.launcher.running))
        )
        self.run_ = plan.run
        for task_id, ti in plan.updates.items():
            if ti.state == TaskInstanceState.UP_FOR_RETRY and self.options.no_retry_delay:
                ti = replace(ti, next_retry_at=now)
            changed[task_id] = self.tis[task_id] = ti
        for kill in plan.kills:
            proc = self.launcher.running.get((kill.task_id, kill.try_number))
            if proc is not None:
                with open(proc.log_path, "a", encoding="utf-8") as log:
                    log.write(f"[{now.isoformat()}] kubedag: killing the process group: {kill.reason}\n")
                proc.kill(kill.reason)
        for start in plan.starts:
            ti, record = self._launch(self.tis[start.task_id], now)
            changed[start.task_id] = self.tis[start.task_id] = ti
            tries.append(record)
        self.recorder.save(self.run_, list(changed.values()), tries)
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

    def _launch(self, ti: engine.TaskInstance, now: datetime) -> tuple[engine.TaskInstance, TryRecord]:
        """Render and start one queued try; a template or start error fails the try, not the runner."""
        task = self.dag.tasks[ti.task_id]
        run = self.run_
        path = log_path(self.options.logs_dir, run.dag_id, run.run_id, ti.task_id, ti.try_number)
        path.parent.mkdir(parents=True, exist_ok=True)
        running = engine.mark_running(ti, now)
        error: str | None = None
        try:
            fields = render_try(self.dag, run, ti.task_id, ti.try_number)
            argv = fields.command + fields.args
            if not argv:
                error = "task has no command: locally a task needs `command` (the image's entrypoint is not used)"
        except templating.TemplateError as exc:
            error = f"template error in {exc}"
        header = f"[{now.isoformat()}] kubedag: {run.dag_id} {run.run_id} {ti.task_id} try {ti.try_number} of {task.max_tries}\n"
        if error is None:
            env = {**self._base_env, **fields.env, **context_env(run, ti.task_id, ti.try_number)}
            with open(path, "a", encoding="utf-8") as log:
                log.write(header + f"[{now.isoformat()}] kubedag: running {shlex.join(argv)}\n")
            try:
                self.launcher.start(
                    (ti.task_id, ti.try_number), argv, env=env, cwd=self.options.workdir, log_path=path
                )
            except OSError as exc:
                error = f"cannot start {argv[0]!r}: {exc.strerror or exc}"
        if error is not None:
            with open(path, "a", encoding="utf-8") as log:
                log.write(header + f"[{now.isoformat()}] kubedag: ERROR {error}\n")
            failed = self._outcome(running, False, now, None, error)
            record = TryRecord(ti.task_id, ti.try_number, TaskInstanceState.FAILED, now, now, None, error, str(path))
            return failed, record
        record = TryRecord(ti.task_id, ti.try_number, TaskInstanceState.RUNNING, now, log_location=str(path))
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
                    raise RuntimeError(f"DAG run {self.run_.run_id} cannot progress: {dict(plan.waiting)}")
                finished = self._wait(self._wake_at(plan), immediate=bool(plan.starts) and not self.launcher.running)
        except BaseException:
            self.launcher.kill_all("runner interrupted")
            raise

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

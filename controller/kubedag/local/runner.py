"""The local executor: one DAG run's tries as local processes, driven by the shared run pass.

Each step observes the run's processes as :class:`~kubedag.core.runpass.TryObservation` (running, or ended with
an exit code and the try's XCom file), calls :func:`kubedag.core.runpass.run_pass` -- the same pass the Kubernetes
controller runs over pods, so pools, XCom, sensors, triggers, branching, callbacks and retries behave alike --
then carries out its result: start each :class:`~kubedag.core.runpass.LaunchRequest` as a process group (its
log file and XCom file next to each other, :mod:`kubedag.local.launch`), kill each
:class:`~kubedag.core.runpass.TryKill`, record the pass in the metadata DB in one transaction (under the scheduler
kept pending until it lands, :mod:`kubedag.local.pending`) and then send its notifications. The loop sleeps until a process exits or the pass's ``wake_at`` (a retry falling due, an
execution timeout) arrives, so a finished try starts its successors on the very next step.

``trigger`` tasks and ``externalTask`` sensors run as local programs (:func:`kubedag.local.launch.program_argv`)
whose exit code is their verdict. A rescheduled sensor's next poke starts the same try number again and appends
to the same log. Secret values (``variablesFrom`` Secrets, connections, the DB URL's password) are masked in
try logs (the header when written, the process output once the try ended), reasons and notifications.

A try's own failure never stops the loop: a template error, a program that cannot start, a log folder deleted
under it (a log clean-up running ``find ... -delete``) fail that try, which is retried by its policy.
"""

from __future__ import annotations

import os
import queue
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from kubedag.app.records import HOSTNAME
from kubedag.core import engine, templating
from kubedag.core.runpass import PassResult, RenderInputs, TryObservation, render_request, run_pass
from kubedag.core.spec.dag import DAG, DEFAULT_POOL, DEFAULT_POOL_SLOTS
from kubedag.core.states import DagRunState, TaskInstanceState
from kubedag.core.tries import TryRecord, context_env, describe_exit
from kubedag.core.xcom import NO_XCOM, XCOM_PATH_ENV
from kubedag.local import launch, metering
from kubedag.local.launch import exit_path, log_path, pid_path, xcom_path
from kubedag.local.pending import PendingWrites
from kubedag.local.pool_ledger import LEDGER_ENV, LEDGER_POLL, PoolLedger, blocked_by_others, held_slots
from kubedag.local.processes import ProcessLauncher, process_start_time, read_exit_file, read_pid_file

__all__ = ["DEFAULT_PARALLELISM", "LocalRunner", "Recorder", "RunOptions", "TryRecord", "context_env", "log_path",
           "utcnow", "xcom_path"]

DEFAULT_PARALLELISM = 32
"""Airflow 2.10's ``[core] parallelism``: at most this many tries run at once on this machine."""

Key = tuple[str, str, str, int]
"""A try's key in the :class:`~kubedag.local.processes.ProcessLauncher`: ``(dag_id, run_id, task_id, try_number)``."""


def utcnow() -> datetime:
    """The wall clock, UTC-aware (the runner's only clock; tests pass their own)."""
    return datetime.now(timezone.utc)


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
    ``database_url``: the metadata DB, for ``externalTask`` sensors and ``trigger`` tasks (passed to them in
    ``$KUBEDAG_DATABASE_URL``; its password is masked in logs).
    ``dag_folder``: where ``trigger`` tasks find their target DAG (default: ``workdir``).
    ``python``: the interpreter of built-in checks and triggers.
    ``track_files``: under the scheduler: write each try's pid file and exit file next to its log, so that a
    restarted scheduler can adopt a try whose process outlived it (:mod:`kubedag.local.processes`), and let
    ``trigger`` tasks only queue their run (the scheduler runs it); ``kubedag dags test`` does neither.
    ``pool_ledger``: a :mod:`kubedag.local.pool_ledger` file shared with the other local runners of this machine
    (a ``trigger`` task's child run among them): pools are counted over all of them (None: over this run only).
    ``metrics``: record Prometheus metrics (:mod:`kubedag.app.metrics`); the scheduler does and serves them,
    ``kubedag dags test`` does not (nothing would serve them, and their import slows its start).
    ``keep_pending``: a pass whose write fails stays pending (:class:`kubedag.local.pending.PendingWrites`) and no
    try starts until it landed (the scheduler, which retries); else the recorder's error propagates (``dags test``).
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
    track_files: bool = False
    pool_ledger: Path | None = None
    metrics: bool = False
    keep_pending: bool = False


class LocalRunner:
    """Drives one DAG run: ``LocalRunner(dag, run, recorder, options).run()`` returns the finished run.

    ``tis`` may hold task instances from an earlier, interrupted attempt; the runner resumes from them: a queued
    or running try whose process is still alive (its pid file names a live process with the same start time) is
    adopted and waited for, one whose process ended while nobody watched gets the exit code of its exit file,
    and one that was launched (its log exists) but has neither is failed as lost -- as Airflow's scheduler
    fails zombie tasks -- then retried by its policy. ``xcoms``: ``(task_id, key) -> value`` pushed earlier in
    this run. ``on_update(run, tis)`` is called after every pass, for a live view. ``launcher``: share one
    :class:`~kubedag.local.processes.ProcessLauncher` between runners (the scheduler does, and then calls
    :meth:`step` itself with the exits it dispatches).
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
        launcher: ProcessLauncher | None = None,
        xcoms: Mapping[tuple[str, str], Any] | None = None,
    ) -> None:
        self.dag = dag
        self.pass_dag = launch.process_view(dag)
        self.run_ = run
        self.recorder = recorder
        self.writes = PendingWrites(recorder, keep=options.keep_pending)
        """The passes not written yet (kept only with ``options.keep_pending``)."""
        self.options = options
        self.clock = clock
        self.on_update = on_update
        self.tis: dict[str, engine.TaskInstance] = dict(tis or {})
        self.launcher = launcher or ProcessLauncher()
        self.launched: dict[str, int] = {}
        self.ended: dict[tuple[str, int], TryObservation] = {}
        """Tries whose process ended (or never started), not yet taken in by a pass."""
        self.wake_at: datetime | None = None
        self._xcoms: dict[tuple[str, str], Any] = dict(xcoms or {})
        self._base_env = {**os.environ, **options.extra_env}
        self._env_error: str | None = None
        if options.connections:
            from kubedag.core.secrets import connections_env

            try:
                self._base_env.update(connections_env(options.connections))
            except ValueError as exc:
                self._env_error = f"spec.connectionsFrom: {exc}"
        self._mask = launch.masker_of(options.masker, launch.url_secrets(options.database_url))
        self._ledger = PoolLedger(options.pool_ledger) if options.pool_ledger and options.pools is not None else None
        self._others: dict[str, int] = {}
        """Pool name -> slots held by the other runners of the ledger (read in this step)."""
        if options.pool_ledger is not None:
            self._base_env[LEDGER_ENV] = str(options.pool_ledger)  # a trigger's child run counts the same pools
        self._resume()

    # -- helpers ----------------------------------------------------------------------------------
    def key(self, task_id: str, try_number: int) -> Key:
        """This run's try in the launcher."""
        return (self.run_.dag_id, self.run_.run_id, task_id, try_number)

    def mask(self, text: str | None) -> str | None:
        """``text`` with secret values replaced by ``***`` (unchanged when there is no secret)."""
        return self._mask(text) if self._mask is not None and text else text

    def log_of(self, task_id: str, try_number: int) -> Path:
        """The log file of one try of this run."""
        return log_path(self.options.logs_dir, self.run_.dag_id, self.run_.run_id, task_id, try_number)

    def _append(self, path: Path, text: str) -> None:
        """Append to a try's log, re-creating its folder if a clean-up deleted it; a log that cannot be written
        is not the run's failure (the try's own outcome is recorded in the DB either way)."""
        for _ in range(2):
            try:
                with open(path, "a", encoding="utf-8") as log:
                    log.write(text)
                return
            except FileNotFoundError:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError:
                return

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
        """An XCom of this run (newest try that pushed ``key``), or :data:`kubedag.core.xcom.NO_XCOM` (the run pass
        adds those of tries ending in the same pass)."""
        return self._xcoms.get((task_id, key), NO_XCOM)

    def _read_log(self, ti: engine.TaskInstance) -> str | None:
        try:
            return self.log_of(ti.task_id, ti.try_number).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    # -- resuming ---------------------------------------------------------------------------------
    def _resume(self) -> None:
        """Find the processes of queued and running tries from an earlier attempt (see the class docstring)."""
        for task_id, ti in self.tis.items():
            if ti.state not in (TaskInstanceState.QUEUED, TaskInstanceState.RUNNING) or ti.try_number < 1:
                continue
            log = self.log_of(task_id, ti.try_number)
            if not log.exists():
                continue  # never launched: the pass launches it
            self.launched[task_id] = ti.try_number
            if self.key(task_id, ti.try_number) in self.launcher.running:
                continue  # a shared launcher still runs it (a runner re-created after an error)
            code = read_exit_file(exit_path(log))
            pid = read_pid_file(pid_path(log))
            if code is None and pid is not None and pid[1] == process_start_time(pid[0]) and pid[1] is not None:
                self.launcher.adopt(self.key(task_id, ti.try_number), pid[0], log_path=log, exit_file=exit_path(log))
                self._append(log, f"[{self.clock().isoformat()}] kubedag: adopted process {pid[0]} after a restart\n")
            elif code is not None:
                self._append(log, f"[{self.clock().isoformat()}] kubedag: the process ended (exit code {code}) "
                                  "while no scheduler watched it\n")
                self._process_ended(task_id, ti.try_number, code, log, None)
            # else: lost -- launched, no process, no exit code: the pass fails it as lost

    # -- one step ---------------------------------------------------------------------------------
    def _process_ended(self, task_id: str, try_number: int, code: int, log: Path, killed: str | None) -> None:
        """Turn a process's end into the observation the next pass reads."""
        self._mask_log(log)
        message = None
        if code == 0:
            try:
                message = xcom_path(log).read_text(encoding="utf-8")
            except OSError:
                message = None
        now = self.clock()
        reason = None if code == 0 else (killed or describe_exit(code))
        self.ended[(task_id, try_number)] = TryObservation(
            "succeeded" if code == 0 else "failed", now, now, code, reason, HOSTNAME, message)

    def exited(self, key: Key, code: int) -> None:
        """Take in the exit of one of this run's processes (reported by the launcher)."""
        proc = self.launcher.reap(key)
        task_id, try_number = key[2], key[3]
        log = proc.log_path if proc is not None else self.log_of(task_id, try_number)
        self._process_ended(task_id, try_number, code, log, proc.killed_reason if proc is not None else None)

    def _observed(self) -> dict[tuple[str, int], TryObservation]:
        observed = dict(self.ended)
        for key, proc in self.launcher.running.items():
            if key[:2] == (self.run_.dag_id, self.run_.run_id) and (key[2], key[3]) not in observed:
                started = datetime.fromtimestamp(proc.started, timezone.utc)
                observed[(key[2], key[3])] = TryObservation("running", started, node=HOSTNAME)
        return observed

    def running_here(self) -> int:
        """This run's processes that are running."""
        return sum(1 for key in self.launcher.running if key[:2] == (self.run_.dag_id, self.run_.run_id))

    def step(self, *, free_slots: int | None = None, pool_free: Mapping[str, int] | None = None,
             may_start: bool = True) -> PassResult:
        """One pass (or a few: a pass that starts processes is followed at once by the one that sees them
        running), carried out and recorded. ``free_slots``: tries that may start (default: ``parallelism``
        less the launcher's running processes). ``pool_free``: open slots per pool over every run (default:
        ``options.pools`` less this run's use and that of the other runners of ``options.pool_ledger``, see
        :func:`kubedag.app.pools.pool_free`; the ledger stays locked during the step). A try waiting only for
        slots another runner holds makes the step wake again within :data:`LEDGER_POLL` seconds."""
        if pool_free is not None or self._ledger is None:
            return self._step(free_slots, pool_free, may_start)
        with self._ledger.transaction() as tx:
            self._others = tx.others
            result = self._step(free_slots, None, may_start)
            tx.hold(held_slots(self.dag, self.tis))
        if blocked_by_others(self.dag, result.waiting, self._others):
            poll = self.clock() + timedelta(seconds=LEDGER_POLL)
            self.wake_at = min(self.wake_at or poll, poll)
        return result

    def _step(self, free_slots: int | None, pool_free: Mapping[str, int] | None, may_start: bool) -> PassResult:
        """The passes of :meth:`step` with ``pool_free`` given or counted by :meth:`_pool_free`."""
        o = self.options
        before_run, before = self.run_, dict(self.tis)
        changed: dict[str, engine.TaskInstance] = {}
        tries: list[TryRecord] = []
        xcoms: dict[tuple[str, int], dict[str, Any]] = {}
        result: PassResult | None = None
        for _ in range(3):
            now = self.clock()
            slots = o.parallelism - len(self.launcher.running)
            slots = slots if free_slots is None else min(slots, free_slots)
            result = run_pass(
                self.pass_dag, self.run_, self.tis, self._observed(), self.launched, now, may_start=may_start,
                free_slots=max(0, slots), pool_free=self._pool_free() if pool_free is None else pool_free,
                pool_slots=None if o.pools is None else {DEFAULT_POOL: DEFAULT_POOL_SLOTS, **o.pools},
                lost=lambda t, n: f"the process of {t} try {n} is gone (lost after a restart or crash)",
                inputs=RenderInputs(xcom_pull=self._pull, variables=o.variables, connections=o.connections,
                                    python=o.python),
            )
            self.run_, self.tis = result.run, result.tis
            for key in result.finished:
                self.ended.pop(key, None)
            for (task_id, try_number) in list(self.ended):  # ends of tries already decided (killed, removed)
                ti = self.tis.get(task_id)
                if ti is None or ti.try_number != try_number or ti.state not in engine.ACTIVE_STATES:
                    del self.ended[(task_id, try_number)]
            for task_id, ti in result.changed.items():
                if ti.state == TaskInstanceState.UP_FOR_RETRY and o.no_retry_delay:
                    ti = replace(ti, next_retry_at=now)
                changed[task_id] = self.tis[task_id] = replace(ti, reason=self.mask(ti.reason))
            tries += [replace(t, reason=self.mask(t.reason), log_location=str(self.log_of(t.task_id, t.try_number)),
                              hostname=HOSTNAME, pod_name=None) for t in result.tries]
            for t in result.tries:  # failed before any process (a template error): say why in its log
                if t.state == TaskInstanceState.FAILED and self.launched.get(t.task_id) != t.try_number:
                    self._append(self.log_of(t.task_id, t.try_number),
                                 self._header(t.task_id, t.try_number, now) + f"[{now.isoformat()}] kubedag: ERROR {self.mask(t.reason)}\n")
            for (task_id, try_number), values in result.xcoms.items():
                xcoms[(task_id, try_number)] = values
                for k, v in values.items():
                    self._xcoms[(task_id, k)] = v
            for kill in result.kill:
                proc = self.launcher.running.get(self.key(kill.task_id, kill.try_number))
                if proc is not None:
                    self._append(proc.log_path, f"[{now.isoformat()}] kubedag: killing the process group: {kill.reason}\n")
                    proc.kill(kill.reason)
            failed_to_start = False
            if result.create and o.track_files and not self.writes.save(  # queued before launched: a restart
                    self.run_, [self.tis[r.task_id] for r in result.create], []):  # finds (and adopts) them
                break  # the DB did not take them: they stay queued, launched by a pass once it does
            for request in result.create:
                started = self._launch(request, now)
                ti = self.tis[request.task_id]
                metering.launched(self, request, now, started)
                if started is None:
                    failed_to_start = True
                elif ti.state == TaskInstanceState.QUEUED:  # as the next pass would, seeing it running
                    ti = changed[request.task_id] = self.tis[request.task_id] = engine.mark_running(ti, started)
                    tries.append(launch.started_try(ti, str(self.log_of(ti.task_id, ti.try_number)), request, self._mask))
            if not failed_to_start:
                break
        assert result is not None
        self.wake_at = result.wake_at
        for task_id, ti in changed.items():  # tries started in this step: the pass did not see them running
            timeout = self.dag.tasks[task_id].execution_timeout
            if ti.state == TaskInstanceState.RUNNING and timeout is not None and ti.start_date is not None:
                self.wake_at = min(self.wake_at or ti.start_date + timeout, ti.start_date + timeout)
        if o.no_retry_delay and any(t.state == TaskInstanceState.UP_FOR_RETRY for t in changed.values()):
            self.wake_at = self.clock()
        if self.ended:
            self.wake_at = self.clock()  # a try failed to start: the next pass (now) takes it in
        self._record(before_run, before, changed, tries, xcoms)
        return result

    def _record(self, before_run: engine.DagRun, before: Mapping[str, engine.TaskInstance],
                changed: Mapping[str, engine.TaskInstance], tries: list[TryRecord],
                xcoms: Mapping[tuple[str, int], Mapping[str, Any]]) -> None:
        """Write one step to the recorder (:attr:`writes`); its notifications are sent once that write landed (so
        a transition is notified once, after it is in the DB); then update the view."""
        run, notify = self.run_, None
        if self.options.sender is not None:
            from kubedag.local.notifications import send_notifications  # only DAGs with notifiers

            def notify() -> None:
                send_notifications(self.options.sender, self.dag, before_run, run, before, changed, tries,
                                   self._read_log)
        if xcoms or changed or tries or before_run.state != run.state:
            more = {"xcoms": [(t, n, dict(v)) for (t, n), v in xcoms.items()]} if xcoms else {}
            self.writes.save(run, list(changed.values()), tries, then=notify, **more)
        metering.stepped(self, before_run, before, changed, tries)
        if self.on_update is not None:
            self.on_update(self.run_, self.tis)

    def _pool_free(self) -> dict[str, int] | None:
        """Pool -> open slots of this run (``dags test``) less the slots the ledger's other runners hold:
        :func:`kubedag.app.pools.pool_free`."""
        if self.options.pools is None:
            return None
        from kubedag.app.pools import pool_free  # small; kept out of the import path of DAGs without pools

        free = pool_free(self.options.pools, [(self.dag, self.tis)])
        return {name: free.get(name, 0) - self._others.get(name, 0) for name in set(free) | set(self._others)}

    def command(self, ti: engine.TaskInstance) -> tuple[list[str], dict[str, str]]:
        """A try's command line and its own environment (rendered ``env``, the context variables, and for a
        ``trigger``/``externalTask`` program the DB URL), as :meth:`step` would start it (``kubedag tasks test``).

        Raises:
            kubedag.core.templating.TemplateError: a templated field failed to render.
            ValueError: the task cannot run locally (the message says why).
        """
        o = self.options
        request = render_request(self.pass_dag, self.run_, ti, RenderInputs(
            xcom_pull=self._pull, variables=o.variables, connections=o.connections, python=o.python))
        return self._argv(request, self.clock())

    def _argv(self, request: Any, now: datetime) -> tuple[list[str], dict[str, str]]:
        """A launch request's command line (a ``trigger``/``externalTask`` program's, see
        :func:`kubedag.local.launch.program_argv`) and environment (without the inherited one)."""
        o, run = self.options, self.run_
        render = launch.renderer(self.dag, run, request.task_id, request.try_number, self._pull, o)
        special = launch.program_argv(self.dag, run, request.task_id, request.try_number, render=render,
                                      python=o.python, folder=o.dag_folder or o.workdir, database_url=o.database_url,
                                      now=now, queue=o.track_files)
        env = dict(request.env)
        if special is None:
            return list(request.command) + list(request.args), env
        if o.database_url:
            env[launch.DATABASE_URL_ENV] = o.database_url
        return special, env

    def _header(self, task_id: str, try_number: int, now: datetime) -> str:
        """The first line kubedag writes in a try's log."""
        run = self.run_
        ti = self.tis.get(task_id)
        allowed = engine.tries_allowed(self.dag.tasks[task_id], ti.max_tries if ti is not None else None)
        return f"[{now.isoformat()}] kubedag: {run.dag_id} {run.run_id} {task_id} try {try_number} of {allowed}\n"

    def _launch(self, request: Any, now: datetime) -> datetime | None:
        """Start one :class:`~kubedag.core.runpass.LaunchRequest` as a process group; returns when it started.
        Any error fails that try (an observation the next pass reads; None is returned), never the runner."""
        task_id, try_number = request.task_id, request.try_number
        path = self.log_of(task_id, try_number)
        self.launched[task_id] = try_number
        header = self._header(task_id, try_number, now)
        error = self._env_error
        argv: list[str] = []
        env: dict[str, str] = {}
        if error is None:
            try:
                argv, env = self._argv(request, now)
                if not argv:
                    error = "task has no command: locally a task needs `command` (the image's entrypoint is not used)"
            except templating.TemplateError as exc:
                error = f"template error in {exc}"
            except ValueError as exc:
                error = str(exc)
        if error is None:
            error = self._start(request, argv, env, path, header, now)
        if error is None:
            return datetime.fromtimestamp(self.launcher.running[self.key(task_id, try_number)].started, timezone.utc)
        error = self.mask(error) or error
        self._append(path, header + f"[{now.isoformat()}] kubedag: ERROR {error}\n")
        self.ended[(task_id, try_number)] = TryObservation("failed", now, now, None, error, HOSTNAME)
        return None

    def _start(self, request: Any, argv: list[str], own_env: Mapping[str, str], path: Path, header: str,
               now: datetime) -> str | None:
        """Start the process; the error message if it could not start (the log folder re-created once if a
        clean-up deleted it meanwhile)."""
        env = {**self._base_env, **own_env}  # own_env holds the context variables (LaunchRequest.env)
        xcom_file = xcom_path(path)
        env[XCOM_PATH_ENV] = str(xcom_file)
        track = self.options.track_files
        error = None
        for _ in range(2):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                xcom_file.unlink(missing_ok=True)  # a rescheduled sensor's earlier poke
                if track:  # a rescheduled sensor's earlier poke's: a restart must not read them as this poke's
                    exit_path(path).unlink(missing_ok=True)
                    pid_path(path).unlink(missing_ok=True)
                with open(path, "a", encoding="utf-8") as log:
                    log.write(self.mask(header + f"[{now.isoformat()}] kubedag: running {shlex.join(argv)}\n") or "")
                self.launcher.start(self.key(request.task_id, request.try_number), argv, env=env, cwd=self.options.workdir,
                                    log_path=path, pid_file=pid_path(path) if track else None,
                                    exit_file=exit_path(path) if track else None)
                return None
            except FileNotFoundError as exc:  # the log folder was deleted under us, or the program is missing
                error = f"cannot start {argv[0]!r}: {exc.strerror or exc}"
            except OSError as exc:
                return f"cannot start {argv[0]!r}: {exc.strerror or exc}"
        return error

    # -- the loop (one run on its own) ------------------------------------------------------------
    def run(self) -> engine.DagRun:
        """Run steps until the DAG run is finished; returns it. Ctrl-C kills running tries and re-raises.

        Raises:
            RuntimeError: the run cannot progress (the message names what each task waits for).
        """
        try:
            while True:
                result = self.step()
                if self.run_.state in (DagRunState.SUCCESS, DagRunState.FAILED):
                    self._record_killed()
                    return self.run_
                if result.idle and not self.launcher.running and self.wake_at is None and not self.ended:
                    raise RuntimeError(self._stuck(result))
                self._take_exits(self._wait(self.wake_at))
        except BaseException:
            self.launcher.kill_all("runner interrupted")
            raise
        finally:
            if self._ledger is not None:
                self._ledger.release()

    def _take_exits(self, exits: list[tuple[Any, int]]) -> None:
        for key, code in exits:
            self.exited(key, code)

    def _stuck(self, result: PassResult) -> str:
        """The "cannot progress" message (:func:`kubedag.local.launch.stuck_message`)."""
        o = self.options
        return launch.stuck_message(self.dag, self.run_.run_id, result.waiting, o.pools, o.dag_folder or o.workdir)

    def _record_killed(self) -> None:
        """After the run finished: wait for tries killed in its last pass to be gone (their ends were recorded
        when they were killed)."""
        if self.running_here():
            self.launcher.wait_killed()
            for key, _code in self._wait(None, block=False):
                self.launcher.reap(key)

    def _wait(self, wake_at: datetime | None, block: bool = True) -> list[tuple[Any, int]]:
        """Block until a process exits or ``wake_at``; then drain every exit already reported."""
        events = []
        if block:
            timeout = None if wake_at is None else max(0.0, (wake_at - self.clock()).total_seconds())
            if not self.launcher.running and timeout is None:
                timeout = 0.0
            try:
                events.append(self.launcher.exits.get(timeout=timeout) if timeout != 0.0
                              else self.launcher.exits.get_nowait())
            except queue.Empty:
                pass
        while True:
            try:
                events.append(self.launcher.exits.get_nowait())
            except queue.Empty:
                return events


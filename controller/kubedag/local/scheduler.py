"""``kubedag scheduler``: Airflow's scheduler on one machine, its task instances as local processes.

One loop, level-triggered like the controller's reconciles:

* **The DAG folder** is scanned recursively (``*.yaml``/``*.yml``) every ``dag_dir_list_interval`` seconds
  (Airflow's ``[scheduler] dag_dir_list_interval``); when a file's mtime or size changed, the folder is read
  again (:class:`kubedag.local.bag.DagBag`: DAG manifests, ConfigMaps, Secrets, Pools) and every DAG's row is
  upserted. A new DAG starts paused if its spec says ``paused: true`` (Airflow's ``is_paused_upon_creation``);
  afterwards the DB's ``is_paused`` is the truth (``kubedag dags pause`` flips it). A paused DAG gets no
  scheduled run, and its runs start no new try (tries in flight end; a queued run waits), as Airflow's
  scheduler skips the runs of paused DAGs. A DAG whose file changes
  while it has a run in flight finishes that run with the version it started with.
* **Scheduled runs** are created with :func:`kubedag.app.scheduling.decide` (catchup, ``endDate``,
  ``maxActiveRuns``). **Queued runs created by others** -- ``kubedag dags trigger`` inserts a ``manual`` run in
  state ``queued`` with its conf -- are picked up from the DB like the scheduler's own.
* **Backfills** (Airflow 3's, rows of the ``backfill`` table that ``POST /api/v2/backfills`` creates) are carried
  out from the DB (:func:`kubedag.local.backfills.backfill_todo`): up to the backfill's ``max_active_runs`` of its
  runs are unfinished at once (independently of the DAG's ``maxActiveRuns``, as Airflow 3); a paused backfill
  starts no new run (its queued runs wait), a cancelled one none at all (its queued runs were failed by the
  cancel; running ones finish); once every run of it has ended its ``completed_at`` is set.
* **Each active run** has a :class:`~kubedag.local.runner.LocalRunner` stepping the shared run pass; they share
  one :class:`~kubedag.local.processes.ProcessLauncher` so that ``parallelism`` (Airflow's ``[core]
  parallelism``) bounds the tries running on this machine, pools are counted over every active run
  (:func:`kubedag.app.pools.pool_free`), and a DAG's ``maxActiveTasks`` over its runs.
* **Restarts lose nothing.** Everything is in the metadata DB; a restarted scheduler resumes every queued and
  running run from it. Each try's pid file and exit file (next to its log) let it tell what became of a try
  whose scheduler died: a process still alive (process groups outlive a ``kill -9``) is *adopted* -- waited
  for, never started twice; one that ended meanwhile reports its exit code; one that is gone without an exit
  code is failed as lost and retried by its policy, as Airflow resets orphaned and zombie tasks.
* **Stopping** (Ctrl-C, SIGTERM: :meth:`Scheduler.stop`) kills the running tries' process groups (SIGTERM, then
  SIGKILL after ``grace_period`` seconds), records them failed or ``up_for_retry`` as their policy says (as
  Airflow's task runner does on SIGTERM), releases the lock and returns. No try is left ``running`` without a
  process; their runs resume at the next start.
* **A failing metadata DB** (PostgreSQL stopped, a SQLite file locked or unwritable) never stops the scheduler
  (issue 13, the controller's rules): a pass whose write fails stays pending in its runner
  (:class:`kubedag.local.pending.PendingWrites`, counted by ``kubedag_db_writes_pending``) and no try starts
  until it landed; the scheduler logs one line per failed attempt and retries after
  :data:`~kubedag.local.pending.DB_RETRY_FIRST` seconds, doubling up to :data:`~kubedag.local.pending.DB_RETRY_MAX`,
  taking in the exits of the running tries meanwhile (their end times are those of the exits); the pending
  passes are written first once the DB answers, then the loop resumes. :meth:`Scheduler.db_problem` says why,
  for readiness.
* **Notifications** (``onFailure``/``onSuccess``/``onRetry`` of tasks and of the DAG) go through the same code as
  ``kubedag dags test``'s (:mod:`kubedag.local.notifications`, the entry point's webhook sender), once per
  transition, as Airflow calls a callback once: a transition is sent after its pass landed in the DB, and a
  restarted scheduler resumes from the DB, so it never sends one again. They are at most once: those still
  being delivered when the scheduler stops get up to :data:`NOTIFY_FLUSH_SECONDS`, and a ``kill -9`` loses them.
* **One scheduler per DB.** A ``job`` row with a heartbeat every ``heartbeat_interval`` seconds is the lock
  (Airflow's single scheduler on SQLite): a second scheduler refuses to start
  (:class:`~kubedag.app.scheduler_ports.SchedulerLocked`) unless the holder is stale -- no heartbeat for
  ``stale_after`` seconds (Airflow's ``scheduler_health_check_threshold``, 30 s), or a dead pid on this host.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kubedag.app.operations.ports import OperationError
from kubedag.app.pools import pool_free, pool_usage
from kubedag.app.scheduler_ports import OpenBackfill, SchedulerJob, SchedulerStore, StoredRun
from kubedag.app.scheduling import decide
from kubedag.core import engine, timetable
from kubedag.core.runpass import active_count
from kubedag.core.spec.dag import DAG
from kubedag.core.states import DagRunState, RunType
from kubedag.local import metering
from kubedag.local.backfills import backfill_todo
from kubedag.local.bag import DagBag
from kubedag.local.folder import folder_stamps
from kubedag.local.options import dag_options
from kubedag.local.pending import DbBackoff, is_db_error, one_line
from kubedag.local.processes import ProcessLauncher, process_start_time
from kubedag.local.runner import DEFAULT_PARALLELISM, HOSTNAME, LocalRunner, RunOptions, utcnow

DAG_DIR_LIST_INTERVAL = 2.0
"""Seconds between scans of the DAG folder (Airflow's ``dag_dir_list_interval`` is 300 s; a laptop wants edits
picked up within seconds)."""
HEARTBEAT_INTERVAL = 5.0
"""Seconds between heartbeats (Airflow's ``[scheduler] scheduler_heartbeat_sec``)."""
STALE_AFTER = 30.0
"""A scheduler without a heartbeat for this long is gone (Airflow's ``scheduler_health_check_threshold``)."""
GRACE_PERIOD = 10.0
"""Seconds between SIGTERM and SIGKILL for the tries' process groups when the scheduler stops."""
BAD_WRITE_STRIKES = 3
"""Iterations in which a run's pass fails to be written while the DB takes the heartbeat before its runner is
dropped and the run resumed from the DB (:meth:`Scheduler._bad_writes`)."""
NOTIFY_FLUSH_SECONDS = 10.0
"""When the scheduler stops: how long it waits in all for notifications still being delivered."""


@dataclass
class SchedulerOptions:
    """How :class:`Scheduler` runs. Durations in seconds.

    ``folder``: the DAGs folder. ``logs_dir``: root of the try logs. ``database_url``: given to ``trigger``
    tasks and ``externalTask`` sensors (in their environment). ``parallelism``: tries running at once.
    ``metrics``: record Prometheus metrics (:mod:`kubedag.local.metering`; on when ``--metrics-port`` serves them).
    ``make_sender``: the webhook sender's class for the DAGs' notifiers (:func:`kubedag.local.options.dag_options`;
    the entry point gives :class:`kubedag.http.notify.WebhookSender`); None: notifiers are not sent.
    """

    folder: Path
    logs_dir: Path
    database_url: str | None = None
    parallelism: int = DEFAULT_PARALLELISM
    dag_dir_list_interval: float = DAG_DIR_LIST_INTERVAL
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    stale_after: float = STALE_AFTER
    grace_period: float = GRACE_PERIOD
    metrics: bool = False
    make_sender: Callable[..., Any] | None = None


@dataclass
class _Dag:
    dag: DAG
    fileloc: Path
    paused: bool = False
    error: str | None = None  # options could not be built (a missing variablesFrom source)


@dataclass
class FolderState:
    """The DAG folder as last read: DAGs by id, problems by file, and the files' ``(mtime_ns, size)``."""

    dags: dict[str, _Dag] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    stamps: dict[Path, tuple[int, int]] = field(default_factory=dict)
    bag: DagBag | None = None


class Scheduler:
    """The local scheduler (see the module docstring): ``Scheduler(store, options).run()`` until :meth:`stop`.

    ``store``: the metadata DB port. ``say(line)``: prints what happens (runs created, finished, DAG problems).
    ``clock``: UTC-aware now.
    """

    def __init__(self, store: SchedulerStore, options: SchedulerOptions, *, say: Callable[[str], None] = print,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.options = options
        self.say = say
        self.clock = clock
        self.launcher = ProcessLauncher()
        self.runners: dict[tuple[str, str], LocalRunner] = {}
        self.folder = FolderState()
        self.job_id: int | None = None
        self._stop = threading.Event()
        self._next_scan = self._next_beat = 0.0
        self._owned: set[tuple[str, str]] = set()
        self._resumed = False  # after the first look at the DB, only queued runs (and our own) are taken
        self.backfills: dict[int, OpenBackfill] = {}  # the open backfills, as last read
        self._backfill_of: dict[tuple[str, str], int] = {}  # runs of a backfill -> its id
        self._backfill_due = True  # a run ended since the backfills were last looked at
        self.backoff = DbBackoff()  # while the metadata DB fails
        self._strikes: dict[tuple[str, str], int] = {}  # runs whose writes failed while the DB took others
        self._senders: list[Any] = []  # webhook senders of finished runs, closed once delivered

    # -- lifecycle --------------------------------------------------------------------------------
    def _stale(self, job: SchedulerJob) -> bool:
        """Is that scheduler gone? No heartbeat for ``stale_after`` seconds, or a dead pid on this host."""
        if job.hostname == HOSTNAME and job.pid is not None and (
                job.pid == os.getpid() or process_start_time(job.pid) is None):
            return True
        beat = job.latest_heartbeat or job.start_date
        return beat is None or (self.clock() - beat).total_seconds() > self.options.stale_after

    def start(self) -> None:
        """Take the single-scheduler lock.

        Raises:
            kubedag.app.scheduler_ports.SchedulerLocked: another scheduler is running on this DB.
        """
        self.job_id = self.store.acquire(HOSTNAME, os.getpid(), self.clock(), self._stale)

    def stop(self) -> None:
        """Ask :meth:`run` to stop (thread- and signal-safe)."""
        self._stop.set()
        self.launcher.exits.put(("wake", 0))

    def run(self) -> None:
        """Start (if not started), then schedule and run until :meth:`stop`; then shut down gracefully."""
        if self.job_id is None:
            self.start()
        try:
            while not self._stop.is_set():
                self.loop_once()
                self._wait()
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Kill every running try's process group, record how they ended, release the lock."""
        try:
            if self.launcher.running:
                self.say(f"stopping: killing {len(self.launcher.running)} running tries "
                         f"(SIGKILL after {self.options.grace_period:g} s)")
                self.launcher.kill_all("the scheduler stopped", grace_seconds=self.options.grace_period)
                deadline = time.monotonic() + self.options.grace_period + 2.0
                while self.launcher.running and time.monotonic() < deadline:
                    self._dispatch(block=True, timeout=0.2)
                for runner in list(self.runners.values()):
                    runner.step(may_start=False, free_slots=0)
            unwritten = [f"{k[0]} {k[1]}" for k, r in self.runners.items() if not r.writes.flush()]
            if unwritten:  # the next start resumes them from the DB and the tries' exit files
                self.say(f"stopping: the metadata DB did not take the last passes of {', '.join(unwritten)}")
        finally:
            self._close_senders(NOTIFY_FLUSH_SECONDS)
            if self.job_id is not None:
                try:
                    self.store.release(self.job_id, self.clock())
                except Exception as exc:  # noqa: BLE001 - the lock goes stale by itself (``stale_after``)
                    self.say(f"stopping: could not release the scheduler lock: {one_line(exc)}")

    # -- one iteration ----------------------------------------------------------------------------
    def loop_once(self) -> None:
        """One iteration: :meth:`_iterate`, then :meth:`step_runs` (even when the first failed, so that the exits
        of tries become passes, kept pending if the DB does not take them). A failing metadata DB makes the
        scheduler back off (see the module docstring): until the retry is due only process exits are taken in."""
        self._dispatch(block=False)
        if self.backoff.waiting(time.monotonic()):
            return
        error = None
        for part in (self._iterate, self.step_runs):
            try:
                part()
            except Exception as exc:  # noqa: BLE001 - the DB failed (or one object could not be written): retry
                error = error or f"{'metadata DB' if is_db_error(exc) else 'scheduler loop'}: {one_line(exc)}"
        if error is None and any(r.writes for r in self.runners.values()):
            error = self._bad_writes()
        if error is not None:
            pending = sum(1 for r in self.runners.values() if r.writes)
            delay = self.backoff.failed(error, time.monotonic())
            self._next_scan = 0.0  # everything is looked at again once the DB answers
            self.say(f"{error} (runs with writes pending: {pending}); retrying in {delay:g} s")
        else:
            self._strikes.clear()
        if error is None and self.backoff.failures:
            self.say(f"metadata DB: available again after {self.backoff.landed()} failed attempt(s); pending writes landed")

    def _bad_writes(self) -> str | None:
        """Some runs' writes fail while the rest of the iteration did not: is the DB taking writes (a heartbeat,
        written now)? If not, that is the error. If so, those runs' own writes fail (a run deleted meanwhile): after
        :data:`BAD_WRITE_STRIKES` such iterations a run's runner is dropped -- re-created from the DB by the next
        scan if the run is still there, its tries adopted -- so that one run never holds up the others."""
        try:
            if self.job_id is not None:
                self.store.heartbeat(self.job_id, self.clock())
        except Exception as exc:  # noqa: BLE001 - the DB takes no write: an outage
            return f"metadata DB: {one_line(exc)}"
        error = None
        for key, runner in list(self.runners.items()):
            if not runner.writes:
                self._strikes.pop(key, None)
                continue
            self._strikes[key] = strikes = self._strikes.get(key, 0) + 1
            if strikes < BAD_WRITE_STRIKES:
                error = error or f"metadata DB: {runner.writes.error}"
                continue
            self.say(f"{key[0]} {key[1]}: its pass cannot be written while the DB takes other writes "
                     f"({runner.writes.error}); resuming it from the DB")
            self._drop(key)
            self._strikes.pop(key)
            metering.forget(self.options.metrics, key)
        return error

    def db_problem(self) -> str | None:
        """Why the scheduler is backing off (one line, for readiness: ``metadata DB: <error> (runs with writes
        pending: N)``, or ``scheduler loop: ...`` for an error of its own), None when it is not."""
        if self.backoff.error is None:
            return None
        pending = sum(1 for r in self.runners.values() if r.writes)
        return f"{self.backoff.error} (runs with writes pending: {pending})"

    def _iterate(self) -> None:
        """Scan (when due), heartbeat (when due), carry backfills on, create scheduled runs, pick up queued runs."""
        mono = time.monotonic()
        scanned = mono >= self._next_scan
        if scanned:
            self._next_scan = mono + self.options.dag_dir_list_interval
            self.scan()
        if mono >= self._next_beat and self.job_id is not None:
            self._next_beat = mono + self.options.heartbeat_interval
            self.store.heartbeat(self.job_id, self.clock())
        self._dispatch(block=False)
        started = 0
        if scanned or self._backfill_due:
            self._backfill_due = False
            started = self.backfill()
        if self.schedule() + started or scanned:
            self.adopt_runs()  # the DB's active runs: new ones, and queued ones `kubedag dags trigger` created

    def scan(self) -> None:
        """Re-read the DAG folder if a file changed; upsert DAG rows; read pause flags."""
        stamps = folder_stamps(self.options.folder)
        if stamps != self.folder.stamps or self.folder.bag is None:
            bag = DagBag(self.options.folder, recursive=True)
            dags, problems = bag.all_dags()
            for where, why in sorted(problems.items()):
                if self.folder.problems.get(where) != why:
                    self.say(f"DAG file problem: {where}: {why}")
            state = FolderState({}, problems, stamps, bag)
            for dag_id, (dag, path) in dags.items():
                paused = self.store.sync_dag(dag, str(path), dag.paused)
                state.dags[dag_id] = _Dag(dag, path, paused)
                if dag_id not in self.folder.dags:
                    self.say(f"DAG {dag_id} from {path}{' (paused)' if paused else ''}")
            self.folder = state
        for dag_id, paused in self.store.paused().items():
            if dag_id in self.folder.dags:
                self.folder.dags[dag_id].paused = paused

    def schedule(self) -> int:
        """Create the scheduled runs that are due (:func:`kubedag.app.scheduling.decide`); returns how many."""
        now, created = self.clock(), 0
        active: dict[str, int] = {}
        for key, runner in self.runners.items():
            if key not in self._backfill_of:  # a backfill's runs count against its own max_active_runs only
                active[key[0]] = active.get(key[0], 0) + (not runner.run_.finished)
        for dag_id, entry in self.folder.dags.items():
            if entry.paused or entry.dag.schedule is None:
                continue
            dag = entry.dag if not entry.dag.paused else dataclasses.replace(entry.dag, paused=False)  # the DB's flag wins
            decision = decide(dag, self.store.last_scheduled_interval(dag_id), active.get(dag_id, 0), now)
            for info in decision.create:
                run = engine.DagRun(
                    dag_id=dag_id, run_id=timetable.run_id("scheduled", info.logical_date), run_type=RunType.SCHEDULED,
                    logical_date=info.logical_date, data_interval_start=info.data_interval.start,
                    data_interval_end=info.data_interval.end)
                with metering.db_write(self.options.metrics, "create_run"):
                    created_now = self.store.create_run(run, now)
                if created_now:
                    created += 1
                    self.say(f"created {dag_id} {run.run_id}")
            if decision.wake_at is not None:
                delay = (decision.wake_at - now).total_seconds()
                self._next_scan = min(self._next_scan, time.monotonic() + max(0.0, delay))
        return created

    def backfill(self) -> int:
        """Carry the open backfills on (see the module docstring): start their next runs (created ``queued``, or
        existing ones cleared to run again), complete those whose runs have all ended. Returns how many runs
        started. A backfill whose DAG is not in the folder waits."""
        now, started = self.clock(), 0
        self.backfills = {b.id: b for b in self.store.open_backfills()}
        for b in self.backfills.values():
            entry = self.folder.dags.get(b.dag_id)
            if entry is None:
                continue
            try:
                todo, active = backfill_todo(b, entry.dag, self.store.runs_at_dates(b.dag_id, b.from_date, b.to_date))
            except OperationError as exc:
                self.say(f"backfill {b.id} of {b.dag_id}: {exc}")
                continue
            if not todo and active == 0:
                self.store.complete_backfill(b.id, now)
                self.say(f"backfill {b.id} of {b.dag_id} completed")
                continue
            if b.is_paused:
                continue
            for planned in todo[:max(0, b.max_active_runs - active)]:
                if self.store.start_backfill_run(b.id, entry.dag, planned, now):
                    started += 1
                    self.say(f"backfill {b.id}: {'created' if planned.action == 'create' else 're-running'} "
                             f"{b.dag_id} {planned.run_id}")
        return started

    def adopt_runs(self) -> None:
        """Give a runner to every queued run in the DB (the scheduler's own, those ``kubedag dags trigger``
        created), to every run found queued or running at start-up (a restart resumes them), and to the
        scheduler's own runs, when their DAG is in the folder. A run that turns up ``running`` later belongs to
        another process (``kubedag dags test`` creates its run running) and is left to it."""
        for stored in self.store.active_runs():
            key = (stored.run.dag_id, stored.run.run_id)
            if key in self.runners:
                continue
            if self._resumed and stored.run.state == DagRunState.RUNNING and key not in self._owned:
                continue  # running elsewhere (`kubedag dags test`, a backfill): not this scheduler's
            entry = self.folder.dags.get(stored.run.dag_id)
            if entry is None:
                continue  # its DAG is not (or no longer) in the folder: left as it is, as Airflow does
            self.runners[key] = self._runner(entry, stored)
            self._owned.add(key)
            if stored.backfill_id is not None:
                self._backfill_of[key] = stored.backfill_id
        self._resumed = True

    def _runner(self, entry: _Dag, stored: StoredRun) -> LocalRunner:
        o = self.options
        assert self.folder.bag is not None
        try:
            options = dag_options(entry.dag, self.folder.bag, workdir=entry.fileloc.parent, logs_dir=o.logs_dir,
                                  database_url=o.database_url, parallelism=o.parallelism, track_files=True, keep_pending=True,
                                  metrics=o.metrics, make_sender=o.make_sender)
        except ValueError as exc:  # a missing variablesFrom/connectionsFrom source: templates using it fail
            self.say(f"DAG {entry.dag.dag_id}: {exc}")
            options = RunOptions(workdir=entry.fileloc.parent, logs_dir=o.logs_dir, parallelism=o.parallelism,
                                 pools=self.folder.bag.pools, database_url=o.database_url, track_files=True, keep_pending=True,
                                 metrics=o.metrics)
        dag = entry.dag
        recorder = _StoreRecorder(self.store, dag, o.metrics)
        return LocalRunner(dag, stored.run, recorder, options, tis=stored.tis, clock=self.clock,
                           launcher=self.launcher, xcoms=stored.xcoms)

    def step_runs(self) -> None:
        """Step every run (oldest first), with slots and pools counted over all of them; drop finished runs."""
        pools = self.folder.bag.pools if self.folder.bag is not None else {}
        running_runs: dict[str, int] = {}
        if any(self.runners[k].run_.state == DagRunState.QUEUED for k in self._backfill_of if k in self.runners):
            self.backfills = {b.id: b for b in self.store.open_backfills()}  # a pause or cancel since the last look
        for key, runner in self.runners.items():
            if key not in self._backfill_of:  # a backfill's runs count against its own max_active_runs only
                running_runs[key[0]] = running_runs.get(key[0], 0) + (runner.run_.state == DagRunState.RUNNING)
        for key, runner in list(self.runners.items()):
            runner.writes.flush()  # its pending passes land first (the step's own write queues behind them)
            dag = runner.dag
            others = sum(active_count(r.tis) for k, r in self.runners.items() if k[0] == key[0] and k != key)
            may_start = runner.run_.state != DagRunState.QUEUED or running_runs.get(key[0], 0) < dag.max_active_runs
            if key in self._backfill_of and runner.run_.state == DagRunState.QUEUED:
                backfill = self.backfills.get(self._backfill_of[key])
                if backfill is None:  # cancelled while queued: the cancel failed it in the DB; it never starts
                    self._drop(key)
                    continue
                may_start = not backfill.is_paused
            entry = self.folder.dags.get(key[0])
            paused = entry is not None and entry.paused  # as Airflow: tries in flight end, nothing new starts
            was = runner.run_.state
            try:
                runner.step(free_slots=0 if paused else max(0, dag.max_active_tasks - others),
                            may_start=may_start and not paused,
                            pool_free=pool_free(pools, [(r.dag, r.tis) for r in self.runners.values()]))
            except Exception as exc:  # noqa: BLE001 - one run's error never stops the others
                if runner.writes:  # its passes wait for the DB: kept (the loop backs off)
                    continue
                self.say(f"{key[0]} {key[1]}: {one_line(exc)}; resuming it from the DB")
                del self.runners[key]  # re-created from the DB by the next scan; its live tries are kept
                continue
            if was == DagRunState.QUEUED and runner.run_.state == DagRunState.RUNNING and key not in self._backfill_of:
                running_runs[key[0]] = running_runs.get(key[0], 0) + 1
            if runner.run_.finished and not runner.writes:  # a run whose last passes are pending waits for them
                self.say(f"{key[0]} {key[1]} {runner.run_.state}")
                self._drop(key)
        self._close_senders()
        if self.options.metrics:
            metering.pools(pool_usage(pools, [(r.dag, r.tis) for r in self.runners.values()]))

    def _close_senders(self, wait: float | None = None) -> None:
        """Close the webhook senders of finished runs whose notifications are delivered; with ``wait`` (seconds,
        at shutdown) every sender, after waiting that long in all for their deliveries."""
        if wait is not None:
            self._senders += [r.options.sender for r in self.runners.values() if r.options.sender is not None]
            deadline = time.monotonic() + wait
            for sender in self._senders:
                sender.flush(max(0.0, deadline - time.monotonic()))
        for sender in [s for s in self._senders if wait is not None or s.flush(0)]:
            sender.close()
            self._senders.remove(sender)

    def _drop(self, key: tuple[str, str]) -> None:
        """Forget a run's runner (it finished, or was cancelled before it started); its webhook sender is closed
        once its notifications are delivered (:meth:`_close_senders`)."""
        runner = self.runners.pop(key)
        if runner.options.sender is not None:
            self._senders.append(runner.options.sender)
        if self._backfill_of.pop(key, None) is not None:
            self._backfill_due = True

    # -- waiting ----------------------------------------------------------------------------------
    def _dispatch(self, block: bool, timeout: float | None = None) -> None:
        """Hand process exits to their runners (waiting up to ``timeout`` seconds for the first if ``block``)."""
        first = True
        while True:
            try:
                if block and first:
                    key, code = self.launcher.exits.get(timeout=timeout)
                else:
                    key, code = self.launcher.exits.get_nowait()
            except queue.Empty:
                return
            first = False
            if key == "wake":
                continue
            runner = self.runners.get((key[0], key[1]))
            if runner is not None:
                runner.exited(key, code)
            else:
                self.launcher.reap(key)

    def _wait(self) -> None:
        """Sleep until a process exits, a run's ``wake_at``, the next scan or heartbeat, or :meth:`stop`."""
        if self._stop.is_set():
            return
        now, mono = self.clock(), time.monotonic()
        if self.backoff.retry_at is not None:  # backing off: only exits are taken in until the retry
            self._dispatch(block=True, timeout=max(0.0, self.backoff.retry_at - mono))
            return
        deadline = min(self._next_scan, self._next_beat)
        for runner in self.runners.values():
            if runner.ended:
                return
            if runner.wake_at is not None:
                deadline = min(deadline, mono + (runner.wake_at - now).total_seconds())
        self._dispatch(block=True, timeout=max(0.0, deadline - time.monotonic()))


class _StoreRecorder:
    """A runner's :class:`~kubedag.local.runner.Recorder` writing to the scheduler's store."""

    def __init__(self, store: SchedulerStore, dag: DAG, metrics: bool = False) -> None:
        self.store, self.dag, self.metrics = store, dag, metrics

    def save(self, run: engine.DagRun, tis: list[engine.TaskInstance], tries: list[Any],
             xcoms: list[tuple[str, int, dict[str, Any]]] | None = None) -> None:
        with metering.db_write(self.metrics, "save_pass", (run.dag_id, run.run_id)):
            self.store.save(self.dag, run, tis, tries, xcoms)


__all__ = ["Scheduler", "SchedulerOptions", "folder_stamps"]

"""The kubedag controller: a kopf operator that schedules DAG runs and runs every task instance as a pod.

Shape (as Kubernetes controllers are built, level-triggered throughout):

* **Informers.** kopf watches DAGs, DAGRuns and kubedag's pods (``@kopf.on.event``); every event only
  updates an in-memory cache of the object and marks a key dirty. Nothing is decided from the event
  itself.
* **DAGs** (:meth:`Controller.sync_dag`): validated on every change (the manifest rules of
  :mod:`kubedag.core.spec.loader` plus the Kubernetes-only ones of :func:`kubedag.k8s.podspec.kubernetes_problems`);
  ``status`` gets ``Ready`` (or ``Ready=False``, reason ``Invalid``, the errors as message),
  ``observedGeneration``, ``paused``, ``nextRunAt``, ``lastRun``.
* **Scheduling** (:class:`Scheduler`): one loop and one heap of ``(next due time, DAG)``; when a DAG falls
  due, DAGRuns are created for its due intervals with Airflow's timetable semantics
  (:mod:`kubedag.core.timetable`: catchup, endDate), up to ``maxActiveRuns`` (beyond it the DAG waits, and
  an Event says so). A DAGRun's name is a function of DAG and run id (:func:`kubedag.core.naming.run_name`),
  so creating it twice is harmless and a restart never duplicates a run.
* **DAGRuns** (:meth:`Controller.reconcile_run`): a work queue (each key processed by one worker at a
  time, re-queued if it changed meanwhile) feeds :func:`kubedag.core.runpass.run_pass` with the DAGRun,
  its pods and its task instances (from memory, else the metadata DB, else the status), then carries out
  the result: create pods, delete pods, write the pass to the DB, write one status. A pod's completion
  is an event on that pod, so its successors' pods are created at once.
* **Housekeeping**: each finished try's pod log is archived to the DB, then the pod is deleted after
  ``pod_retention``; finished DAGRuns beyond ``run_history_limit`` per DAG are deleted (their pods go
  with them through owner references; their history stays in the DB).
* **XComs, branches, sensors**: a try's end is :func:`kubedag.core.execution.finish_try`'s (the XCom is the
  container's termination message, stored with the pass); a ``reschedule``-mode sensor's next poke is a
  new pod of the same try, numbered by poke (:func:`kubedag.core.naming.pod_name`; the current poke is
  found again from the status' pod suffix after a restart); the previous poke's pod is deleted when the
  next one is created. Built-in ``file``/``http`` sensors run in ``sensor_image`` (kubedag's own).
* **In-controller tasks** (as Airflow's triggerer): ``externalTask`` sensors are checked against the DB
  every ``pokeInterval``; trigger tasks create the target DAGRun (named by :func:`names.run_name`, and
  annotated ``kubedag.io/triggered-by`` with the triggering try, so a restarted controller finds it
  instead of creating another). ``resetDagRun`` on an existing run adds a ``clear`` action to it (Airflow
  2.10 clears the existing run rather than deleting it). ``waitForCompletion`` follows the target's phase
  from the informer's cache (no API request per check).
* **Pools**: Pool objects are watched; open slots per pool are counted over every run of the namespace
  (``default-pool``: 128 unless a Pool says otherwise) and handed to the engine; Pool status is written when
  its counts change; runs waiting on a pool are queued again (oldest first) when slots free up.
* **Actions**: ``spec.actions`` (clear/mark) not yet in ``status.appliedActions`` are applied at the start
  of a pass and listed in the same status write.
* **Variables and connections**: the ConfigMaps/Secrets a DAG names are read by name (cached
  ``sources_ttl``); a missing one does not block the DAG: a try whose template needs a value from it fails
  with a reason naming it. Connections reach pods as ``secretKeyRef`` variables. Their secrets are masked
  in Events, archived logs and notifications.
* **Notifications**: task and run callbacks and SLA misses go to a background :class:`kubedag.http.notify.WebhookSender`
  (Secrets read through the API); a failing webhook never blocks a pass. SLA misses already reported are
  remembered in memory only (a restart may report one again).

A crash anywhere loses nothing: task instances are in the DB (written every pass) and the status,
pods have deterministic names (creating one again answers 409 and is taken as "exists"), and a pod
that is missing is looked up directly before its try is failed as deleted.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from kubedag import __version__
from kubedag.core import engine, timetable
from kubedag.k8s import history
from kubedag.core import naming as names, runpass
from kubedag.k8s import observe
from kubedag.k8s.client import ApiError, Connection, KubeClient
from kubedag.core.spec.dag import DAG
from kubedag.core.spec.dagrun import Condition, DAGStatus, LastRun
from kubedag.core.states import DagRunState, TaskInstanceState

log = logging.getLogger("kubedag.controller")

DAGS = "dags"
DAGRUNS = "dagruns"
POOLS = "pools"
ANNOTATION_TRIGGERED_BY = "kubedag.io/triggered-by"
"""On a DAGRun a trigger task created: ``<namespace>/<DAGRun>/<task>/<try>`` of the triggering try."""
FINISHED = (DagRunState.SUCCESS, DagRunState.FAILED)


def utcnow() -> datetime:
    """The wall clock, UTC-aware."""
    return datetime.now(timezone.utc)


@dataclass
class ControllerConfig:
    """How the controller runs (each field has an environment variable and a flag; see ``kubedag controller --help``).

    ``namespaces``: namespaces to watch; empty = the whole cluster. ``database_url``: the metadata DB
    (None: ``KUBEDAG_DATABASE_URL`` or the local SQLite default). ``api_qps``/``api_burst``: client-side
    rate limit of API requests. ``workers``: DAGRuns reconciled at once. ``pod_retention``: how long a
    finished try's pod is kept (its log is archived first). ``run_history_limit``: finished DAGRun
    objects kept per DAG (0 = keep all). ``image_pull_timeout``: how long a pod may wait on an image
    error before its try fails. ``liveness_port``: kopf's ``/healthz`` (None: off). ``sensor_image``: the image
    of built-in ``file``/``http`` sensor pods (kubedag's own; ``KUBEDAG_SENSOR_IMAGE``). ``sources_ttl``: how
    long ConfigMaps/Secrets read for ``variablesFrom``/``connectionsFrom`` are cached.
    """

    namespaces: list[str] = field(default_factory=list)
    database_url: str | None = None
    api_qps: float = 50.0
    api_burst: int = 100
    workers: int = 8
    pod_retention: timedelta = timedelta(minutes=10)
    run_history_limit: int = 50
    image_pull_timeout: timedelta = timedelta(minutes=5)
    liveness_port: int | None = 8080
    kubeconfig: str | None = None
    context: str | None = None
    sensor_image: str = f"kubedag/controller:{__version__}"
    sources_ttl: timedelta = timedelta(seconds=10)


Key = tuple[str, str]
"""``(namespace, name)`` of an object."""


def _key(body: Mapping[str, Any]) -> Key:
    meta = body.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


def _newer(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether ``new`` is at least as recent as ``old`` (resourceVersions compared as integers when they are)."""
    if old is None:
        return True
    a, b = (old.get("metadata") or {}).get("resourceVersion"), (new.get("metadata") or {}).get("resourceVersion")
    try:
        return int(b) >= int(a)
    except (TypeError, ValueError):
        return True


def _condition(status: str, reason: str, message: str, when: datetime, generation: int | None) -> Condition:
    """A ``Ready`` condition."""
    return Condition.model_validate({"type": "Ready", "status": status, "reason": reason, "message": message[:32768],
                                     "lastTransitionTime": when, "observedGeneration": generation})


class WorkQueue:
    """A set of dirty keys processed by workers, each key by one worker at a time (client-go's workqueue).

    :meth:`add` marks a key dirty (a key already waiting is not queued twice; a key being processed is
    queued again when its worker calls :meth:`done`); :meth:`add_after` does so after a delay (only the
    earliest timer per key is kept).
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._dirty: set[Key] = set()
        self._processing: set[Key] = set()
        self._timers: dict[Key, tuple[float, asyncio.TimerHandle]] = {}

    def add(self, key: Key) -> None:
        """Mark ``key`` for processing."""
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.put_nowait(key)

    def add_after(self, key: Key, delay: float) -> None:
        """Mark ``key`` for processing in ``delay`` seconds (now if ``delay <= 0``)."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        current = self._timers.get(key)
        if current is not None and current[0] <= when and not current[1].cancelled():
            return
        if current is not None:
            current[1].cancel()

        def fire() -> None:
            self._timers.pop(key, None)
            self.add(key)

        self._timers[key] = (when, loop.call_at(when, fire))

    async def get(self) -> Key:
        """The next key to process (the caller must call :meth:`done`)."""
        key = await self._queue.get()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: Key) -> None:
        """Processing of ``key`` ended; re-queue it if it was marked meanwhile."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.put_nowait(key)

    def forget(self, key: Key) -> None:
        """Drop the timer of a key whose object is gone."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer[1].cancel()

    def close(self) -> None:
        """Cancel every timer."""
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()


@dataclass
class ParsedDAG:
    """A DAG object as last validated: ``dag`` when valid, else ``errors`` (``path: message`` lines)."""

    generation: int | None
    dag: DAG | None
    errors: list[str] = field(default_factory=list)
    uid: str | None = None


@dataclass
class RunState:
    """The controller's memory of one DAGRun (rebuilt from the DB and the status after a restart)."""

    run: engine.DagRun
    tis: dict[str, engine.TaskInstance]
    created: dict[str, int]
    archived: set[tuple[str, int]] = field(default_factory=set)
    archiving: set[tuple[str, int]] = field(default_factory=set)
    unsaved_tis: dict[str, engine.TaskInstance] = field(default_factory=dict)
    unsaved_tries: list[Any] = field(default_factory=list)
    rejected: dict[tuple[str, int], str] = field(default_factory=dict)
    saved_phase: DagRunState | None = None
    pokes: dict[str, int] = field(default_factory=dict)
    xcoms: dict[tuple[str, str], Any] = field(default_factory=dict)
    unsaved_xcoms: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    unsaved_cleared: set[str] = field(default_factory=set)
    applied: list[str] = field(default_factory=list)
    checks: dict[str, tuple[int, runpass.ControllerCheck]] = field(default_factory=dict)
    pool_blocked: set[str] = field(default_factory=set)
    sla_reported: set[str] = field(default_factory=set)


@dataclass(order=True)
class _Due:
    at: datetime
    seq: int
    key: Key = field(compare=False)


class Scheduler:
    """One loop over a heap of ``(next due time, DAG key)``: no timer per DAG, no polling of every DAG.

    :meth:`update` (re)computes a DAG's next run and pushes it; stale heap entries are skipped by their
    sequence number. When an entry falls due, ``on_due(key)`` creates the runs and calls :meth:`update`.
    """

    def __init__(self, on_due: Callable[[Key], Any], clock: Callable[[], datetime] = utcnow) -> None:
        self._heap: list[_Due] = []
        self._current: dict[Key, int] = {}
        self._seq = 0
        self._on_due = on_due
        self._clock = clock
        self._wake = asyncio.Event()

    def push(self, key: Key, at: datetime | None) -> None:
        """Make ``key`` due at ``at`` (None: not scheduled); replaces its previous entry."""
        self._seq += 1
        if at is None:
            self._current.pop(key, None)
            return
        self._current[key] = self._seq
        heapq.heappush(self._heap, _Due(at, self._seq, key))
        self._wake.set()

    def remove(self, key: Key) -> None:
        """Stop scheduling ``key``."""
        self._current.pop(key, None)

    async def run(self) -> None:
        """Run forever: wait for the earliest due entry, hand it to ``on_due``."""
        while True:
            now = self._clock()
            while self._heap and (self._current.get(self._heap[0].key) != self._heap[0].seq):
                heapq.heappop(self._heap)  # superseded
            if self._heap and self._heap[0].at <= now:
                due = heapq.heappop(self._heap)
                self._current.pop(due.key, None)
                try:
                    await self._on_due(due.key)
                except Exception:  # noqa: BLE001 - one DAG never stops the loop
                    log.exception("scheduling %s/%s failed; retrying in 30s", *due.key)
                    self.push(due.key, self._clock() + timedelta(seconds=30))
                continue
            timeout = None if not self._heap else max(0.0, (self._heap[0].at - now).total_seconds())
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=min(timeout, 3600) if timeout is not None else 3600)
            except asyncio.TimeoutError:
                pass


@dataclass
class DagSchedule:
    """Where a DAG's schedule stands: the last automated run's interval and the next run (None: none)."""

    last: timetable.DataInterval | None
    next: timetable.DagRunInfo | None = None
    blocked_at: datetime | None = None


class Controller:
    """The controller's state and logic, driven by kopf (see :func:`make_registry`).

    ``sessionmaker``: the metadata DB (SQLAlchemy); ``connection``: the cluster; ``clock``: UTC-aware now;
    ``make_sender(resolver, *, mask)``: the webhook sender's class, given by the entry point
    (:func:`kubedag.http.webhook_sender`); without it notifiers are not sent (a warning says so).
    """

    def __init__(self, config: ControllerConfig, connection: Connection, sessionmaker: Any, *,
                 clock: Callable[[], datetime] = utcnow, make_sender: Callable[..., Any] | None = None) -> None:
        self.config = config
        self.connection = connection
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.client: KubeClient | None = None
        self.dags: dict[Key, dict[str, Any]] = {}
        self.parsed: dict[Key, ParsedDAG] = {}
        self.runs: dict[Key, dict[str, Any]] = {}
        self.pods: dict[Key, dict[str, dict[str, Any]]] = {}
        self.states: dict[Key, RunState] = {}
        self.schedules: dict[Key, DagSchedule] = {}
        self.queue = WorkQueue()
        self.dag_queue = WorkQueue()
        self.scheduler = Scheduler(self.schedule_dag, clock)
        self.tasks: list[asyncio.Task[Any]] = []
        self.background: set[asyncio.Task[Any]] = set()
        self.instance = socket.gethostname()
        self.pools: dict[Key, dict[str, Any]] = {}
        self.pool_queue = WorkQueue()
        self.sources: dict[Key, tuple[float, Any, dict[str, tuple[str, str]]]] = {}
        from kubedag.core.secrets import Masker

        self.masker = Masker()
        self.sender: Any = None
        self.make_sender = make_sender
        self.loop: asyncio.AbstractEventLoop | None = None
        from kubedag.k8s.backfill import BackfillReconciler

        self.backfill = BackfillReconciler(self)  # Backfill objects (kubedag.k8s.backfill)

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the API session; start the workers and the scheduling loop."""
        self.client = KubeClient(self.connection, qps=self.config.api_qps, burst=self.config.api_burst)
        await self.client.__aenter__()
        for i in range(max(1, self.config.workers)):
            self.tasks.append(asyncio.create_task(self._worker(self.queue, self.reconcile_run), name=f"kubedag-run-worker-{i}"))
        self.tasks.append(asyncio.create_task(self._worker(self.dag_queue, self.sync_dag), name="kubedag-dag-worker"))
        self.tasks.append(asyncio.create_task(self._worker(self.pool_queue, self.sync_pool), name="kubedag-pool-worker"))
        self.tasks.append(asyncio.create_task(self.scheduler.run(), name="kubedag-scheduler"))
        self.loop = asyncio.get_running_loop()
        self.tasks.append(asyncio.create_task(self._worker(self.backfill.queue, self.backfill.reconcile),
                                              name="kubedag-backfill-worker"))

    async def stop(self) -> None:
        """Stop workers and timers; close the API session."""
        for task in [*self.tasks, *self.background]:
            task.cancel()
        await asyncio.gather(*self.tasks, *self.background, return_exceptions=True)
        self.tasks.clear()
        self.queue.close()
        self.dag_queue.close()
        self.backfill.queue.close()
        if self.client is not None:
            await self.client.close()

    async def _worker(self, queue: WorkQueue, handle: Callable[[Key], Any]) -> None:
        while True:
            key = await queue.get()
            try:
                await handle(key)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one bad object never stops the controller
                log.exception("reconciling %s/%s failed; retrying in 5s", *key)
                queue.add_after(key, 5.0)
            finally:
                queue.done(key)

    def _spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background (events, log archiving), keeping a reference until it ends."""
        task = asyncio.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(session, *args)`` in one transaction, in a thread."""
        def work() -> Any:
            with self.sessionmaker.begin() as session:
                return fn(session, *args)
        return await asyncio.to_thread(work)

    # -- informers ----------------------------------------------------------------------------------
    def on_dag_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A DAG was listed, added, modified or deleted."""
        key = _key(body)
        if event_type == "DELETED":
            self.dags.pop(key, None)
            self.parsed.pop(key, None)
            self.schedules.pop(key, None)
            self.scheduler.remove(key)
            return
        if _newer(self.dags.get(key), body):
            self.dags[key] = dict(body)
            self.dag_queue.add(key)

    def on_run_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A DAGRun was listed, added, modified or deleted."""
        key = _key(body)
        self.backfill.on_run_event(event_type, body)
        if event_type == "DELETED":
            self.runs.pop(key, None)
            self.states.pop(key, None)
            self.queue.forget(key)
            return
        if _newer(self.runs.get(key), body):
            self.runs[key] = dict(body)
            self.queue.add(key)
            self._wake_trigger(body)

    def _wake_trigger(self, body: Mapping[str, Any]) -> None:
        """A DAGRun created by a trigger task changed: the triggering run looks again (``waitForCompletion``)."""
        origin = ((body.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_TRIGGERED_BY)
        if not origin:
            return
        parts = origin.split("/")
        if len(parts) != 4:
            return
        key = (parts[0], parts[1])
        state = self.states.get(key)
        if state is not None:
            state.checks.pop(parts[2], None)
        if key in self.runs:
            self.queue.add(key)

    def on_pool_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A Pool was listed, added, modified or deleted: runs of its namespace waiting on it look again."""
        key = _key(body)
        if event_type == "DELETED":
            self.pools.pop(key, None)
        elif _newer(self.pools.get(key), body):
            self.pools[key] = dict(body)
            self.pool_queue.add(key)
        self._wake_pool_waiters(key[0], {key[1]})

    def on_pod_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """One of kubedag's pods changed: its DAGRun is reconciled."""
        meta = body.get("metadata") or {}
        run = (meta.get("labels") or {}).get(names.LABEL_RUN)
        if not run:
            return
        key = (meta.get("namespace") or "", run)
        pods = self.pods.setdefault(key, {})
        if event_type == "DELETED":
            pods.pop(meta.get("name"), None)
        elif _newer(pods.get(meta.get("name")), body):
            pods[meta["name"]] = dict(body)
        self.queue.add(key)

    # -- DAGs ---------------------------------------------------------------------------------------
    def _validate(self, body: Mapping[str, Any]) -> ParsedDAG:
        from kubedag.k8s import podspec
        from kubedag.core.spec.loader import DAGValidationError, parse_dag

        meta = body.get("metadata") or {}
        generation = meta.get("generation")
        try:
            dag = parse_dag(dict(body))
        except DAGValidationError as exc:
            return ParsedDAG(generation, None, [str(e) for e in exc.errors], meta.get("uid"))
        problems = podspec.kubernetes_problems(dag)
        if problems:
            return ParsedDAG(generation, None, [str(e) for e in problems], meta.get("uid"))
        return ParsedDAG(generation, dag, [], meta.get("uid"))

    async def sync_dag(self, key: Key) -> None:
        """Validate a DAG, (re)schedule it, write its status."""
        body = self.dags.get(key)
        if body is None:
            return
        old = self.parsed.get(key)
        generation = (body.get("metadata") or {}).get("generation")
        if old is None or old.generation != generation or old.uid != (body.get("metadata") or {}).get("uid"):
            parsed = self._validate(body)
            self.parsed[key] = parsed
            if parsed.dag is None:
                self.scheduler.remove(key)
                self.schedules.pop(key, None)
                message = "; ".join(parsed.errors)
                log.warning("DAG %s/%s is invalid: %s", *key, message)
                self._event(body, "Warning", "Invalid", f"invalid DAG: {message}"[:1024])
            else:
                await self._db(history.save_dag, key[0], parsed.dag)
                if key not in self.schedules:
                    interval = await self._db(history.latest_scheduled_interval, key[0], parsed.dag.dag_id)
                    last = timetable.DataInterval(*interval) if interval else None
                    self.schedules[key] = DagSchedule(last=last)
                self.schedules[key].next = None
                self.schedules[key].blocked_at = None
                self.scheduler.push(key, self.clock())
                for run_key, run in self.runs.items():  # runs waiting for this DAG
                    if run_key[0] == key[0] and (run.get("spec") or {}).get("dagName") == key[1]:
                        self.queue.add(run_key)
        await self.write_dag_status(key)

    def _dag_status(self, key: Key) -> DAGStatus:
        body = self.dags[key]
        parsed = self.parsed[key]
        old = DAGStatus.model_validate(body.get("status") or {})
        now = self.clock()
        if parsed.dag is None:
            ready = ("False", "Invalid", "; ".join(parsed.errors)[:32768])
        elif parsed.dag.paused:
            ready = ("True", "Paused", "the DAG is valid; scheduling is paused (spec.paused)")
        else:
            ready = ("True", "Scheduled", "the DAG is valid and scheduled")
        previous = next((c for c in old.conditions if c.type == "Ready"), None)
        transition = previous.last_transition_time if previous is not None and previous.status == ready[0] else now
        condition = Condition.model_validate({"type": "Ready", "status": ready[0], "reason": ready[1], "message": ready[2],
                                              "observedGeneration": parsed.generation, "lastTransitionTime": transition})
        schedule = self.schedules.get(key)
        next_at = None
        if parsed.dag is not None and not parsed.dag.paused and schedule is not None and schedule.next is not None:
            next_at = schedule.next.run_after
        return DAGStatus.model_validate({
            "observedGeneration": parsed.generation,
            "conditions": [condition],
            "nextRunAt": next_at,
            "lastRun": self._last_run(key),
            "paused": parsed.dag.paused if parsed.dag is not None else None,
        })

    def _last_run(self, key: Key) -> LastRun | None:
        latest: tuple[datetime, LastRun] | None = None
        for run_key, body in self.runs.items():
            if run_key[0] != key[0] or (body.get("spec") or {}).get("dagName") != key[1]:
                continue
            state = self.states.get(run_key)
            if state is None:
                continue
            entry = LastRun.model_validate({"runId": state.run.run_id, "phase": state.run.state,
                                            "logicalDate": state.run.logical_date})
            if latest is None or state.run.logical_date > latest[0]:
                latest = (state.run.logical_date, entry)
        return latest[1] if latest else None

    async def write_dag_status(self, key: Key) -> None:
        """Write the DAG's status if it changed (a merge patch of the status subresource)."""
        body = self.dags.get(key)
        if body is None or key not in self.parsed or self.client is None:
            return
        status = self._dag_status(key).to_k8s()
        if status == (body.get("status") or {}):
            return
        try:
            updated = await self.client.patch(names.API_VERSION, DAGS, key[0], key[1], {"status": status}, sub="status")
        except ApiError as exc:
            if exc.status == 404:
                return
            raise
        if _newer(self.dags.get(key), updated):
            self.dags[key] = updated

    # -- scheduling ---------------------------------------------------------------------------------
    def _runs_of(self, key: Key) -> list[tuple[Key, dict[str, Any]]]:
        return [(k, b) for k, b in self.runs.items() if k[0] == key[0] and (b.get("spec") or {}).get("dagName") == key[1]]

    def _phase(self, run_key: Key) -> DagRunState | None:
        state = self.states.get(run_key)
        if state is not None:
            return state.run.state
        phase = ((self.runs.get(run_key) or {}).get("status") or {}).get("phase")
        return DagRunState(phase) if phase else None

    def active_runs(self, key: Key) -> int:
        """Runs of the DAG that are queued or running (Airflow's count against ``max_active_runs``)."""
        return sum(1 for k, _ in self._runs_of(key) if self._phase(k) not in FINISHED)

    async def schedule_dag(self, key: Key) -> None:
        """Create the DAG's due runs (up to ``maxActiveRuns``), then push its next due time."""
        parsed = self.parsed.get(key)
        schedule = self.schedules.get(key)
        if parsed is None or parsed.dag is None or schedule is None:
            return
        dag = parsed.dag
        now = self.clock()
        if dag.paused:
            schedule.next = None
            await self.write_dag_status(key)
            return
        info = dag.timetable.next_dagrun_info(last_automated_data_interval=schedule.last, restriction=dag.restriction, now=now)
        while info is not None and info.run_after <= now:
            if self.active_runs(key) >= dag.max_active_runs:
                if schedule.blocked_at != info.logical_date:
                    schedule.blocked_at = info.logical_date
                    self._event(self.dags[key], "Normal", "MaxActiveRunsReached",
                                f"run for {timetable.iso_utc(info.logical_date)} waits: maxActiveRuns {dag.max_active_runs} "
                                "runs are active")
                break
            await self.create_run(key, dag, info)
            schedule.last = info.data_interval
            info = dag.timetable.next_dagrun_info(last_automated_data_interval=schedule.last, restriction=dag.restriction, now=now)
        schedule.next = info
        if info is not None and info.run_after > now:
            self.scheduler.push(key, info.run_after)
        await self.write_dag_status(key)

    async def create_run(self, key: Key, dag: DAG, info: timetable.DagRunInfo) -> None:
        """Create the DAGRun of a scheduled interval (409: it exists, which is as good)."""
        assert self.client is not None
        run_id = timetable.run_id("scheduled", info.logical_date)
        name = names.run_name(dag.dag_id, run_id)
        parsed = self.parsed[key]
        body = {
            "apiVersion": names.API_VERSION,
            "kind": "DAGRun",
            "metadata": {
                "name": name, "namespace": key[0], "labels": names.run_labels(dag.dag_id),
                "ownerReferences": [{"apiVersion": names.API_VERSION, "kind": "DAG", "name": dag.dag_id,
                                     "uid": parsed.uid, "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": {
                "dagName": dag.dag_id, "runId": run_id, "runType": "scheduled",
                "logicalDate": timetable.iso_utc(info.logical_date),
                "dataIntervalStart": timetable.iso_utc(info.data_interval.start),
                "dataIntervalEnd": timetable.iso_utc(info.data_interval.end),
            },
        }
        if not parsed.uid:
            del body["metadata"]["ownerReferences"]
        try:
            created = await self.client.create(names.API_VERSION, DAGRUNS, key[0], body)
        except ApiError as exc:
            if exc.status != 409:
                raise
            log.info("DAGRun %s/%s exists already", key[0], name)
            return
        log.info("created DAGRun %s/%s (%s)", key[0], name, run_id)
        self.on_run_event("ADDED", created)
        self._event(self.dags[key], "Normal", "RunCreated", f"created DAGRun {name} for {run_id}")

    # -- DAG runs -----------------------------------------------------------------------------------
    async def _load_state(self, key: Key, dag: DAG, body: Mapping[str, Any]) -> RunState | None:
        """Rebuild a run's memory from the DB (else its status); None if the run cannot be opened (its
        status then says why)."""
        from pydantic import ValidationError
        from sqlalchemy.exc import IntegrityError

        try:
            run = observe.run_from_object(dag, body)
        except (ValidationError, ValueError) as exc:
            await self._fail_run(key, body, "InvalidSpec", str(exc).replace("\n", " "))
            return None
        try:
            rows = await self._db(history.open_run, key[0], dag, run)
        except IntegrityError:
            await self._fail_run(key, body, "DuplicateLogicalDate",
                                 f"DAG {dag.dag_id} has another run at logical date {timetable.iso_utc(run.logical_date)}")
            return None
        status = body.get("status") or {}
        tis = history.load_tis(rows) or observe.tis_from_status(status)
        created = {task_id: entry["t"] for task_id, entry in (status.get("tasks") or {}).items() if entry.get("p")}
        state = RunState(run=run, tis=tis, created=created, applied=list(status.get("appliedActions") or []))
        for task_id, entry in (status.get("tasks") or {}).items():
            task = dag.tasks.get(task_id)
            if task is not None and task.sensor is not None and task.sensor.mode == "reschedule" and entry.get("p"):
                state.pokes[task_id] = names.poke_from_suffix(key[1], task_id, entry["t"], entry["p"])
        if rows:
            state.xcoms = await self._db(history.load_xcoms, key[0], dag.dag_id, run.run_id)
        return state

    async def _fail_run(self, key: Key, body: Mapping[str, Any], reason: str, message: str) -> None:
        """A DAGRun that cannot run: phase failed, condition ``Ready=False`` with the reason."""
        status = body.get("status") or {}
        if status.get("phase") == "failed" and any(c.get("reason") == reason for c in status.get("conditions") or []):
            return
        now = self.clock()
        condition = _condition("False", reason, message, now, (body.get("metadata") or {}).get("generation"))
        new = {"phase": "failed", "finishedAt": timetable.iso_utc(now), "conditions": [condition.to_k8s()]}
        self._event(body, "Warning", reason, message[:1024])
        await self._write_run_status(key, body, new)

    def _free_slots(self, key: Key, dag: DAG) -> int:
        """Tries that may start now: ``maxActiveTasks`` less the queued and running tries of every run of the DAG,
        this one included (Airflow 2.10 counts ``max_active_tasks`` per DAG, across its runs)."""
        used = 0
        for other_key, state in self.states.items():
            if other_key[0] == key[0] and state.run.dag_id == dag.dag_id:
                used += runpass.active_count(state.tis)
        return max(0, dag.max_active_tasks - used)

    def _may_start(self, key: Key, dag: DAG, state: RunState) -> bool:
        """A queued run may start while fewer than ``maxActiveRuns`` runs of its DAG run (oldest first)."""
        if state.run.state != DagRunState.QUEUED:
            return True
        running = 0
        older_queued = 0
        for other_key, _ in self._runs_of((key[0], dag.dag_id)):
            if other_key == key:
                continue
            phase = self._phase(other_key)
            if phase == DagRunState.RUNNING:
                running += 1
            elif phase in (None, DagRunState.QUEUED):
                other = self.states.get(other_key)
                if other is not None and other.run.logical_date < state.run.logical_date:
                    older_queued += 1
        return running + older_queued < dag.max_active_runs

    def _run_pods(self, key: Key, state: RunState | None = None) -> tuple[dict[tuple[str, int], dict[str, Any]], list[dict[str, Any]]]:
        """The run's pods by ``(task_id, try_number)`` (for a rescheduled sensor's current try: its current
        poke's pod), and the pods of earlier pokes (to delete)."""
        out: dict[tuple[str, int], dict[str, Any]] = {}
        pokes: dict[tuple[str, int], int] = {}
        stale = []
        for pod in self.pods.get(key, {}).values():
            labels = (pod.get("metadata") or {}).get("labels") or {}
            try:
                task_id, try_number = labels[names.LABEL_TASK], int(labels[names.LABEL_TRY])
                poke = int(labels.get(names.LABEL_POKE) or 0)
            except (KeyError, ValueError):
                continue
            ti = state.tis.get(task_id) if state is not None else None
            if state is not None and ti is not None and ti.try_number == try_number:
                current = state.pokes.get(task_id, 0)
                if poke != current:
                    if poke < current:
                        stale.append(pod)
                    continue
            elif (task_id, try_number) in pokes and pokes[(task_id, try_number)] > poke:
                continue
            pokes[(task_id, try_number)] = poke
            out[(task_id, try_number)] = pod
        return out, stale

    def _pod_name(self, key: Key, dag: DAG, state: RunState, task_id: str, try_number: int) -> str:
        """The name of the pod of a try (its current poke for the current try of a rescheduled sensor)."""
        ti = state.tis.get(task_id)
        poke = state.pokes.get(task_id, 0) if ti is not None and ti.try_number == try_number else 0
        return names.pod_name(dag.dag_id, key[1], task_id, try_number, poke)

    async def reconcile_run(self, key: Key) -> None:
        """One level-triggered pass over a DAGRun (see the module docstring)."""
        body = self.runs.get(key)
        if body is None:
            self.states.pop(key, None)
            return
        dag_name = (body.get("spec") or {}).get("dagName")
        parsed = self.parsed.get((key[0], dag_name))
        if parsed is None or parsed.dag is None:
            if (body.get("status") or {}).get("phase") not in ("success", "failed"):
                why = "does not exist" if (key[0], dag_name) not in self.dags else "is invalid"
                await self._waiting_condition(key, body, f"DAG {dag_name} {why}; the run waits for it")
            return
        dag = parsed.dag
        state = self.states.get(key)
        if state is None:
            state = await self._load_state(key, dag, body)
            if state is None:
                return
            self.states[key] = state
        now = self.clock()
        before_run, before_tis = state.run, dict(state.tis)
        kills: list[tuple[str, int, str]] = []
        if (body.get("spec") or {}).get("actions"):
            kills += self._apply_actions(key, dag, state, body, now)
        pods, stale = self._run_pods(key, state)
        for (task_id, try_number), reason in state.rejected.items():
            pods.setdefault((task_id, try_number), {"metadata": {"name": self._pod_name(key, dag, state, task_id, try_number)},
                                                    "status": {"phase": "Failed", "reason": "Rejected", "message": reason}})
        await self._confirm_missing(key, dag, state, pods)
        inputs = await self._render_inputs(key, dag, state)
        checks = await self._controller_checks(key, dag, state, now, inputs) if any(
            dag.tasks[t].runs_in_controller for t, ti in state.tis.items()
            if t in dag.tasks and ti.state in engine.ACTIVE_STATES) else None
        was = state.run.state
        result = runpass.run_pass(
            dag, state.run, state.tis, observe.observe_pods(pods, now, self.config.image_pull_timeout), state.created, now,
            may_start=self._may_start(key, dag, state), free_slots=self._free_slots(key, dag),
            name_of=lambda task_id, try_number: self._pod_name(key, dag, state, task_id, try_number),
            lost=lambda task_id, try_number: observe.pod_lost(self._pod_name(key, dag, state, task_id, try_number)),
            pool_free=self._pool_free(key[0]), inputs=inputs, checks=checks,
        )
        state.run, state.tis = result.run, result.tis
        state.pool_blocked = {dag.tasks[t].pool for t, why in result.waiting.items()
                              if t in dag.tasks and why and why[0].startswith("pool ")}
        for (task_id, try_number), values in result.xcoms.items():
            state.unsaved_xcoms[(task_id, try_number)] = values
            for xkey, value in values.items():
                state.xcoms[(task_id, xkey)] = value
        for (task_id, try_number) in result.finished:
            state.rejected.pop((task_id, try_number), None)
        for req in result.create:
            if not req.new_poke and before_tis.get(req.task_id, engine.TaskInstance(req.task_id)).try_number != req.try_number:
                state.pokes.pop(req.task_id, None)  # a new try starts at poke 0
            if req.new_poke:  # the next poke of a rescheduled sensor: a new pod of the same try
                state.pokes[req.task_id] = state.pokes.get(req.task_id, 0) + 1
                state.created.pop(req.task_id, None)
                state.archived.discard((req.task_id, req.try_number))
        for pod in stale:
            self._spawn(self._delete_pod_named(key, pod["metadata"]["name"]))
        # pods first (the latency that matters), then the DB and the status together
        await asyncio.gather(*(self._create_pod(key, dag, state, body, req) for req in result.create),
                             *(self._delete_pod(key, dag, state, k.task_id, k.try_number) for k in result.kill),
                             *(self._delete_pod(key, dag, state, t, n) for t, n, _ in kills))
        state.unsaved_tis.update(result.changed)
        state.unsaved_tries.extend(result.tries)
        await asyncio.gather(self._save(key, dag, state), self._write_status(key, body, dag, state))
        for task_id, try_number in result.finished:
            self._archive(key, dag, state, task_id, try_number)
        if state.rejected:
            self.queue.add(key)
        if self.pools and any(t in dag.tasks for t in result.changed):
            self._pools_changed(key[0], dag, before_tis, state.tis)
        self._notify(key, dag, state, before_run, before_tis)
        if was != state.run.state:
            await self._run_changed(key, dag, body, was, state)
        self._housekeeping(key, dag, state, pods, now, self._sla(key, dag, state, body, now, result.wake_at))

    async def _confirm_missing(self, key: Key, dag: DAG, state: RunState, pods: dict[tuple[str, int], dict[str, Any]]) -> None:
        """A try whose pod was created but is not in the cache: ask the API server before calling it deleted."""
        assert self.client is not None
        for task_id, ti in state.tis.items():
            if ti.state in (TaskInstanceState.QUEUED, TaskInstanceState.RUNNING) and state.created.get(task_id) == ti.try_number \
                    and (task_id, ti.try_number) not in pods:
                pod = await self.client.get("v1", "pods", key[0], self._pod_name(key, dag, state, task_id, ti.try_number))
                if pod is not None:
                    self.pods.setdefault(key, {})[pod["metadata"]["name"]] = pod
                    pods[(task_id, ti.try_number)] = pod

    async def _create_pod(self, key: Key, dag: DAG, state: RunState, body: Mapping[str, Any], req: runpass.LaunchRequest) -> None:
        from kubedag.k8s import podspec

        assert self.client is not None
        meta = body.get("metadata") or {}
        task = dag.tasks[req.task_id]
        secret_env = None
        if dag.connections_from:
            cached = self.sources.get((key[0], dag.dag_id))
            secret_env = cached[2] if cached is not None else None
        poke = state.pokes.get(req.task_id, 0)
        manifest = podspec.build_pod(
            dag, task, namespace=key[0], run_name=key[1], run_uid=meta.get("uid", ""),
            run_id=state.run.run_id, try_number=req.try_number, command=req.command, args=req.args, env=req.env,
            image=self.config.sensor_image if podspec.uses_sensor_image(task) else None, secret_env=secret_env, poke=poke,
        )
        try:
            created = await self.client.create("v1", "pods", key[0], manifest)
        except ApiError as exc:
            if exc.status == 409:
                state.created[req.task_id] = req.try_number
                return
            if exc.status in (400, 403, 422):
                log.warning("pod for %s try %d of %s/%s rejected: %s", req.task_id, req.try_number, *key, exc.message)
                state.rejected[(req.task_id, req.try_number)] = f"the API server rejected the pod: {exc.message}"
                return
            raise
        state.created[req.task_id] = req.try_number
        pods = self.pods.setdefault(key, {})
        if created["metadata"]["name"] not in pods:
            pods[created["metadata"]["name"]] = created

    async def _delete_pod(self, key: Key, dag: DAG, state: RunState, task_id: str, try_number: int) -> None:
        await self._delete_pod_named(key, self._pod_name(key, dag, state, task_id, try_number))

    async def _delete_pod_named(self, key: Key, name: str) -> None:
        assert self.client is not None
        await self.client.delete("v1", "pods", key[0], name)

    async def _save(self, key: Key, dag: DAG, state: RunState) -> None:
        """Write what changed since the last successful write (kept for the next pass if the DB fails)."""
        if not (state.unsaved_tis or state.unsaved_tries or state.unsaved_xcoms or state.unsaved_cleared) \
                and state.run.state == state.saved_phase:
            return
        tis, tries = dict(state.unsaved_tis), list(state.unsaved_tries)
        xcoms, cleared = dict(state.unsaved_xcoms), set(state.unsaved_cleared)
        state.unsaved_tis.clear()
        state.unsaved_tries.clear()
        state.unsaved_xcoms.clear()
        state.unsaved_cleared.clear()
        if len(self.masker):
            from dataclasses import replace

            tis = {t: replace(ti, reason=self.masker.mask(ti.reason)) if ti.reason else ti for t, ti in tis.items()}
            tries = [replace(r, reason=self.masker.mask(r.reason)) if r.reason else r for r in tries]
        try:
            await self._db(history.save_pass, key[0], dag, state.run, list(tis.values()), tries, xcoms, cleared)
            state.saved_phase = state.run.state
        except Exception:
            for task_id, ti in tis.items():
                state.unsaved_tis.setdefault(task_id, ti)
            state.unsaved_tries[:0] = tries
            for k, v in xcoms.items():
                state.unsaved_xcoms.setdefault(k, v)
            state.unsaved_cleared |= cleared
            log.exception("writing DAGRun %s/%s to the metadata DB failed; retrying in 5s", *key)
            self.queue.add_after(key, 5.0)

    async def _write_status(self, key: Key, body: Mapping[str, Any], dag: DAG, state: RunState) -> None:
        status = observe.build_status(
            state.run, state.tis, state.created,
            lambda task_id, try_number: names.pod_suffix(key[1], task_id, try_number, state.pokes.get(task_id, 0)),
            observed_generation=(body.get("metadata") or {}).get("generation"),
        ).to_k8s()
        if state.applied:
            status["appliedActions"] = list(state.applied)
        await self._write_run_status(key, body, status)

    async def _write_run_status(self, key: Key, body: Mapping[str, Any], status: dict[str, Any]) -> None:
        """Replace the DAGRun's status (one PUT; on a conflict, once more on the latest object)."""
        assert self.client is not None
        current = self.runs.get(key) or body
        if (current.get("status") or {}) == status:
            return
        for attempt in range(3):
            obj = {**current, "status": status}
            try:
                updated = await self.client.replace_status(names.API_VERSION, DAGRUNS, obj)
            except ApiError as exc:
                if exc.status == 404:
                    return
                if exc.status == 409 and attempt < 2:
                    fresh = await self.client.get(names.API_VERSION, DAGRUNS, key[0], key[1])
                    if fresh is None:
                        return
                    current = fresh
                    continue
                raise
            if _newer(self.runs.get(key), updated):
                self.runs[key] = updated
            return

    async def _waiting_condition(self, key: Key, body: Mapping[str, Any], message: str) -> None:
        status = dict(body.get("status") or {})
        conditions = status.get("conditions") or []
        if any(c.get("reason") == "DAGNotReady" and c.get("message") == message for c in conditions):
            return
        condition = _condition("False", "DAGNotReady", message, self.clock(), (body.get("metadata") or {}).get("generation"))
        status["conditions"] = [condition.to_k8s()]
        status.setdefault("phase", "queued")
        await self._write_run_status(key, body, status)

    async def _run_changed(self, key: Key, dag: DAG, body: Mapping[str, Any], was: DagRunState, state: RunState) -> None:
        """The run changed phase: tell the user (Events), the DAG (lastRun, scheduling) and tidy up."""
        run = state.run
        dag_key = (key[0], dag.dag_id)
        if run.state == DagRunState.RUNNING:
            self._event(body, "Normal", "Started", f"run {run.run_id} started")
        elif run.state in FINISHED:
            kind = "Warning" if run.state == DagRunState.FAILED else "Normal"
            reason = "Succeeded" if run.state == DagRunState.SUCCESS else "Failed"
            self._event(body, kind, reason, f"run {run.run_id} {run.state}: {run.reason or ''}"[:1024])
            log.info("DAGRun %s/%s %s (%s)", *key, run.state, run.reason)
            # a slot was freed: waiting queued runs and the DAG's schedule may move
            for other_key, _ in self._runs_of(dag_key):
                if other_key != key and self._phase(other_key) in (None, DagRunState.QUEUED):
                    self.queue.add(other_key)
            schedule = self.schedules.get(dag_key)
            if schedule is not None and schedule.blocked_at is not None:
                schedule.blocked_at = None
                self.scheduler.push(dag_key, self.clock())
            self._spawn(self._cleanup_runs(dag_key))
        self._spawn(self.write_dag_status(dag_key))

    async def _cleanup_runs(self, dag_key: Key) -> None:
        """Delete finished DAGRun objects of the DAG beyond ``run_history_limit`` (oldest logical date first)."""
        limit = self.config.run_history_limit
        if limit <= 0 or self.client is None:
            return
        finished = [(state.run.logical_date, k) for k, _ in self._runs_of(dag_key)
                    if (state := self.states.get(k)) is not None and state.run.state in FINISHED]
        finished.sort()
        for _, run_key in finished[: max(0, len(finished) - limit)]:
            if self.states[run_key].archiving:
                continue  # its pods' logs are being archived: deleted by a later clean-up
            log.info("deleting DAGRun %s/%s (beyond runHistoryLimit %d; its history stays in the DB)", *run_key, limit)
            await self.client.delete(names.API_VERSION, DAGRUNS, run_key[0], run_key[1])

    def _archive(self, key: Key, dag: DAG, state: RunState, task_id: str, try_number: int) -> None:
        if (task_id, try_number) in state.archived or (task_id, try_number) in state.archiving:
            return
        state.archiving.add((task_id, try_number))
        self._spawn(self._archive_log(key, dag, state, task_id, try_number))

    async def _archive_log(self, key: Key, dag: DAG, state: RunState, task_id: str, try_number: int) -> None:
        """Copy a finished try's pod log into the DB, then let housekeeping delete the pod."""
        assert self.client is not None
        try:
            text = await self.client.pod_log(key[0], self._pod_name(key, dag, state, task_id, try_number), container="base")
            if text is not None:
                text = self.masker.mask(text)
                await self._save(key, dag, state)  # the try's row must exist first
                await self._db(history.archive_log, key[0], dag.dag_id, state.run.run_id, task_id, try_number, text)
            state.archived.add((task_id, try_number))
        except Exception:  # noqa: BLE001 - retried by the next pass
            log.exception("archiving the log of %s try %d in %s/%s failed", task_id, try_number, *key)
        finally:
            state.archiving.discard((task_id, try_number))
        self.queue.add(key)

    def _housekeeping(self, key: Key, dag: DAG, state: RunState, pods: Mapping[tuple[str, int], Mapping[str, Any]],
                      now: datetime, wake_at: datetime | None) -> None:
        """Archive logs of finished tries found after a restart, delete pods past retention, set the next wake-up."""
        times = [wake_at] if wake_at else []
        for (task_id, try_number), pod in pods.items():
            ti = state.tis.get(task_id)
            active = ti is not None and ti.try_number == try_number and ti.state in engine.ACTIVE_STATES
            if not active and "uid" in (pod.get("metadata") or {}) and (task_id, try_number) not in state.archived:
                self._archive(key, dag, state, task_id, try_number)
            if active:
                deadline = observe.pending_deadline(pod, self.config.image_pull_timeout)
                if deadline is not None:
                    times.append(deadline)
        due, later = observe.finished_pod_deletions(pods, state.tis, state.archived, now, self.config.pod_retention)
        for task_id, try_number in due:
            self._spawn(self._delete_pod_named(key, pods[(task_id, try_number)]["metadata"]["name"]))
        if later:
            times.append(later)
        if times:
            self.queue.add_after(key, (min(times) - self.clock()).total_seconds())

    # -- actions, in-controller tasks, pools, variables ---------------------------------------------
    def _apply_actions(self, key: Key, dag: DAG, state: RunState, body: Mapping[str, Any], now: datetime) -> list[tuple[str, int, str]]:
        """Apply ``spec.actions`` not applied yet (:func:`kubedag.core.engine.clear` / :func:`kubedag.core.engine.mark`);
        returns the tries whose pods to delete. An action that cannot apply (unknown task) is recorded as
        applied, with a Warning Event saying why."""
        from pydantic import ValidationError

        from kubedag.core.spec.dagrun import RunAction
        from kubedag.core.states import TaskInstanceState as S

        kills: list[tuple[str, int, str]] = []
        for raw in (body.get("spec") or {}).get("actions") or []:
            ident = raw.get("id") if isinstance(raw, Mapping) else None
            if not ident or ident in state.applied:
                continue
            state.applied.append(ident)
            try:
                action = RunAction.model_validate(raw)
                if action.type == "clear":
                    res = engine.clear(dag, state.run, state.tis, action.tasks, upstream=action.upstream,
                                       downstream=action.downstream, only_failed=action.only_failed, now=now)
                else:
                    res = engine.mark(dag, state.run, state.tis, action.tasks, S(action.state), now=now)
            except (ValidationError, ValueError) as exc:
                self._event(body, "Warning", "ActionFailed", f"action {ident}: {exc}"[:1024])
                continue
            before = dict(state.tis)
            state.run = res.run
            for task_id, ti in res.updates.items():
                state.tis[task_id] = ti
                state.unsaved_tis[task_id] = ti
            for kill in res.kills:
                kills.append((kill.task_id, kill.try_number, kill.reason))
                old = before[kill.task_id]
                from kubedag.core.tries import TryRecord

                state.unsaved_tries.append(TryRecord(kill.task_id, kill.try_number, S.FAILED, old.start_date, now, None, kill.reason))
            if action.type == "clear":
                for task_id in res.task_ids:
                    state.pokes.pop(task_id, None)
                    state.checks.pop(task_id, None)
                    for xkey in [k for k in state.xcoms if k[0] == task_id]:
                        del state.xcoms[xkey]
                    for xkey in [k for k in state.unsaved_xcoms if k[0] == task_id]:
                        del state.unsaved_xcoms[xkey]
                state.unsaved_cleared.update(res.task_ids)
            what = "cleared" if action.type == "clear" else f"marked {action.state}"
            self._event(body, "Normal", "Cleared" if action.type == "clear" else "Marked",
                        f"action {ident}: {what} {', '.join(res.task_ids) or 'nothing'}"[:1024])
        return kills

    async def _render_inputs(self, key: Key, dag: DAG, state: RunState) -> runpass.RenderInputs:
        """XComs of the run, and the DAG's variables and connections (read only when it names sources)."""
        def pull(task_id: str, xkey: str) -> Any:
            from kubedag.core.xcom import NO_XCOM

            return state.xcoms.get((task_id, xkey), NO_XCOM)

        if not (dag.variables_from or dag.connections_from):
            return runpass.RenderInputs(xcom_pull=pull)
        sources = await self._sources(key[0], dag)
        return runpass.RenderInputs(xcom_pull=pull, variables=sources.variables, connections=sources.connections,
                                    missing=tuple(sources.missing))

    async def _sources(self, namespace: str, dag: DAG) -> Any:
        """The DAG's ``variablesFrom``/``connectionsFrom`` (:func:`kubedag.core.secrets.load_sources`), read with GETs by
        name and cached ``sources_ttl``; also computes the ``secretKeyRef`` variables of its connections."""
        from kubedag.core.secrets import CONN_ENV_PREFIX, load_sources

        assert self.client is not None
        loop = asyncio.get_running_loop()
        cache_key = (namespace, dag.dag_id)
        cached = self.sources.get(cache_key)
        if cached is not None and cached[0] > loop.time():
            return cached[1]
        objects: dict[tuple[str, str], Any] = {}
        wanted = [("ConfigMap", r["configMapRef"]["name"]) for r in dag.variables_from if r.get("configMapRef")]
        wanted += [("Secret", r["secretRef"]["name"]) for r in (*dag.variables_from, *dag.connections_from) if r.get("secretRef")]
        for kind, name in dict.fromkeys(wanted):
            objects[(kind, name)] = await self.client.get("v1", "configmaps" if kind == "ConfigMap" else "secrets", namespace, name)
        sources = load_sources(dag.variables_from, dag.connections_from, lambda kind, name: objects.get((kind, name)))
        for secret in sources.masker.secrets:
            self.masker.add(secret)
        secret_env: dict[str, tuple[str, str]] = {}
        import re

        for ref in dag.connections_from:
            name = ref["secretRef"]["name"]
            obj = objects.get(("Secret", name)) or {}
            for conn_id in [*(obj.get("data") or {}), *(obj.get("stringData") or {})]:
                secret_env[CONN_ENV_PREFIX + re.sub(r"[^A-Z0-9_]", "_", conn_id.upper())] = (name, conn_id)
        self.sources[cache_key] = (loop.time() + self.config.sources_ttl.total_seconds(), sources, secret_env)
        return sources

    async def _controller_checks(self, key: Key, dag: DAG, state: RunState, now: datetime,
                                 inputs: runpass.RenderInputs) -> dict[str, runpass.ControllerCheck]:
        """Verdicts on the queued and running in-controller tasks (a running task's not-met verdict is kept until
        its ``recheck_at``); an error while checking is "not met", looked at again in 30 s."""
        out: dict[str, runpass.ControllerCheck] = {}
        for task_id, ti in state.tis.items():
            task = dag.tasks.get(task_id)
            if task is None or not task.runs_in_controller or ti.state not in engine.ACTIVE_STATES:
                continue
            cached = state.checks.get(task_id)
            if cached is not None and ti.state == TaskInstanceState.RUNNING and cached[0] == ti.try_number \
                    and cached[1].outcome == "not_met" and cached[1].recheck_at is not None and cached[1].recheck_at > now:
                out[task_id] = cached[1]
                continue
            try:
                if task.trigger is not None:
                    check = await self._trigger_check(key, dag, state, ti, now, inputs)
                else:
                    check = await self._external_check(key, dag, state, ti, now, inputs)
            except Exception as exc:  # noqa: BLE001 - one bad check never stops the run
                log.exception("checking %s of %s/%s failed", task_id, *key)
                check = runpass.ControllerCheck("not_met", f"check failed: {exc}", recheck_at=now + timedelta(seconds=30))
            state.checks[task_id] = (ti.try_number, check)
            out[task_id] = check
        return out

    async def _external_check(self, key: Key, dag: DAG, state: RunState, ti: engine.TaskInstance, now: datetime,
                              inputs: runpass.RenderInputs) -> runpass.ControllerCheck:
        """An ``externalTask`` sensor against the metadata DB (Airflow's ``ExternalTaskSensor.poke``)."""
        from kubedag.core import templating
        from kubedag.core.sensors import external_logical_dates, external_outcome, external_summary
        from kubedag.store.external import external_states

        task = dag.tasks[ti.task_id]
        assert task.sensor is not None and task.sensor.external_task is not None
        check = task.sensor.external_task
        ctx = runpass.template_context(dag, state.run, ti.task_id, max(ti.try_number, 1), inputs)
        try:
            dates = external_logical_dates(check, state.run.logical_date, lambda t, f: templating.render(t, ctx, f))
        except ValueError as exc:
            return runpass.ControllerCheck("failed", f"template error in {exc}")
        states = await self._db(external_states, history.db_dag_id(key[0], check.dag), check.task, dates)
        outcome = external_outcome(check, states)
        return runpass.ControllerCheck(outcome, external_summary(check, dates, states),
                                       recheck_at=now + task.sensor.poke_interval)

    async def _trigger_check(self, key: Key, dag: DAG, state: RunState, ti: engine.TaskInstance, now: datetime,
                             inputs: runpass.RenderInputs) -> runpass.ControllerCheck:
        """A trigger task (Airflow's ``TriggerDagRunOperator``): find or create the target run, then follow it."""
        from kubedag.core import templating

        assert self.client is not None
        task = dag.tasks[ti.task_id]
        trig = task.trigger
        assert trig is not None
        target = self.parsed.get((key[0], trig.dag))
        if target is None or target.dag is None:
            why = "does not exist" if target is None else "is invalid"
            return runpass.ControllerCheck("failed", f"trigger: DAG {trig.dag} {why} in namespace {key[0]}")
        try_number = max(ti.try_number, 1)
        identity = f"{key[0]}/{key[1]}/{ti.task_id}/{try_number}"
        ctx = runpass.template_context(dag, state.run, ti.task_id, try_number, inputs)
        mine = next((b for k, b in self.runs.items() if k[0] == key[0] and
                     ((b.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_TRIGGERED_BY) == identity), None)
        reset_id = f"reset-{names.short_hash(identity, length=10)}"
        if mine is None:
            try:
                if trig.logical_date:
                    text = templating.render(trig.logical_date, ctx, "trigger.logicalDate").strip()
                    logical = datetime.fromisoformat(text.replace("Z", "+00:00"))
                    if logical.tzinfo is None:
                        logical = logical.replace(tzinfo=timezone.utc)
                else:
                    logical = ti.start_date or now
                run_id = (templating.render(trig.trigger_run_id, ctx, "trigger.triggerRunId").strip()
                          if trig.trigger_run_id else timetable.run_id("manual", logical))
                conf = _render_obj(trig.conf, ctx, "trigger.conf")
            except ValueError as exc:
                return runpass.ControllerCheck("failed", f"template error in {exc}")
            name = names.run_name(trig.dag, run_id)
            existing = self.runs.get((key[0], name)) or await self.client.get(names.API_VERSION, DAGRUNS, key[0], name)
            if existing is None:
                obj = {
                    "apiVersion": names.API_VERSION, "kind": "DAGRun",
                    "metadata": {"name": name, "namespace": key[0], "labels": names.run_labels(trig.dag),
                                 "annotations": {ANNOTATION_TRIGGERED_BY: identity}},
                    "spec": {"dagName": trig.dag, "runId": run_id, "runType": "manual",
                             "logicalDate": timetable.iso_utc(logical), "conf": conf},
                }
                try:
                    mine = await self.client.create(names.API_VERSION, DAGRUNS, key[0], obj)
                except ApiError as exc:
                    if exc.status != 409:
                        raise
                    return runpass.ControllerCheck("not_met", "the triggered run exists: looking again", recheck_at=now)
                self.on_run_event("ADDED", mine)
                self._event(self.runs.get(key) or {}, "Normal", "Triggered", f"{ti.task_id} triggered DAGRun {name} ({run_id})")
            elif any(a.get("id") == reset_id for a in (existing.get("spec") or {}).get("actions") or []):
                mine = existing
            elif not trig.reset_dag_run:
                return runpass.ControllerCheck(
                    "failed", f"trigger: DAG {trig.dag} has a run {run_id} already (DAGRun {name}); set resetDagRun to run it again")
            else:  # Airflow 2.10: clear the existing run, which then runs again
                actions = [*((existing.get("spec") or {}).get("actions") or []), {"id": reset_id, "type": "clear"}]
                mine = await self.client.patch(names.API_VERSION, DAGRUNS, key[0], name, {"spec": {"actions": actions}})
                self.on_run_event("MODIFIED", mine)
        meta, spec, status = mine.get("metadata") or {}, mine.get("spec") or {}, mine.get("status") or {}
        xcoms = {"trigger_run_id": spec.get("runId"), "trigger_logical_date": spec.get("logicalDate")}
        if not trig.wait_for_completion:
            return runpass.ControllerCheck("met", f"triggered DAGRun {meta.get('name')}", xcoms=xcoms)
        resetting = any(a.get("id") == reset_id for a in spec.get("actions") or []) and reset_id not in (status.get("appliedActions") or [])
        phase = None if resetting else status.get("phase")
        if phase in trig.allowed_states:
            return runpass.ControllerCheck("met", f"triggered DAGRun {meta.get('name')} is {phase}", xcoms=xcoms)
        if phase in trig.failed_states:
            return runpass.ControllerCheck("failed", f"triggered DAGRun {meta.get('name')} is {phase} (in failedStates)")
        return runpass.ControllerCheck("not_met", f"waiting for DAGRun {meta.get('name')} ({phase or 'not started'})",
                                       recheck_at=now + trig.poke_interval)

    def _pool_usage(self, namespace: str) -> dict[str, tuple[int, int]]:
        """pool -> (slots of queued tries, slots of running tries), over every run of the namespace."""
        usage: dict[str, list[int]] = {}
        for (ns, _), st in self.states.items():
            if ns != namespace:
                continue
            parsed = self.parsed.get((ns, st.run.dag_id))
            if parsed is None or parsed.dag is None:
                continue
            for task_id, ti in st.tis.items():
                if ti.state in engine.ACTIVE_STATES and task_id in parsed.dag.tasks:
                    task = parsed.dag.tasks[task_id]
                    entry = usage.setdefault(task.pool, [0, 0])
                    entry[0 if ti.state == TaskInstanceState.QUEUED else 1] += task.pool_slots
        return {k: (v[0], v[1]) for k, v in usage.items()}

    def _pool_slots(self, namespace: str) -> dict[str, int]:
        from kubedag.core.spec.dag import DEFAULT_POOL, DEFAULT_POOL_SLOTS

        slots = {DEFAULT_POOL: DEFAULT_POOL_SLOTS}
        for (ns, name), body in self.pools.items():
            if ns == namespace:
                try:
                    slots[name] = int((body.get("spec") or {}).get("slots", 0))
                except (TypeError, ValueError):
                    continue
        return slots

    def _pool_free(self, namespace: str) -> dict[str, int]:
        """Open slots per pool of the namespace (Airflow's ``Pool.open_slots``: slots less queued and running)."""
        usage = self._pool_usage(namespace)
        return {name: slots - sum(usage.get(name, (0, 0))) for name, slots in self._pool_slots(namespace).items()}

    def _pools_changed(self, namespace: str, dag: DAG, before: Mapping[str, engine.TaskInstance],
                       after: Mapping[str, engine.TaskInstance]) -> None:
        """After a pass: Pool statuses to write, and runs waiting on a pool whose slots were freed."""
        touched: set[str] = set()
        freed: set[str] = set()
        for task_id, ti in after.items():
            old = before.get(task_id)
            task = dag.tasks.get(task_id)
            if task is None or (old is not None and old.state == ti.state):
                continue
            if (old is not None and old.state in engine.ACTIVE_STATES) or ti.state in engine.ACTIVE_STATES:
                touched.add(task.pool)
            if old is not None and old.state in engine.ACTIVE_STATES and ti.state not in engine.ACTIVE_STATES:
                freed.add(task.pool)
        for name in touched:
            if (namespace, name) in self.pools:
                self.pool_queue.add((namespace, name))
        if freed:
            self._wake_pool_waiters(namespace, freed)

    def _wake_pool_waiters(self, namespace: str, pools: set[str]) -> None:
        """Queue the runs of ``namespace`` waiting on one of ``pools``, oldest logical date first."""
        waiting = sorted((st.run.logical_date, k) for k, st in self.states.items()
                         if k[0] == namespace and st.pool_blocked & pools and not st.run.finished)
        for _, k in waiting:
            self.queue.add(k)

    async def sync_pool(self, key: Key) -> None:
        """Write a Pool's status (occupied, queued, running, open) if it changed."""
        body = self.pools.get(key)
        if body is None or self.client is None:
            return
        queued, running = self._pool_usage(key[0]).get(key[1], (0, 0))
        slots = self._pool_slots(key[0]).get(key[1], 0)
        status = {"occupied": queued + running, "queued": queued, "running": running, "open": slots - queued - running,
                  "observedGeneration": (body.get("metadata") or {}).get("generation")}
        status = {k: v for k, v in status.items() if v is not None}
        if (body.get("status") or {}) == status:
            return
        try:
            updated = await self.client.patch(names.API_VERSION, POOLS, key[0], key[1], {"status": status}, sub="status")
        except ApiError as exc:
            if exc.status == 404:
                return
            raise
        if _newer(self.pools.get(key), updated):
            self.pools[key] = updated

    # -- notifications ------------------------------------------------------------------------------
    def _get_sender(self) -> Any:
        """The webhook sender (made on first use); its resolver reads Secrets through the API."""
        if self.sender is None and self.make_sender is None:
            log.warning("a DAG has notifiers, but the controller was given no webhook sender: they are not notified")
            self.make_sender = _no_sender
        if self.sender is None:
            from kubedag.core.notify import secret_resolver

            loop = self.loop

            def lookup_in(namespace: str) -> Any:
                def lookup(name: str, key: str) -> str:
                    import base64

                    assert loop is not None and self.client is not None
                    obj = asyncio.run_coroutine_threadsafe(self.client.get("v1", "secrets", namespace, name), loop).result(30)
                    if obj is None:
                        raise KeyError(f"Secret {name!r} not found in namespace {namespace}")
                    if key in (obj.get("stringData") or {}):
                        return str(obj["stringData"][key])
                    if key not in (obj.get("data") or {}):
                        raise KeyError(f"Secret {name!r} has no key {key!r}")
                    return base64.b64decode(obj["data"][key]).decode()
                return lookup

            def resolve(notifier: Any) -> Any:
                namespace, inner = notifier
                return secret_resolver(lookup_in(namespace))(inner)

            self.sender = self.make_sender(resolve, mask=self.masker.mask)
        return self.sender

    def _send(self, namespace: str, notifier: Any, notification: Any) -> None:
        try:
            sender = self._get_sender()
            if sender is not None:
                sender.send(_NamespacedNotifier(namespace, notifier), notification)
        except Exception:  # noqa: BLE001 - a notification never stops a pass
            log.exception("sending a notification failed")

    def _notify(self, key: Key, dag: DAG, state: RunState, before_run: engine.DagRun,
                before: Mapping[str, engine.TaskInstance]) -> None:
        """Task and run notifications for what changed in this pass (failures carry the pod log's tail)."""
        if not (dag.on_failure or dag.on_success or any(t.on_failure or t.on_success or t.on_retry for t in dag.tasks.values())):
            return
        from kubedag.core import notify

        for task_id, ti in state.tis.items():
            old = before.get(task_id)
            if old is ti:
                continue
            pairs = notify.task_notifications(dag, state.run, old, ti)
            if not pairs:
                continue
            if pairs[0][1].event == "task_success" or dag.tasks[task_id].runs_in_controller:
                for notifier, n in pairs:
                    self._send(key[0], notifier, n)
                continue
            self._spawn(self._notify_with_log(key, dag, state, old, ti))
        for notifier, n in notify.run_notifications(dag, before_run, state.run):
            self._send(key[0], notifier, n)

    async def _notify_with_log(self, key: Key, dag: DAG, state: RunState, old: engine.TaskInstance | None,
                               ti: engine.TaskInstance) -> None:
        from kubedag.core import notify

        text = None
        try:
            assert self.client is not None
            name = names.pod_name(dag.dag_id, key[1], ti.task_id, ti.try_number,
                                  state.pokes.get(ti.task_id, 0))
            text = await self.client.pod_log(key[0], name, container="base")
        except Exception:  # noqa: BLE001 - the notification goes without the log
            log.debug("no log for the notification of %s", ti.task_id, exc_info=True)
        for notifier, n in notify.task_notifications(dag, state.run, old, ti, log=text):
            self._send(key[0], notifier, n)

    def _sla(self, key: Key, dag: DAG, state: RunState, body: Mapping[str, Any], now: datetime,
             wake_at: datetime | None) -> datetime | None:
        """Report SLA misses of a scheduled run (Events, the DAG's ``onSlaMiss``); the next check joins ``wake_at``."""
        if not any(t.sla is not None for t in dag.tasks.values()):
            return wake_at
        from kubedag.core import notify

        for task_id, n in notify.sla_misses(dag, state.run, state.tis, now, state.sla_reported):
            state.sla_reported.add(task_id)
            self._event(body, "Warning", "SlaMiss", f"{task_id} {n.reason}"[:1024])
            for notifier in dag.on_sla_miss:
                self._send(key[0], notifier, n)
        nxt = notify.next_sla_check(dag, state.run, state.tis, now, state.sla_reported)
        return min((t for t in (wake_at, nxt) if t is not None), default=None)

    # -- events -------------------------------------------------------------------------------------
    def _event(self, body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        """Post a core/v1 Event about ``body`` in the background (never blocks, never fails the caller)."""
        if self.client is None:
            return
        meta = body.get("metadata") or {}
        now = engine.format_instant(self.clock())
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name', 'kubedag')}.", "namespace": meta.get("namespace") or "default"},
            "involvedObject": {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"), "name": meta.get("name"),
                               "namespace": meta.get("namespace"), "uid": meta.get("uid")},
            "reason": reason, "message": self.masker.mask(message), "type": kind,
            "source": {"component": "kubedag-controller"},
            "reportingComponent": "kubedag.io/controller", "reportingInstance": self.instance,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }

        async def post() -> None:
            try:
                assert self.client is not None
                await self.client.create("v1", "events", event["metadata"]["namespace"], event)
            except Exception as exc:  # noqa: BLE001 - an event is best effort
                log.debug("posting event %s failed: %s", reason, exc)

        self._spawn(post())


def _no_sender(*args: Any, **kwargs: Any) -> None:
    """The ``make_sender`` of a controller given none: no sender, so nothing is notified."""
    return None


@dataclass(frozen=True)
class _NamespacedNotifier:
    """A notifier with the namespace whose Secrets its URL comes from (what the sender's resolver gets)."""

    namespace: str
    notifier: Any

    def __iter__(self) -> Any:
        return iter((self.namespace, self.notifier))

    @property
    def slack(self) -> Any:
        return self.notifier.slack

    @property
    def webhook(self) -> Any:
        return self.notifier.webhook


def _render_obj(value: Any, ctx: Mapping[str, Any], where: str) -> Any:
    """Every string in a JSON-like value rendered as a template (a trigger's ``conf``)."""
    from kubedag.core import templating

    if isinstance(value, str):
        return templating.render(value, ctx, where)
    if isinstance(value, Mapping):
        return {k: _render_obj(v, ctx, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_render_obj(v, ctx, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


# ------------------------------------------------------------------------------------------- kopf
def make_registry(controller: Controller) -> Any:
    """A kopf registry wiring the controller: login, startup/cleanup, and the informers (DAGs, DAGRuns, Pools, pods)."""
    import kopf

    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> Any:
        return controller.connection.kopf_info()

    @kopf.on.startup(registry=registry)
    async def startup(settings: Any, **_: Any) -> None:
        settings.posting.enabled = False  # the controller posts its own Events
        settings.watching.server_timeout = 300
        await controller.start()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await controller.stop()

    @kopf.on.event(names.GROUP, names.VERSION, DAGS, registry=registry)
    def dag_event(event: Mapping[str, Any], **_: Any) -> None:
        controller.on_dag_event(event.get("type"), event["object"])

    @kopf.on.event(names.GROUP, names.VERSION, DAGRUNS, registry=registry)
    def run_event(event: Mapping[str, Any], **_: Any) -> None:
        controller.on_run_event(event.get("type"), event["object"])

    @kopf.on.event(names.GROUP, names.VERSION, "backfills", registry=registry)
    def backfill_event(event: Mapping[str, Any], **_: Any) -> None:
        controller.backfill.on_event(event.get("type"), event["object"])

    @kopf.on.event(names.GROUP, names.VERSION, POOLS, registry=registry)
    def pool_event(event: Mapping[str, Any], **_: Any) -> None:
        controller.on_pool_event(event.get("type"), event["object"])

    @kopf.on.event("", "v1", "pods", labels={names.LABEL_RUN: kopf.PRESENT}, registry=registry)
    def pod_event(event: Mapping[str, Any], **_: Any) -> None:
        controller.on_pod_event(event.get("type"), event["object"])

    return registry


def operator_kwargs(config: ControllerConfig) -> dict[str, Any]:
    """Arguments of ``kopf.operator`` for ``config``: standalone (one replica, no peering), the watched
    namespaces or the whole cluster, and the liveness endpoint."""
    kwargs: dict[str, Any] = {"standalone": True}
    if config.namespaces:
        kwargs["namespaces"] = list(config.namespaces)
    else:
        kwargs["clusterwide"] = True
    if config.liveness_port:
        kwargs["liveness_endpoint"] = f"http://0.0.0.0:{config.liveness_port}/healthz"
    return kwargs


async def serve(config: ControllerConfig, *, connection: Connection | None = None, sessionmaker: Any = None,
                stop_flag: Any = None, ready_flag: Any = None, clock: Callable[[], datetime] = utcnow,
                make_sender: Callable[..., Any] | None = None) -> Controller:
    """Run the controller until ``stop_flag`` is set (or forever); returns it (for tests and benchmarks).

    ``connection`` defaults to :func:`kubedag.k8s.client.load_connection` of the config's kubeconfig and
    context; ``sessionmaker`` to the metadata DB at ``config.database_url`` (migrated to head); ``make_sender``:
    see :class:`Controller`.
    """
    import kopf

    from kubedag.k8s.client import load_connection

    if connection is None:
        connection = load_connection(config.kubeconfig, config.context)
    engine_ = None
    if sessionmaker is None:
        from kubedag.store.db import open_store

        engine_, sessionmaker = open_store(config.database_url)
    controller = Controller(config, connection, sessionmaker, clock=clock, make_sender=make_sender)
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False
    try:
        await kopf.operator(registry=make_registry(controller), settings=settings, stop_flag=stop_flag,
                            ready_flag=ready_flag, **operator_kwargs(config))
    finally:
        if engine_ is not None:
            engine_.dispose()
    return controller


def main(config: ControllerConfig, log_level: str = "INFO", make_sender: Callable[..., Any] | None = None) -> None:
    """``kubedag controller``: log to stderr and serve until SIGINT/SIGTERM (``make_sender``: see :class:`Controller`)."""
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kopf").setLevel(max(logging.INFO, logging.getLogger().level))
    log.info("kubedag controller %s starting; namespaces: %s", os.environ.get("HOSTNAME", ""), config.namespaces or "all")
    asyncio.run(serve(config, make_sender=make_sender))


__all__ = ["Controller", "ControllerConfig", "Scheduler", "WorkQueue", "main", "make_registry", "serve"]

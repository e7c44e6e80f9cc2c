"""The controller manager: wires informers, work queues and one reconciler per resource (controller-runtime's
``Manager``), run by kopf.

* Informers (:mod:`kubedag.k8s.informers`): async ``on.event`` handlers update the cache and call the routing
  below, which enqueues keys. Nothing is decided from an event.
* Work queues (:mod:`kubedag.k8s.workqueue`), one per resource, each drained by its workers: DAGRuns by
  ``config.workers`` workers (:class:`kubedag.k8s.runs.RunReconciler`), DAGs (:class:`kubedag.k8s.dags.DagReconciler`,
  with its scheduling loop), Pools (:class:`kubedag.k8s.pools.PoolReconciler`) and Backfills
  (:class:`kubedag.k8s.backfill.BackfillReconciler`) by one each. A reconcile returns a
  :class:`kubedag.app.reconcile.Result` (requeue after N seconds) or raises (retried with backoff).
* Pod deletions: :class:`kubedag.k8s.retention.PodReaper`, one loop.

The metadata DB is reached only through the :class:`kubedag.app.ports.RunStore` port, composed in by the entry
point (``kubedag controller``: :mod:`kubedag.cli.controller`). A crash anywhere loses nothing: task instances are
in the DB (written every pass) and the status, pods have deterministic names (creating one again answers 409 and
is taken as "exists"), and a pod that is missing is looked up directly before its try is failed as lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from kubedag import __version__
from kubedag.app.ports import RunStore
from kubedag.core import naming as names
from kubedag.core.states import DagRunState
from kubedag.k8s import checks, informers, recovery
from kubedag.k8s.backfill import BackfillReconciler
from kubedag.k8s.client import LIST_CHUNK, Connection, KubeClient
from kubedag.k8s.limits import RequestLimits
from kubedag.k8s.dags import DagReconciler
from kubedag.k8s.events import EventPoster, WebhookNotifications
from kubedag.k8s.leader import LeaderElection, LeaderElectionLost, Leadership
from kubedag.k8s.pools import PoolReconciler
from kubedag.k8s.retention import PodReaper
from kubedag.k8s.runs import RunReconciler
from kubedag.k8s.sources import SourceCache
from kubedag.k8s.standby import Standby, active
from kubedag.k8s.workqueue import Background, Key, WorkQueue, run_worker
from kubedag.core.secrets import Masker

log = logging.getLogger("kubedag.controller")

STOP_TIMEOUT = 3.0
"""Seconds :meth:`Manager.stop` waits for the workers, then for background tasks, after cancelling them."""
FINISHED_POD_DELAY = 2.0
"""Seconds a finished run's pod event waits before its pass (issue 13: at a start with 10,000 pods kept, or when
their retention ends, each pod event of a finished run made a pass over all its tasks, and the runs at work
waited behind them); events meanwhile join that pass."""
FIRST_ROUND_WORKERS = 32
"""DAGRun workers at most while the first passes after a takeover are due (issue 13, "Bounded recovery"):
``--workers`` plus one extra per run whose warm memory is current, up to this; they end once every active run's
first pass has begun. Such a pass opens nothing and mostly waits on its pod creation and status write (each
~0.1-0.5 s on a busy API server), so more of them at once bring the last one's start forward; the API client's
bounds (``--api-concurrency``, qps) still apply. A run opened from the DB (a restart, a released Lease) is not
counted: 32 workers for such passes, whose open is a DB write, were not reliably faster (100 runs restarted on
SQLite, 4 restarts each way; ``benchmarks/failover.py --restart``)."""

SYNC_HOLD_MAX = 60.0
"""The longest finished runs' passes wait for the informer caches to be synced after the reconciles start, seconds
(:meth:`Manager.hold_finished_runs`; an API server that never lets the caches sync does not stop them for good)."""
WORKER_IDLE = 0.5
"""Seconds an idle kopf worker of one object waits for its next event before it exits (kopf's
``queueing.idle_timeout``, 5 s by default). A worker holds the whole last event of its object (a pod as the API
serves it, spec included) until it exits: at a start listing 10,000 kept pods, and in a 1,000-task run's bursts of
pod events, kopf's default held thousands of them at once (issue 13: RSS 183 MiB after a restart with 10,000 kept
pods, 137 MiB with this value; ``benchmarks/memory_kept_pods.py``). A later event of the object starts a new
worker (an asyncio task); kopf still handles one object's events one at a time."""


def utcnow() -> datetime:
    """The wall clock, UTC-aware."""
    return datetime.now(timezone.utc)


@dataclass
class ControllerConfig:
    """How the controller runs (each field has an environment variable and a flag; see ``kubedag controller --help``).

    ``namespaces``: namespaces to watch; empty = the whole cluster. ``database_url``: the metadata DB
    (None: ``KUBEDAG_DATABASE_URL`` or the local SQLite default). ``api_qps``/``api_burst``: client-side
    rate limit of API requests. ``workers``: DAGRuns reconciled at once (more for the first passes after a
    takeover: :data:`FIRST_ROUND_WORKERS`). ``pod_retention``: how long a
    finished try's pod is kept (its log is archived first). ``run_history_limit``: finished DAGRun
    objects kept per DAG (0 = keep all). ``image_pull_timeout``: how long a pod may wait on an image
    error before its try fails. ``liveness_port``: kopf's ``/healthz`` (None: off). ``sensor_image``: the image
    of built-in ``file``/``http`` sensor pods (kubedag's own; ``KUBEDAG_SENSOR_IMAGE``). ``sources_ttl``: how
    long ConfigMaps/Secrets read for ``variablesFrom``/``connectionsFrom`` are cached. ``leader_election``: see
    :mod:`kubedag.k8s.leader` (informers always run; reconciles only on the leader). ``history_resync``: how
    often finished runs' DB history is compared with their status and pods and corrected (also at start).
    """

    namespaces: list[str] = field(default_factory=list)
    database_url: str | None = None
    api_qps: float = 50.0
    api_burst: int = 100
    api_concurrency: int = 16
    """Kubernetes API requests in flight at most (:mod:`kubedag.k8s.limits`)."""
    api_queue: int = 1000
    """Kubernetes API calls waiting for a slot at most; one more fails at once (retried as a 429)."""
    workers: int = 8
    pod_retention: timedelta = timedelta(minutes=10)
    run_history_limit: int = 50
    image_pull_timeout: timedelta = timedelta(minutes=5)
    liveness_port: int | None = 8080
    kubeconfig: str | None = None
    context: str | None = None
    sensor_image: str = f"kubedag/controller:{__version__}"
    sources_ttl: timedelta = timedelta(seconds=10)
    leader_election: LeaderElection | None = None
    """None: this replica reconciles at once (one replica); else a hot standby until it holds the Lease."""
    history_resync: timedelta = timedelta(minutes=5)


class Manager:
    """The controller: caches, queues and reconcilers (see the module docstring). ``store``: the run store;
    ``make_sender(resolver, *, mask)``: the webhook sender (:func:`kubedag.http.webhook_sender`; None: notifiers
    are not sent); ``clock``: now, UTC-aware."""

    def __init__(self, config: ControllerConfig, connection: Connection, store: RunStore, *,
                 make_sender: Callable[..., Any] | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        self.config, self.connection, self.store, self.clock = config, connection, store, clock
        self.client: KubeClient | None = None
        self.cache = informers.Cache()
        self.run_queue, self.dag_queue, self.pool_queue, self.backfill_queue = (WorkQueue(name=n) for n in ("DAGRun", "DAG", "Pool", "Backfill"))
        self.background = Background()
        self.masker = Masker()
        get_client = lambda: self.client  # noqa: E731 - the session opens at start()
        self.events = EventPoster(get_client, self.background, self.masker.mask, clock)
        self.reaper = PodReaper(self._delete_pod, clock)
        self.cache.retained = self.reaper.holds
        self.dags = DagReconciler(self.cache, get_client, store, self._db, self.events, clock,
                                  phase_of=lambda k: self.runs.phase_of(k), last_run=lambda k: self.runs.last_run(k),
                                  run_waits=self._run_waits, seen_run=self.on_run_event)
        in_process = checks.InProcessTasks(self.cache, get_client, self.dags.dag_of, self.events, store, self._db,
                                           self.on_run_event)
        self.runs = RunReconciler(config, self.cache, get_client, store, self._db, dag_of=self._dag_of,
                                  in_process=in_process, sources=SourceCache(get_client, self.masker, config.sources_ttl),
                                  masker=self.masker, events=self.events,
                                  notifications=WebhookNotifications(get_client, self.masker.mask, make_sender), reaper=self.reaper,
                                  background=self.background, requeue=self.run_queue.add_after,
                                  phase_changed=self._phase_changed, pools_changed=self._pools_changed, clock=clock)
        self.pools = PoolReconciler(self.cache, get_client, self.runs.pool_usage)
        self.backfills = BackfillReconciler(self.cache, get_client, store, self._db, clock,
                                            parsed=self.dags.parsed.get, seen_run=self.on_run_event)
        self.standby = Standby(self.cache, self.dags, store, self._db,
                               lambda: self.leadership.quiet_since() if self.leadership is not None else None)
        self.tasks: list[asyncio.Task[Any]] = []
        self.leadership: Leadership | None = None
        self.leading = False
        """True once this replica reconciles (at once without leader election; else from its takeover on)."""
        self.takeover: dict[str, int] = {}
        """At takeover: ``runs`` (DAGRuns queued), ``active``, ``warm`` (memories prepared while following),
        ``current`` (of those, read after the former leader stopped writing: used by their first pass)."""
        self._first_round: set[Key] = set()
        """Active runs whose first pass since the takeover (or, listed at the start, since the start) has not begun."""
        self._first_unfinished: set[Key] = set()
        """Active runs whose first pass has not ended (pod log reads wait for none to be left)."""
        self._extra_workers = 0
        self._unhold: asyncio.TimerHandle | None = None
        self._first_passes_ended = False
        self._took_over_at = 0.0
        self.stopping = False

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the API session; start the workers, the scheduling loop and the pod reaper at once, or, with
        leader election, once this replica holds the Lease (:mod:`kubedag.k8s.leader`)."""
        self.client = KubeClient(self.connection, qps=self.config.api_qps, burst=self.config.api_burst,
                                 limits=RequestLimits(self.config.api_concurrency, self.config.api_queue))
        await self.client.__aenter__()
        if self.config.leader_election is None:
            self._start_reconciles()
            return
        self.leadership = Leadership(self.connection, self.config.leader_election,
                                     on_started=self._start_reconciles, on_stopped=self._fence)
        self.client.write_gate = self.leadership.may_write
        self.tasks = [asyncio.create_task(self.standby.run(), name="kubedag-standby")]
        await self.leadership.start()

    def _start_reconciles(self) -> None:
        """Lead: take the standby's current memories, queue every run (active ones first: each has its first
        reconcile before any run has a second, the work queue being FIFO and empty on a follower), every DAG,
        Pool and Backfill, and start the workers and loops."""
        if self.stopping:  # the Lease was won while stopping: it is released by stop()
            return
        for task in self.tasks:  # the warm standby
            task.cancel()
        self.leading = True
        current, warm = self.standby.handover()
        self.runs.adopt(current)
        first = [k for k, body in self.cache.runs.items() if active(body) or not body.get("status")]
        for key in [*first, *self.cache.runs]:  # a new leader looks at every run its informers filled in
            self.run_queue.add(key, later=not self._due_first(self.cache.runs[key]))  # finished: behind every other
        self.takeover = {"runs": len(self.cache.runs), "active": len(first), "warm": warm, "current": len(current)}
        self._took_over_at = time.monotonic()
        if self.leadership is not None:
            log.info("taking over: %d DAGRuns queued, %d active first; %d runs warm, %d of them current (their first "
                     "pass opens nothing)", len(self.cache.runs), len(first), warm, len(current))
        for queue, objects in ((self.dag_queue, self.cache.dags), (self.pool_queue, self.cache.pools),
                               (self.backfill_queue, self.cache.backfills)):
            for key in list(objects):
                queue.add(key)
        loops = [run_worker(self.run_queue, self._reconcile_run, "DAGRun") for _ in range(max(1, self.config.workers))]
        loops += [run_worker(self.dag_queue, self.dags.reconcile, "DAG"), run_worker(self.pool_queue, self.pools.reconcile, "Pool"),
                  run_worker(self.backfill_queue, self.backfills.reconcile, "Backfill"), self.dags.scheduler.run(),
                  self.reaper.run(), self.runs.resync_history(self.config.history_resync.total_seconds(), self._add_later)]
        self.tasks = [asyncio.create_task(loop, name=f"kubedag-{i}") for i, loop in enumerate(loops)]
        self._unhold = asyncio.get_running_loop().call_later(SYNC_HOLD_MAX, self.run_queue.release_later)
        for key in first:
            self._first_pass_due(key)
        extra = min(len([k for k in first if k in current]), FIRST_ROUND_WORKERS) - max(1, self.config.workers)
        for _ in range(max(0, extra)):  # warm first passes: more at once (see FIRST_ROUND_WORKERS)
            self._extra_workers += 1
            task = asyncio.create_task(run_worker(self.run_queue, self._reconcile_run, "DAGRun",
                                                  while_=lambda: bool(self._first_round)), name="kubedag-first-round")
            self.tasks.append(task)
            task.add_done_callback(self._extra_worker_ended)

    def _first_pass_due(self, key: Key) -> None:
        """An active run waits for its first pass since the start or takeover: until no such run is left, pod log
        reads wait (the first passes' API requests go first; a pass needs none)."""
        self._first_round.add(key)
        self._first_unfinished.add(key)
        self.runs.hold_log_reads()

    @staticmethod
    def _due_first(body: Mapping[str, Any]) -> bool:
        """Whether a run's pass after a start or takeover comes in the first round (active, or new: no status)."""
        return active(body) or not body.get("status")

    def _run_waits(self, key: Key) -> None:
        """A run looks at its DAG again (validated, changed or deleted): a finished one behind the active ones."""
        body = self.cache.runs.get(key)
        self.run_queue.add(key, later=body is not None and not self._due_first(body))

    def hold_finished_runs(self) -> Callable[[], None]:
        """Finished runs' passes (the run queue's lower lane) wait until the returned callable is called — the
        informer caches synced (:class:`kubedag.k8s.readiness.CacheSync`): a finished run's first pass compares its
        DB history with its kept pods, which must be cached by then — or :data:`SYNC_HOLD_MAX` seconds after the
        reconciles start (issue 13, "Bounded recovery")."""
        self.run_queue.hold_later()
        return self.run_queue.release_later

    def _add_later(self, key: Key) -> None:
        """Queue a run behind every other queued run (a finished run's convergence pass: issue 13, "Bounded
        recovery")."""
        self.run_queue.add(key, later=True)

    def _dag_of(self, namespace: str, name: str) -> Any:
        """:meth:`kubedag.k8s.dags.DagReconciler.dag_of`, the DAG validated now if its object was not yet (a start:
        the run's first pass need not wait for the DAG's reconcile, which then reuses this parse)."""
        dag = self.dags.dag_of(namespace, name)
        if dag is None:
            self.dags.prepare((namespace, name))
            dag = self.dags.dag_of(namespace, name)
        return dag

    def _extra_worker_ended(self, task: asyncio.Task[Any]) -> None:
        self._extra_workers -= 1
        if task in self.tasks:
            self.tasks.remove(task)

    async def _reconcile_run(self, key: Key) -> Any:
        """A run's pass; the first of the last active run since this replica took over logs how long after the
        takeover it began (the bound of the README's "Reliability": every active run reconciled once), and when
        the last first pass ended, pod log reads resume."""
        if key in self._first_round:
            self._first_round.discard(key)
            if not self._first_round and self.takeover.get("active") and "first_round_ms" not in self.takeover:
                seconds = time.monotonic() - self._took_over_at
                self.takeover["first_round_ms"] = round(seconds * 1000)
                log.info("the first reconcile of every one of the %d active runs began within %.2fs of the takeover",
                         self.takeover.get("active", 0), seconds)
        try:
            return await self.runs.reconcile(key)
        finally:
            if key in self._first_unfinished:
                self._first_unfinished.discard(key)
                if not self._first_unfinished:
                    if not self._first_passes_ended:  # once: later ones are of runs listed late, or new
                        self._first_passes_ended = True
                        log.info("the first passes ended %.2fs after the takeover or start", time.monotonic() - self._took_over_at)
                    self.runs.release_log_reads()

    def _fence(self) -> None:
        """Leadership lost: cancel every reconcile and background write now (the client refuses writes already)."""
        for task in [*self.tasks, *self.background.tasks]:
            task.cancel()

    def leader_lost(self) -> bool:
        """True once this replica lost its Lease (the controller then exits: :class:`LeaderElectionLost`)."""
        return self.leadership is not None and self.leadership.lost.is_set()

    async def stop(self) -> None:
        """Stop workers, loops and background tasks (each given at most :data:`STOP_TIMEOUT` seconds), release
        the Lease if held, close the API sessions."""
        self.stopping = True
        if self._unhold is not None:
            self._unhold.cancel()
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=STOP_TIMEOUT)
        self.tasks.clear()
        if self.leadership is not None:
            await self.leadership.stop()
        try:
            await asyncio.wait_for(self.background.close(), STOP_TIMEOUT)
        except TimeoutError:
            log.warning("background tasks did not stop within %ss", STOP_TIMEOUT)
        for queue in (self.run_queue, self.dag_queue, self.pool_queue, self.backfill_queue):
            queue.close()
        if self.client is not None:
            await self.client.close()

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking run-store call in a thread."""
        return await asyncio.to_thread(fn, *args)

    async def _delete_pod(self, namespace: str, name: str) -> bool:
        assert self.client is not None
        return await self.client.delete("v1", "pods", namespace, name)

    # -- routing of informer events (on the event loop) -----------------------------------------------
    def on_dag_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A DAG was listed, added, modified or deleted: its reconciler looks at it (a follower: its standby)."""
        if informers.Cache.store(self.cache.dags, event_type, body):
            if not self.leading:
                self.standby.touch_dag(informers.key_of(body))
                return
            self.dag_queue.add(informers.key_of(body))

    def on_run_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A DAGRun was listed, added, modified or deleted: it, its DAG's Backfills and the run that triggered it
        (``waitForCompletion``) look at it."""
        key = informers.key_of(body)
        if not informers.Cache.store(self.cache.runs, event_type, body):
            return
        if not self.leading:  # a follower queues nothing: its takeover queues every run (fairly)
            self.standby.touch_run(key)
            return
        listed = event_type is None and key not in self.runs.memories  # at the start (or a relisting)
        if listed and self._due_first(body):
            self._first_pass_due(key)
        if event_type == "DELETED":
            self.run_queue.drop(key)
        self.run_queue.add(key, later=listed and not self._due_first(body))  # finished: behind the active runs
        for backfill in self.backfills.keys_for_run(body):
            self.backfill_queue.add(backfill)
        origin = checks.triggered_by(body)
        if origin is not None and origin[0] in self.cache.runs:
            self.runs.stale_checks.setdefault(origin[0], set()).add(origin[1])
            self.run_queue.add(origin[0])

    def on_backfill_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A Backfill was listed, added, modified or deleted."""
        key = informers.key_of(body)
        if informers.Cache.store(self.cache.backfills, event_type, body) and self.leading:
            if event_type == "DELETED":
                self.backfill_queue.drop(key)
            else:
                self.backfill_queue.add(key)

    def on_pool_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A Pool was listed, added, modified or deleted: runs of its namespace waiting on it look again."""
        key = informers.key_of(body)
        changed = informers.Cache.store(self.cache.pools, event_type, body)
        if not self.leading:
            return
        if changed and event_type != "DELETED":
            self.pool_queue.add(key)
        for run_key in self.runs.waiting_on(key[0], {key[1]}):
            self.run_queue.add(run_key)

    def on_pod_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """One of kubedag's pods changed: its DAGRun is reconciled; a deleted pod's deletion is done. A pod of an
        archived try that the pod reaper holds (:meth:`kubedag.k8s.runs.RunReconciler.retain`: handed now, or
        before) is not cached, and only its deletion makes a pass."""
        meta = body.get("metadata") or {}
        key = (meta.get("namespace") or "", (meta.get("labels") or {}).get(names.LABEL_RUN) or "")
        if not key[1]:
            return
        name = meta.get("name") or ""
        uncached = name not in self.cache.pods.get(key, {})
        if event_type == "DELETED":
            self.reaper.gone(key[0], name)
            if not uncached:
                self.cache.store_pod(event_type, body)
        elif uncached and (self.reaper.holds(key[0], name) or (self.leading and self.runs.retain(key, body))):
            return
        else:
            self.cache.store_pod(event_type, body)
        if not self.leading:
            return  # a follower queues nothing (its standby reads runs on its own)
        run = self.cache.runs.get(key)
        if key not in self.runs.memories and (run is None or not self._due_first(run)):
            self.run_queue.add(key, later=True)  # not open, finished or not listed yet (a start): its first pass,
            return  # behind the active runs', sees every pod cached by then
        if self.runs.phase_of(key) in (DagRunState.SUCCESS, DagRunState.FAILED):
            self.run_queue.add_after(key, FINISHED_POD_DELAY)  # a burst of its kept pods: one pass, not one each
        else:
            self.run_queue.add(key)

    # -- what a run's pass changes for others ---------------------------------------------------------
    async def _phase_changed(self, key: Key, dag_id: str, state: DagRunState) -> None:
        """A run changed state: its DAG's status (``lastRun``); when it finished, the DAG's queued runs and its
        schedule may move (a ``maxActiveRuns`` slot was freed) and old runs are cleaned up."""
        dag_key = (key[0], dag_id)
        self.dag_queue.add(dag_key)
        if state not in (DagRunState.SUCCESS, DagRunState.FAILED):
            return
        for other_key, _ in self.cache.runs_of(*dag_key):
            if other_key != key and self.runs.phase_of(other_key) in (None, DagRunState.QUEUED):
                self.run_queue.add(other_key)
        self.dags.unblock(dag_key)
        await self.runs.cleanup(*dag_key)

    def _pools_changed(self, namespace: str, touched: frozenset[str], freed: frozenset[str]) -> None:
        for name in touched:
            if (namespace, name) in self.cache.pools:
                self.pool_queue.add((namespace, name))
        if freed:
            for run_key in self.runs.waiting_on(namespace, freed):
                self.run_queue.add(run_key)


def make_registry(manager: Manager) -> Any:
    """A kopf registry wiring the manager: login, startup/cleanup, and the informers."""
    import kopf  # the controller's entry point only

    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> Any:
        return manager.connection.kopf_info()

    @kopf.on.startup(registry=registry)
    async def startup(settings: Any, **_: Any) -> None:
        settings.posting.enabled = False  # the controller posts its own Events
        settings.watching.server_timeout = 300
        await manager.start()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await manager.stop()

    informers.watch(registry, manager)
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


async def run(manager: Manager, *, stop_flag: Any = None, ready_flag: Any = None) -> Manager:
    """Run ``manager`` under kopf until ``stop_flag`` is set (or forever); returns it. API and watch failures are
    retried forever and a signal ends the process within :data:`kubedag.k8s.recovery.SHUTDOWN_GRACE`.

    Raises:
        LeaderElectionLost: the replica lost its Lease (it stopped writing at once; the process should exit 1).
    """
    import kopf  # the controller's entry point only

    settings = kopf.OperatorSettings()
    settings.posting.enabled = False
    settings.watching.chunk_size = LIST_CHUNK  # a restart with 10,000 kept pods lists them in pages
    settings.queueing.idle_timeout = WORKER_IDLE
    settings.persistence.diffbase_storage = informers.kopf_diffbase()  # no handler diffs: no copy of each event
    recovery.apply_bounds(settings)
    stop = asyncio.get_running_loop().create_future()
    watcher = asyncio.create_task(_stop_when(stop, stop_flag, manager), name="kubedag-stop")
    try:
        await kopf.operator(registry=make_registry(manager), settings=settings, stop_flag=stop, ready_flag=ready_flag,
                            memories=informers.kopf_memories(), **operator_kwargs(manager.config))
    finally:
        watcher.cancel()
    if manager.leader_lost():
        raise LeaderElectionLost("this replica could not renew its leader Lease in time")
    return manager


async def _stop_when(stop: asyncio.Future[Any], stop_flag: Any, manager: Manager) -> None:
    """Resolve ``stop`` once ``stop_flag`` (an asyncio/threading Event or Future, or None) is set, the manager
    lost its Lease, or it is stopping anyway (a signal: kopf would otherwise wait 5 s for its own waiter of
    ``stop`` as a hung task). Polled every 0.1 s: no thread is left blocked on a flag that is never set."""
    is_set = getattr(stop_flag, "is_set", None) or getattr(stop_flag, "done", None)
    while not ((is_set is not None and is_set()) or manager.leader_lost() or manager.stopping):
        await asyncio.sleep(0.1)
    if not stop.done():
        stop.set_result(None)


__all__ = ["ControllerConfig", "Manager", "make_registry", "operator_kwargs", "run", "utcnow"]

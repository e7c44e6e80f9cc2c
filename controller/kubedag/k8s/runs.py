"""The DAGRun reconciler: pods, status and the metadata DB of each run, through :func:`kubedag.app.reconcile.reconcile_run`.

One pass per key, by the one worker that holds the key (the run's only writer):

0. identity (:mod:`kubedag.k8s.runguards`): a new DAGRun without a date gets ``spec.logicalDate`` = now (microseconds);
   a run id another DAGRun holds fails the run (``RunIdTaken``), one whose DAGRun was deleted starts afresh with the
   old history archived; a run whose DAG was deleted ends (``DAGDeleted``, :mod:`kubedag.app.orphans`);
1. gather: the run's memory (:class:`kubedag.app.reconcile.RunMemory`, opened from the run store, else from the
   status, after a restart), its pods from the informer cache read as observed tries
   (:func:`kubedag.k8s.observe.observe_pods`), variables and connections, verdicts on in-process tasks, pool
   slots, fetched logs to archive;
2. plan: :func:`kubedag.app.reconcile.reconcile_run`;
3. act: create pods first (the latency that matters), then write the pass to the DB (even if a pod creation
   failed), keep the new memory once the write landed, write one status, then events, notifications, log reads
   and pod deletions (:class:`kubedag.k8s.retention.PodReaper`, each pod once).

A finished try's pod log is read in the background (a read only) and handed to the run's next pass, which
archives it in its DB write (no second writer): in a busy run the next pass comes with the next pod event, else
:data:`LOG_BATCH_DELAY` later; after a start or takeover the reads wait until every active run's first pass ended
(:meth:`RunReconciler.hold_log_reads`). Each archived try's pod is handed once to the pod reaper, due
``pod_retention`` after the try ended, and leaves the pod cache (:meth:`RunReconciler.retain`: the events of a
kept pod of an archived try are not cached either). Finished DAGRun objects beyond ``run_history_limit`` per DAG are deleted (their
pods go with them through owner references; their history stays in the DB).

A history that converges (issue 13): the first pass of a finished run after it is opened (a start), and every
``history_resync``, compares its DB rows with its status and kept pods and corrects the DB
(:func:`kubedag.app.convergence.converge_history`), never the status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from kubedag.app import metrics, pools
from kubedag.app.ports import (
    EventSink, NotificationSink, RunConflictError, RunIdTakenError, RunObject, RunStore, TryKey,
)
from kubedag.app.reconcile import (
    FINISHED, Result, RunMemory, RunPlan, after_launches, free_task_slots, reconcile_run,
)
from kubedag.core import engine, notify, runpass
from kubedag.core import naming as names
from kubedag.core.spec.dag import DAG, DEFAULT_POOL, DEFAULT_POOL_SLOTS
from kubedag.core.spec.dagrun import LastRun
from kubedag.core.states import DagRunState, TaskInstanceState
from kubedag.k8s import observe, podspec
from kubedag.k8s.applied import dagrun_problems, unknown_fields
from kubedag.k8s.checks import InProcessTasks
from kubedag.k8s.client import ApiError, KubeClient
from kubedag.k8s.informers import DAGRUNS, Cache
from kubedag.k8s.retention import PodReaper
from kubedag.k8s.runends import RunEnds
from kubedag.k8s.runguards import dagrun_exists, default_logical_date, invalid_spec_message, owned_by, refused
from kubedag.k8s.runstatus import RunStatusWriter, pool_problems
from kubedag.k8s.sources import SourceCache
from kubedag.k8s.standby import Warm, memory_from
from kubedag.k8s.workqueue import Background, Key
from kubedag.core.secrets import Masker

log = logging.getLogger("kubedag.controller")

LOG_ATTEMPTS = 5
"""Reads of a finished try's pod log before it is archived as unavailable."""
LOG_BATCH_DELAY = 1.0
"""Seconds after a log was read before the run's next pass archives it, unless another pass comes first."""
LOG_HOLD_MAX = 60.0
"""The longest a pod log read waits for the first passes after a start or takeover (:meth:`RunReconciler.hold_log_reads`), seconds."""
class RunReconciler(RunEnds):
    """Reconciles DAGRuns (see the module docstring); ``memories`` holds each open run's memory.

    ``dag_of(namespace, name)``: the valid DAG, why there is none, or None while it is validated; ``requeue(key, seconds)``: look at a run again after a delay;
    ``phase_changed(key, dag_id, state)``: a run changed state (its DAG's status, waiting runs, clean-up);
    ``pools_changed(namespace, touched, freed)``: pools whose usage changed / that freed slots.
    """

    def __init__(self, config: Any, cache: Cache, client: Callable[[], KubeClient | None], store: RunStore,
                 store_call: Callable[..., Awaitable[Any]], *, dag_of: Callable[[str, str], DAG | str | None],
                 in_process: InProcessTasks, sources: SourceCache, masker: Masker, events: EventSink,
                 notifications: NotificationSink, reaper: PodReaper, background: Background,
                 requeue: Callable[[Key, float], None], phase_changed: Callable[[Key, str, DagRunState], Awaitable[None]],
                 pools_changed: Callable[[str, frozenset[str], frozenset[str]], None],
                 clock: Callable[[], datetime]) -> None:
        self.config, self.cache, self._client, self._store, self._store_call = config, cache, client, store, store_call
        self._dag_of, self._in_process, self._sources, self._masker = dag_of, in_process, sources, masker
        self._events, self._notifications, self._reaper, self._background = events, notifications, reaper, background
        self._requeue, self._phase_changed, self._pools_changed, self._clock = requeue, phase_changed, pools_changed, clock
        self.status = RunStatusWriter(cache, client, events, clock, masker.mask)
        self.memories: dict[Key, RunMemory] = {}
        self.logs: dict[Key, dict[TryKey, str | None]] = {}
        """Mailbox: logs read in the background, archived by the run's next pass."""
        self.stale_checks: dict[Key, set[str]] = {}
        """Mailbox: in-process tasks whose kept verdict must be looked at again (their target run changed)."""
        self.reading: set[tuple[Key, TryKey]] = set()
        self._reads_open = asyncio.Event()
        self._reads_open.set()
        self.opened: dict[Key, str] = {}
        """The uid of the DAGRun object each memory was opened for."""
        self.verify: set[Key] = set()
        """Mailbox: finished runs whose DB history is compared with their status and pods by their next pass
        (:func:`kubedag.app.convergence.converge_history`): each finished run when opened, all every resync."""

    # -- what other reconcilers read -----------------------------------------------------------------
    def phase_of(self, key: Key) -> DagRunState | None:
        """A run's state as known (its memory, else its status), None when not known yet."""
        memory = self.memories.get(key)
        if memory is not None:
            return memory.run.state
        phase = ((self.cache.runs.get(key) or {}).get("status") or {}).get("phase")
        return DagRunState(phase) if phase else None

    def last_run(self, key: Key) -> tuple[datetime, LastRun] | None:
        """``(logical date, LastRun entry)`` of an open run (for its DAG's ``status.lastRun``)."""
        memory = self.memories.get(key)
        if memory is None:
            return None
        return memory.run.logical_date, LastRun.model_validate(
            {"runId": memory.run.run_id, "phase": memory.run.state, "logicalDate": memory.run.logical_date})

    def pool_slots(self, namespace: str) -> dict[str, int]:
        """The slots of every Pool of ``namespace``, the default pool's included."""
        slots: dict[str, int] = {DEFAULT_POOL: DEFAULT_POOL_SLOTS}
        for (ns, name), body in self.cache.pools.items():
            if ns == namespace:
                try:
                    slots[name] = int((body.get("spec") or {}).get("slots", 0))
                except (TypeError, ValueError):
                    continue
        return slots

    def pool_usage(self, namespace: str) -> dict[str, pools.PoolUsage]:
        """Every pool's slots and usage over the open runs of ``namespace`` (:func:`kubedag.app.pools.pool_usage`)."""
        slots = self.pool_slots(namespace)
        runs = []
        for (ns, _), memory in self.memories.items():
            dag = self._dag_of(ns, memory.run.dag_id) if ns == namespace else None
            if isinstance(dag, DAG):
                runs.append((dag, memory.tis))
        return pools.pool_usage(slots, runs)

    def waiting_on(self, namespace: str, pool_names: frozenset[str] | set[str]) -> list[Key]:
        """Open runs of ``namespace`` waiting on one of ``pool_names``, oldest logical date first."""
        waiting = sorted((m.run.logical_date, k) for k, m in self.memories.items()
                         if k[0] == namespace and m.pool_blocked & pool_names and not m.run.finished)
        return [k for _, k in waiting]

    def _free_slots(self, key: Key, dag: DAG) -> int:
        """:func:`kubedag.app.reconcile.free_task_slots` over the open runs of the DAG."""
        return free_task_slots(dag, (m.tis for k, m in self.memories.items() if k[0] == key[0] and m.run.dag_id == dag.dag_id))

    def _may_start(self, key: Key, dag: DAG, memory: RunMemory) -> bool:
        """A queued run may start while fewer than ``maxActiveRuns`` runs of its DAG run (oldest first)."""
        if memory.run.state != DagRunState.QUEUED:
            return True
        running = older_queued = 0
        for other_key, _ in self.cache.runs_of(key[0], dag.dag_id):
            if other_key == key:
                continue
            phase = self.phase_of(other_key)
            if phase == DagRunState.RUNNING:
                running += 1
            elif phase in (None, DagRunState.QUEUED):
                other = self.memories.get(other_key)
                if other is not None and other.run.logical_date < memory.run.logical_date:
                    older_queued += 1
        return running + older_queued < dag.max_active_runs

    def adopt(self, warm: Mapping[Key, Warm]) -> None:
        """Take over memories a warm standby prepared (:meth:`kubedag.k8s.standby.Standby.handover`): each run's
        first pass uses its memory instead of opening the run (the DB row exists and is this object's)."""
        for key, prepared in warm.items():
            self.memories[key] = prepared.memory
            self.opened[key] = prepared.uid

    def hold_log_reads(self) -> None:
        """Pod log reads wait from now on for :meth:`release_log_reads`, at most :data:`LOG_HOLD_MAX` seconds (the
        first passes after a start or takeover: each read is an API request those passes, which need theirs, would
        wait behind in the client's rate limit; issue 13, "Bounded recovery")."""
        self._reads_open.clear()

    def release_log_reads(self) -> None:
        """Let held pod log reads go (each then archived by its run's next pass, as always)."""
        self._reads_open.set()

    # -- the pass ------------------------------------------------------------------------------------
    async def reconcile(self, key: Key) -> Result:
        """One level-triggered pass over a DAGRun (see the module docstring)."""
        body = self.cache.runs.get(key)
        if body is None or self.opened.get(key, "") != ((body.get("metadata") or {}).get("uid") or ""):
            # deleted, or deleted and created again under the same name: the memory was another object's
            self.memories.pop(key, None)
            self.logs.pop(key, None)
            self.opened.pop(key, None)
        if body is None:
            return Result()
        if key not in self.memories and refused(body):
            return Result()
        if not body.get("status") and not (body.get("spec") or {}).get("logicalDate"):
            client = self._client()
            assert client is not None
            defaulted = await default_logical_date(client, self.cache, key, body, self._clock())
            if defaulted is None:
                return Result(requeue_after=0.5)
            body = defaulted
        dag_name = (body.get("spec") or {}).get("dagName")
        dag = self._dag_of(key[0], dag_name)
        if dag is None:  # being validated: the DAG reconciler queues its runs again
            return Result()
        if isinstance(dag, str):
            return await self._without_dag(key, body, dag_name, dag)
        memory = self.memories.get(key) or await self._open(key, dag, body)
        if memory is None:
            return Result()
        if key in self.verify:
            memory = await self._converge(key, dag, body, memory)
        now = self._clock()
        pods, stale = self._run_pods(key, memory)
        await self._confirm_missing(key, dag, memory, pods)
        inputs = await self._inputs(key, dag, memory)
        stale_checks = self.stale_checks.pop(key, set())
        checks = await self._in_process.verdicts(key, dag, memory, now, inputs, stale_checks)
        logs = self.logs.pop(key, {})
        pool_free = {name: u.slots - u.queued - u.running for name, u in self.pool_usage(key[0]).items()}
        plan = reconcile_run(
            dag, memory, observe.observe_pods(pods, now, self.config.image_pull_timeout), now,
            pod_name=lambda t, n, poke: names.pod_name(dag.dag_id, key[1], t, n, poke),
            actions=(body.get("spec") or {}).get("actions") or (), may_start=self._may_start(key, dag, memory),
            free_slots=self._free_slots(key, dag), pool_free=pool_free, inputs=inputs, checks=checks, logs=logs,
            lost=observe.pod_lost, mask=self._masker.mask if len(self._masker) else None,
            pool_slots=self.pool_slots(key[0]),
        )
        # other runs count this run's slots (pools, maxActiveTasks, maxActiveRuns) as decided, from now on
        self.memories[key] = plan.memory
        for pod in stale:
            self._reaper.schedule(key[0], pod["metadata"]["name"])
        launched = await asyncio.gather(*(self._create_pod(key, dag, plan, body, launch) for launch in plan.launches),
                                        return_exceptions=True)
        for launch in plan.launches:  # a rescheduled sensor's earlier poke, handed over already: deleted at once
            earlier = names.pod_name(dag.dag_id, key[1], launch.request.task_id, launch.request.try_number, launch.poke - 1)
            if launch.request.new_poke and launch.poke > 0 and self._reaper.holds(key[0], earlier):
                self._reaper.schedule(key[0], earlier)
        for stop in plan.stops:
            if (stop.task_id, stop.try_number) in memory.rejected:
                continue  # the API server refused its pod: there is none to delete (no DELETE answered 404)
            self._reaper.schedule(key[0], names.pod_name(dag.dag_id, key[1], stop.task_id, stop.try_number, stop.poke))
        created = [(l.request.task_id, l.request.try_number) for l, r in zip(plan.launches, launched) if r is True]
        rejected = {(l.request.task_id, l.request.try_number): r for l, r in zip(plan.launches, launched) if isinstance(r, str)}
        after = after_launches(plan.memory, created, rejected)
        saved, wrote = await asyncio.gather(
            self._store_call(self._store.save_pass, key[0], dag, plan.write) if plan.write is not None else asyncio.sleep(0),
            self.status.write_memory(key, body, after, pool_problems(after)), return_exceptions=True)
        if isinstance(saved, BaseException):  # the memory stays as it was: the retry computes the same transitions
            self.memories[key] = memory
            self.logs[key] = {**logs, **self.logs.get(key, {})}  # archived by the retry
            self.stale_checks.setdefault(key, set()).update(stale_checks)
            raise saved
        metrics.record_plan(f"{key[0]}/{dag.dag_id}", key, memory, after, plan)
        memory = self.memories[key] = after
        self._after(key, dag, body, plan, memory, pods, now)
        if plan.phase_changed:
            await self._phase_changed(key, dag.dag_id, memory.run.state)
        elif plan.archived and memory.run.state in FINISHED:  # a clean-up may have waited for these logs
            await self.cleanup(key[0], dag.dag_id)
        errors = [r for r in (*launched, wrote) if isinstance(r, BaseException)]
        if errors:
            raise errors[0]  # the pass's changes are written: the work queue retries with backoff
        return Result(self._requeue_after(memory, pods, plan.wake_at, now))

    def _after(self, key: Key, dag: DAG, body: Mapping[str, Any], plan: RunPlan, memory: RunMemory,
               pods: Mapping[TryKey, Mapping[str, Any]], now: datetime) -> None:
        """Effects of a pass that landed: events, notifications, log reads, pod deletions, pools."""
        for event in plan.events:
            self._events(body, event.kind, event.reason, event.message)
        for notifier, notification in plan.notifications:
            self._notifications(key[0], notifier, notification)
        for old, ti in plan.failure_notices:
            self._background.spawn(self._notify_with_log(key, dag, memory, old, ti), f"notifying {ti.task_id}")
        for (task_id, try_number), pod in pods.items():
            ti = memory.tis.get(task_id)
            if ti is not None and ti.try_number == try_number and ti.state in engine.ACTIVE_STATES:
                continue
            if (task_id, try_number) not in memory.archived:
                if "uid" in (pod.get("metadata") or {}):
                    self._read_log(key, pod["metadata"]["name"], (task_id, try_number))
                continue
            if not pod["metadata"].get("deletionTimestamp"):  # else being deleted: its DELETED event drops it
                self._hand_over(key, pod, ti, try_number, now)
        if plan.pools_touched or plan.pools_freed:
            self._pools_changed(key[0], plan.pools_touched, plan.pools_freed)

    def retain(self, key: Key, pod: Mapping[str, Any]) -> bool:
        """Hand a pod of an archived try of run ``key`` to the pod reaper instead of the pod cache (issue 13: flat
        memory with 10,000 finished pods kept); False (nothing done) unless the run's memory is open for the pod's
        DAGRun, the pod is its try's current poke, not being deleted, and its try is archived and not active.
        Called by the pod informer's routing for each event of a pod not cached (a start lists the kept pods)."""
        memory, meta = self.memories.get(key), pod.get("metadata") or {}
        uid = self.opened.get(key)
        if memory is None or not uid or meta.get("deletionTimestamp") or not owned_by(pod, uid) \
                or uid != ((self.cache.runs.get(key) or {}).get("metadata") or {}).get("uid"):
            return False
        labels = meta.get("labels") or {}
        try:
            task_id, try_number, poke = labels[names.LABEL_TASK], int(labels[names.LABEL_TRY]), int(labels.get(names.LABEL_POKE) or 0)
        except (KeyError, ValueError):
            return False
        ti = memory.tis.get(task_id)
        if (task_id, try_number) not in memory.archived or poke != memory.poke(task_id, try_number) \
                or (ti is not None and ti.try_number == try_number and ti.state in engine.ACTIVE_STATES):
            return False
        self._hand_over(key, pod, ti, try_number, self._clock())
        return True

    def _hand_over(self, key: Key, pod: Mapping[str, Any], ti: engine.TaskInstance | None, try_number: int,
                   now: datetime) -> None:
        """Schedule an archived try's pod for deletion ``pod_retention`` after the try ended, and drop it from the
        pod cache: nothing reads it any more (the try is recorded, its log archived), and the reaper's entry is all
        that is kept of it until it is deleted (:meth:`kubedag.k8s.manager.Manager.on_pod_event` then caches none
        of its events)."""
        name = pod["metadata"]["name"]
        end = observe.container_finished_at(pod) \
            or (ti.end_date if ti is not None and ti.try_number == try_number else None) or now
        self._reaper.schedule(key[0], name, end + self.config.pod_retention)
        cached = self.cache.pods.get(key)
        if cached is not None and cached.pop(name, None) is not None and not cached:
            del self.cache.pods[key]

    def _requeue_after(self, memory: RunMemory, pods: Mapping[TryKey, Mapping[str, Any]], wake_at: datetime | None,
                       now: datetime) -> float | None:
        times = [wake_at] if wake_at else []
        for (task_id, try_number), pod in pods.items():
            ti = memory.tis.get(task_id)
            if ti is not None and ti.try_number == try_number and ti.state in engine.ACTIVE_STATES:
                deadline = observe.pending_deadline(pod, self.config.image_pull_timeout)
                if deadline is not None:
                    times.append(deadline)
        return None if not times else max(0.0, (min(times) - self._clock()).total_seconds())

    async def _open(self, key: Key, dag: DAG, body: Mapping[str, Any]) -> RunMemory | None:
        """A run's memory rebuilt from the run store (else its status); None if the run cannot be opened (its
        status then says why)."""
        dropped = unknown_fields(body, dagrun_problems)
        try:
            run = observe.run_from_object(dag, body)
        except (ValidationError, ValueError) as exc:
            await self.status.fail(key, body, "InvalidSpec", "; ".join([*dropped, invalid_spec_message(exc)]))
            return None
        if dropped:
            await self.status.fail(key, body, "InvalidSpec", "; ".join(dropped))
            return None
        meta = body.get("metadata") or {}
        owner = RunObject(key[1], meta.get("uid") or "") if meta.get("uid") else None
        try:
            try:
                stored = await self._store_call(self._store.open_run, key[0], dag, run, owner)
            except RunIdTakenError as exc:
                client = self._client()
                assert client is not None
                if await dagrun_exists(client, self.cache, key[0], exc.holder):
                    await self.status.fail(key, body, "RunIdTaken", (
                        f"run id {run.run_id} of DAG {dag.dag_id} belongs to DAGRun {exc.holder.name}; a run's "
                        f"identity is (namespace, DAG, run id): this DAGRun runs nothing (give it another spec.runId)"))
                    return None
                archived = await self._store_call(self._store.archive_run, key[0], dag.dag_id, run.run_id, exc.holder.uid)
                if archived is not None:
                    self._events(body, "Normal", "RunIdReused", (
                        f"run id {run.run_id} was DAGRun {exc.holder.name}'s, which was deleted: its history is kept "
                        f"in the metadata DB as run {archived}, and this run starts afresh"))
                stored = await self._store_call(self._store.open_run, key[0], dag, run, owner)
        except RunConflictError as exc:
            await self.status.fail(key, body, "DuplicateLogicalDate", str(exc))
            return None
        status = body.get("status") or {}
        memory = memory_from(dag, key, body, run, stored)
        self.memories[key] = memory
        self.opened[key] = meta.get("uid") or ""
        log.info("opened DAGRun %s/%s (%s)", *key, run.state)  # its first pass since this start (recovery times)
        if status.get("phase") in ("success", "failed"):
            self.verify.add(key)
        return memory

    def _run_pods(self, key: Key, memory: RunMemory) -> tuple[dict[TryKey, dict[str, Any]], list[dict[str, Any]]]:
        """The run's pods by ``(task_id, try_number)`` (for a rescheduled sensor's current try: its current poke's
        pod), and the pods of earlier pokes or of a deleted DAGRun of the same name (to delete)."""
        out: dict[TryKey, dict[str, Any]] = {}
        pokes: dict[TryKey, int] = {}
        stale = []
        uid = ((self.cache.runs.get(key) or {}).get("metadata") or {}).get("uid")
        for pod in self.cache.pods.get(key, {}).values():
            if not owned_by(pod, uid):
                if not (pod.get("metadata") or {}).get("deletionTimestamp"):
                    stale.append(pod)
                continue
            labels = (pod.get("metadata") or {}).get("labels") or {}
            try:
                task_id, try_number = labels[names.LABEL_TASK], int(labels[names.LABEL_TRY])
                poke = int(labels.get(names.LABEL_POKE) or 0)
            except (KeyError, ValueError):
                continue
            ti = memory.tis.get(task_id)
            if ti is not None and ti.try_number == try_number:
                current = memory.pokes.get(task_id, 0)
                if poke != current:
                    if poke < current:
                        stale.append(pod)
                    continue
            elif (task_id, try_number) in pokes and pokes[(task_id, try_number)] > poke:
                continue
            pokes[(task_id, try_number)] = poke
            out[(task_id, try_number)] = pod
        return out, stale

    async def _confirm_missing(self, key: Key, dag: DAG, memory: RunMemory, pods: dict[TryKey, dict[str, Any]]) -> None:
        """A try whose pod was created but is not in the cache: ask the API server before calling it lost."""
        client = self._client()
        assert client is not None
        for task_id, ti in memory.tis.items():
            if ti.state in (TaskInstanceState.QUEUED, TaskInstanceState.RUNNING) and memory.launched.get(task_id) == ti.try_number \
                    and (task_id, ti.try_number) not in pods:
                name = names.pod_name(dag.dag_id, key[1], task_id, ti.try_number, memory.poke(task_id, ti.try_number))
                pod = await client.get("v1", "pods", key[0], name)
                if pod is not None:
                    self.cache.pods.setdefault(key, {})[name] = pod
                    pods[(task_id, ti.try_number)] = pod

    async def _inputs(self, key: Key, dag: DAG, memory: RunMemory) -> runpass.RenderInputs:
        """XComs of the run, and the DAG's variables and connections (read only when it names sources)."""
        from kubedag.core.xcom import NO_XCOM

        xcoms = memory.xcoms

        def pull(task_id: str, xkey: str) -> Any:
            return xcoms.get((task_id, xkey), NO_XCOM)

        if not (dag.variables_from or dag.connections_from):
            return runpass.RenderInputs(xcom_pull=pull)
        sources = await self._sources(key[0], dag)
        return runpass.RenderInputs(xcom_pull=pull, variables=sources.variables, connections=sources.connections,
                                    missing=tuple(sources.missing))

    async def _create_pod(self, key: Key, dag: DAG, plan: RunPlan, body: Mapping[str, Any], launch: Any) -> bool | str:
        """Create a try's pod: True when it exists now (created, or 409), the reason when the API server refused
        it (a 4xx other than 409 and 429: the try fails with it); other errors raise."""
        client = self._client()
        assert client is not None
        req = launch.request
        task = dag.tasks[req.task_id]
        manifest = podspec.build_pod(
            dag, task, namespace=key[0], run_name=key[1], run_uid=(body.get("metadata") or {}).get("uid", ""),
            run_id=plan.memory.run.run_id, try_number=req.try_number, command=req.command, args=req.args, env=req.env,
            image=self.config.sensor_image if podspec.uses_sensor_image(task) else None,
            secret_env=self._sources.secret_env(key[0], dag), poke=launch.poke,
        )
        asked = self._clock()
        try:
            created = await client.create("v1", "pods", key[0], manifest)
        except ApiError as exc:
            if exc.status == 409:
                existing = await client.get("v1", "pods", key[0], manifest["metadata"]["name"])
                if existing is not None and not owned_by(existing, manifest["metadata"]["ownerReferences"][0]["uid"]):
                    # a pod of a deleted DAGRun of the same name: not this try's; launched once it is gone
                    self._reaper.schedule(key[0], manifest["metadata"]["name"])
                    return False
                return True
            if 400 <= exc.status < 500 and exc.status != 429:
                log.warning("pod for %s try %d of %s/%s rejected: %s", req.task_id, req.try_number, *key, exc.message)
                return f"the API server rejected the pod ({exc.status}): {exc.message}"[:2048]
            raise
        metrics.try_started(f"{key[0]}/{dag.dag_id}", dag, key, plan.memory.tis, req.task_id, req.try_number, asked,
                            self._clock(), first_poke=launch.poke == 0)
        pods = self.cache.pods.setdefault(key, {})
        pods.setdefault(created["metadata"]["name"], created)
        return True

    async def _pod_log(self, key: Key, pod_name: str) -> str | None:
        """A pod's log (its ``base`` container), secrets masked; None when the pod is gone."""
        client = self._client()
        assert client is not None
        text = await client.pod_log(key[0], pod_name, container="base")
        return self._masker.mask(text) if text is not None else None

    def _read_log(self, key: Key, pod_name: str, try_key: TryKey) -> None:
        """Read a finished try's pod log in the background, for the run's next pass to archive."""
        if (key, try_key) in self.reading or try_key in self.logs.get(key, {}):
            return
        self.reading.add((key, try_key))
        self._background.spawn(self._read_log_now(key, pod_name, try_key), f"reading the log of pod {pod_name}")

    async def _read_log_now(self, key: Key, pod_name: str, try_key: TryKey) -> None:
        text: str | None = None
        try:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._reads_open.wait(), LOG_HOLD_MAX)
            for attempt in range(LOG_ATTEMPTS):
                try:
                    text = await self._pod_log(key, pod_name)
                    break
                except (ApiError, OSError, asyncio.TimeoutError) as exc:
                    if attempt == LOG_ATTEMPTS - 1:
                        log.warning("the log of pod %s/%s is unavailable: %s", key[0], pod_name, exc)
                    else:
                        await asyncio.sleep(0.5 * 2 ** attempt)
            self.logs.setdefault(key, {})[try_key] = text
        finally:
            self.reading.discard((key, try_key))
        self._requeue(key, LOG_BATCH_DELAY)

    async def _notify_with_log(self, key: Key, dag: DAG, memory: RunMemory, old: engine.TaskInstance | None,
                               ti: engine.TaskInstance) -> None:
        text = None
        try:
            client = self._client()
            assert client is not None
            name = names.pod_name(dag.dag_id, key[1], ti.task_id, ti.try_number, memory.pokes.get(ti.task_id, 0))
            text = await client.pod_log(key[0], name, container="base")
        except Exception:  # noqa: BLE001 - the notification goes without the log
            log.debug("no log for the notification of %s", ti.task_id, exc_info=True)
        for notifier, n in notify.task_notifications(dag, memory.run, old, ti, log=text):
            self._notifications(key[0], notifier, n)

    async def cleanup(self, namespace: str, dag_id: str) -> None:
        """Delete finished DAGRun objects of the DAG beyond ``run_history_limit`` (oldest logical date first); a
        run whose logs are still being read is deleted by a later clean-up."""
        limit = self.config.run_history_limit
        client = self._client()
        if limit <= 0 or client is None:
            return
        finished = sorted((m.run.logical_date, k) for k, _ in self.cache.runs_of(namespace, dag_id)
                          if (m := self.memories.get(k)) is not None and m.run.state in FINISHED)
        reading = {k for k, _ in self.reading}
        for _, run_key in finished[: max(0, len(finished) - limit)]:
            if run_key in reading or self.logs.get(run_key):
                continue
            log.info("deleting DAGRun %s/%s (beyond runHistoryLimit %d; its history stays in the DB)", *run_key, limit)
            await client.delete(names.API_VERSION, DAGRUNS, run_key[0], run_key[1])


__all__ = ["RunReconciler"]

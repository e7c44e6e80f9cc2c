"""The DAG reconciler: validation, status and conditions, and scheduling.

* **Validation** on every change of ``metadata.generation`` (the manifest rules of
  :mod:`kubedag.core.spec.loader` plus the Kubernetes-only ones of :func:`kubedag.k8s.podspec.kubernetes_problems`);
  ``status`` gets ``Ready`` (or ``Ready=False``, reason ``Invalid``, the errors as message),
  ``observedGeneration``, ``paused``, ``nextRunAt``, ``lastRun``. The status is written as a merge patch that
  sets every field it no longer has to null, so ``nextRunAt`` disappears while a DAG is paused or invalid.
* **Scheduling** (:class:`Scheduler`): one loop and one heap of ``(next due time, DAG)``; when a DAG falls due,
  :func:`kubedag.app.scheduling.decide` says which scheduled runs to create (catchup, endDate, maxActiveRuns) and
  their DAGRuns are created (:func:`kubedag.k8s.manifests.dagrun_manifest`; a run's name is a function of DAG and
  run id, so creating it twice is harmless and a restart never duplicates a run).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kubedag.app.ports import Clock, EventSink, RunStore
from kubedag.app.reconcile import Result
from kubedag.app.scheduling import decide
from kubedag.core import timetable
from kubedag.core import naming as names
from kubedag.core.spec.dag import DAG
from kubedag.core.spec.dagrun import Condition, DAGStatus, LastRun
from kubedag.core.states import DagRunState
from kubedag.k8s.applied import last_applied, unknown_fields
from kubedag.k8s.client import ApiError, KubeClient
from kubedag.k8s.informers import DAGRUNS, DAGS, Cache, newer
from kubedag.k8s.manifests import dagrun_manifest
from kubedag.k8s.recovery import expected_failure
from kubedag.k8s.workqueue import Key

log = logging.getLogger("kubedag.controller")


@dataclass
class ParsedDAG:
    """A DAG object as last validated: ``dag`` when valid, else ``errors`` (``path: message`` lines)."""

    generation: int | None
    dag: DAG | None
    errors: list[str] = field(default_factory=list)
    uid: str | None = None
    applied: str | None = None
    """The ``last-applied-configuration`` validated with it (an apply that only adds a dropped field changes it, and
    not the generation)."""


@dataclass
class DagSchedule:
    """Where a DAG's schedule stands: the last automated run's interval, the next run (None: none) and whether
    ``maxActiveRuns`` holds it back."""

    last: timetable.DataInterval | None
    next: timetable.DagRunInfo | None = None
    blocked_at: datetime | None = None


@dataclass(order=True)
class _Due:
    at: datetime
    seq: int
    key: Key = field(compare=False)


class Scheduler:
    """One loop over a heap of ``(next due time, DAG key)``: no timer per DAG, no polling of every DAG.

    :meth:`push` (re)sets a DAG's due time; stale heap entries are skipped by their sequence number. When an entry
    falls due, ``on_due(key)`` is awaited (a failure is retried 30 s later).
    """

    def __init__(self, on_due: Callable[[Key], Awaitable[Any]], clock: Clock) -> None:
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
                except Exception as exc:  # noqa: BLE001 - one DAG never stops the loop
                    if (expected := expected_failure(exc)) is not None:
                        log.warning("scheduling %s/%s failed: %s; retrying in 30s", *due.key, expected)
                    else:
                        log.exception("scheduling %s/%s failed; retrying in 30s", *due.key)
                    self.push(due.key, self._clock() + timedelta(seconds=30))
                continue
            timeout = None if not self._heap else max(0.0, (self._heap[0].at - now).total_seconds())
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=min(timeout, 3600) if timeout is not None else 3600)
            except asyncio.TimeoutError:
                pass


def _parsed_from(parsed: ParsedDAG, body: Mapping[str, Any]) -> bool:
    """Whether ``parsed`` is the validation of this version of the DAG object (generation, uid, applied manifest)."""
    meta = body.get("metadata") or {}
    return parsed.generation == meta.get("generation") and parsed.uid == meta.get("uid") \
        and parsed.applied == last_applied(body)


def validate(body: dict[str, Any]) -> ParsedDAG:
    """Parse and check a DAG object: fields the API server dropped (:func:`kubedag.k8s.applied.unknown_fields`),
    the manifest rules, then the Kubernetes-only rules."""
    from kubedag.core.spec.loader import DAGValidationError, parse_dag
    from kubedag.k8s import podspec

    meta = body.get("metadata") or {}
    generation, uid, applied = meta.get("generation"), meta.get("uid"), last_applied(body)

    def problems_of(manifest: dict[str, Any]) -> list[tuple[str, str]]:
        try:
            parse_dag(manifest)
        except DAGValidationError as exc:
            return [(e.path, e.message) for e in exc.errors]
        return []

    dropped = unknown_fields(body, problems_of)
    try:
        dag = parse_dag(dict(body))
    except DAGValidationError as exc:
        return ParsedDAG(generation, None, dropped + [str(e) for e in exc.errors], uid, applied)
    problems = dropped + [str(e) for e in podspec.kubernetes_problems(dag)]
    if problems:
        return ParsedDAG(generation, None, problems, uid, applied)
    return ParsedDAG(generation, dag, [], uid, applied)


class DagReconciler:
    """Validates, schedules and writes the status of DAG objects (see the module docstring).

    ``phase_of(run_key)``: a DAGRun's phase as the run reconciler knows it (None: not seen yet);
    ``last_run(run_key)``: its :class:`LastRun` entry; ``run_waits(run_key)``: a run waiting for this DAG is
    looked at again; ``store_call(fn, *args)`` runs a blocking store call in a thread.
    """

    def __init__(self, cache: Cache, client: Callable[[], KubeClient | None], store: RunStore,
                 store_call: Callable[..., Awaitable[Any]], events: EventSink, clock: Clock, *,
                 phase_of: Callable[[Key], DagRunState | None], last_run: Callable[[Key], tuple[datetime, LastRun] | None],
                 run_waits: Callable[[Key], None], seen_run: Callable[[str, dict[str, Any]], None]) -> None:
        self.cache, self._client, self._store, self._store_call = cache, client, store, store_call
        self._events, self._clock = events, clock
        self._phase_of, self._last_run, self._run_waits, self._seen_run = phase_of, last_run, run_waits, seen_run
        self.parsed: dict[Key, ParsedDAG] = {}
        self.warm: dict[Key, ParsedDAG] = {}
        """DAGs validated by a follower (:meth:`prepare`; nothing written): used until the leader's reconcile."""
        self.schedules: dict[Key, DagSchedule] = {}
        self.scheduler = Scheduler(self.schedule, clock)

    def forget(self, key: Key) -> None:
        """The DAG object is gone."""
        self.parsed.pop(key, None)
        self.warm.pop(key, None)
        self.schedules.pop(key, None)
        self.scheduler.remove(key)

    def dag_of(self, namespace: str, name: str) -> DAG | str | None:
        """The valid DAG ``name``; why there is none (``"does not exist"``, ``"is invalid"``); or None while its
        object is not validated yet (right after a restart: a run must not be told its valid DAG is invalid)."""
        body = self.cache.dags.get((namespace, name))
        if body is None:
            return "does not exist"
        parsed = self.parsed.get((namespace, name))
        if parsed is None or parsed.generation != (body.get("metadata") or {}).get("generation"):
            parsed = self.warm.get((namespace, name))
            if parsed is None or not _parsed_from(parsed, body):
                return None
        return parsed.dag if parsed.dag is not None else "is invalid"

    def prepare(self, key: Key) -> None:
        """A follower's warm standby: validate the DAG object now (pure; nothing is written), so that the runs of a
        new leader need not wait for its first reconcile (:meth:`dag_of`), which then reuses this parse."""
        body = self.cache.dags.get(key)
        if body is None:
            self.warm.pop(key, None)
            return
        for parsed in (self.parsed.get(key), self.warm.get(key)):
            if parsed is not None and _parsed_from(parsed, body):
                return
        self.warm[key] = validate(body)

    async def reconcile(self, key: Key) -> Result:
        """Validate a DAG when its generation changed, (re)schedule it, write its status."""
        body = self.cache.dags.get(key)
        if body is None:  # deleted: its runs that outlive it (made by hand: no owner reference) end
            self.forget(key)
            for run_key, _ in self.cache.runs_of(*key):
                self._run_waits(run_key)
            return Result()
        old = self.parsed.get(key)
        if old is None or not _parsed_from(old, body):
            warm = self.warm.pop(key, None)
            parsed = warm if warm is not None and _parsed_from(warm, body) else validate(body)
            self.parsed[key] = parsed
            if parsed.dag is None:
                self.scheduler.remove(key)
                self.schedules.pop(key, None)
                message = "; ".join(parsed.errors)
                log.warning("DAG %s/%s is invalid: %s", *key, message)
                self._events(body, "Warning", "Invalid", f"invalid DAG: {message}"[:1024])
            else:
                await self._store_call(self._store.save_dag, key[0], parsed.dag)
                if key not in self.schedules:
                    last = await self._store_call(self._store.latest_scheduled_interval, key[0], parsed.dag.dag_id)
                    self.schedules[key] = DagSchedule(last=last)
                self.schedules[key].next = None
                self.schedules[key].blocked_at = None
                self.scheduler.push(key, self._clock())
            for run_key, _ in self.cache.runs_of(key[0], key[1]):  # runs waiting for this DAG's validation
                self._run_waits(run_key)
        await self.write_status(key)
        return Result()

    def active_runs(self, key: Key) -> int:
        """Runs of the DAG that are queued or running (Airflow's count against ``max_active_runs``)."""
        finished = (DagRunState.SUCCESS, DagRunState.FAILED)
        return sum(1 for k, _ in self.cache.runs_of(*key) if self._phase_of(k) not in finished)

    def unblock(self, key: Key) -> None:
        """A run of the DAG finished: if ``maxActiveRuns`` held its schedule back, look again now."""
        schedule = self.schedules.get(key)
        if schedule is not None and schedule.blocked_at is not None:
            schedule.blocked_at = None
            self.scheduler.push(key, self._clock())

    async def schedule(self, key: Key) -> None:
        """Create the DAG's due runs (:func:`kubedag.app.scheduling.decide`), then push its next due time."""
        parsed = self.parsed.get(key)
        schedule = self.schedules.get(key)
        if parsed is None or parsed.dag is None or schedule is None:
            return
        dag = parsed.dag
        now = self._clock()
        decision = decide(dag, schedule.last, self.active_runs(key), now)
        for info in decision.create:
            await self.create_run(key, dag, info)
            schedule.last = info.data_interval
        schedule.next = decision.next
        if decision.blocked and decision.next is not None and schedule.blocked_at != decision.next.logical_date:
            schedule.blocked_at = decision.next.logical_date
            self._events(self.cache.dags[key], "Normal", "MaxActiveRunsReached",
                         f"run for {timetable.iso_utc(decision.next.logical_date)} waits: maxActiveRuns "
                         f"{dag.max_active_runs} runs are active")
        if decision.wake_at is not None:
            self.scheduler.push(key, decision.wake_at)
        await self.write_status(key)

    async def create_run(self, key: Key, dag: DAG, info: timetable.DagRunInfo) -> None:
        """Create the DAGRun of a scheduled interval (409: it exists, which is as good)."""
        client = self._client()
        assert client is not None
        run_id = timetable.run_id("scheduled", info.logical_date)
        body = dagrun_manifest(key[0], dag.dag_id, run_id, "scheduled", info.logical_date,
                               data_interval=info.data_interval, owner=("DAG", dag.dag_id, self.parsed[key].uid))
        name = body["metadata"]["name"]
        try:
            created = await client.create(names.API_VERSION, DAGRUNS, key[0], body)
        except ApiError as exc:
            if exc.status != 409:
                raise
            log.info("DAGRun %s/%s exists already", key[0], name)
            return
        log.info("created DAGRun %s/%s (%s)", key[0], name, run_id)
        self._seen_run("ADDED", created)
        self._events(self.cache.dags[key], "Normal", "RunCreated", f"created DAGRun {name} for {run_id}")

    def status(self, key: Key) -> DAGStatus:
        """The DAG's status as it should be now."""
        body = self.cache.dags[key]
        parsed = self.parsed[key]
        old = DAGStatus.model_validate(body.get("status") or {})
        if parsed.dag is None:
            ready = ("False", "Invalid", "; ".join(parsed.errors)[:32768])
        elif parsed.dag.paused:
            ready = ("True", "Paused", "the DAG is valid; scheduling is paused (spec.paused)")
        else:
            ready = ("True", "Scheduled", "the DAG is valid and scheduled")
        previous = next((c for c in old.conditions if c.type == "Ready"), None)
        transition = previous.last_transition_time if previous is not None and previous.status == ready[0] else self._clock()
        condition = Condition.model_validate({"type": "Ready", "status": ready[0], "reason": ready[1], "message": ready[2],
                                              "observedGeneration": parsed.generation, "lastTransitionTime": transition})
        schedule = self.schedules.get(key)
        next_at = None
        if parsed.dag is not None and not parsed.dag.paused and schedule is not None and schedule.next is not None:
            next_at = schedule.next.run_after
        runs = [entry for k, _ in self.cache.runs_of(*key) if (entry := self._last_run(k)) is not None]
        return DAGStatus.model_validate({
            "observedGeneration": parsed.generation,
            "conditions": [condition],
            "nextRunAt": next_at,
            "lastRun": max(runs, key=lambda e: e[0])[1] if runs else None,
            "paused": parsed.dag.paused if parsed.dag is not None else None,
        })

    async def write_status(self, key: Key) -> None:
        """Write the DAG's status if it changed: a merge patch of the status subresource in which every field the
        new status no longer has is null (so it is removed, not left stale)."""
        body = self.cache.dags.get(key)
        client = self._client()
        if body is None or key not in self.parsed or client is None:
            return
        status = self.status(key).to_k8s()
        old = body.get("status") or {}
        if status == old:
            return
        patch = {**{field_: None for field_ in old if field_ not in status}, **status}
        try:
            updated = await client.patch(names.API_VERSION, DAGS, key[0], key[1], {"status": patch}, sub="status")
        except ApiError as exc:
            if exc.status == 404:
                return
            raise
        if newer(self.cache.dags.get(key), updated):
            self.cache.dags[key] = updated


__all__ = ["DagReconciler", "DagSchedule", "ParsedDAG", "Scheduler", "validate"]

"""A follower's warm standby (issue 13, "Hot standby", "Bounded recovery"): while another replica leads, this one
prepares what the first pass of each active run needs, writing nothing, so a takeover reconciles every active
run at once.

* **DAGs**: each DAG object of the informer cache is validated (:meth:`kubedag.k8s.dags.DagReconciler.prepare`,
  pure), so runs need not wait for their DAG's first reconcile.
* **Run memories**: for each active DAGRun (one with a status, not finished, not refused) the memory its first pass
  would open (:class:`kubedag.app.reconcile.RunMemory`: from the run store, read only with
  :meth:`kubedag.app.ports.RunStore.stored_run`, else from the status) is built when first seen and rebuilt when
  the DAGRun or its DAG changed (at most every :data:`REFRESH_INTERVAL` seconds per run).
* **Final read**: the leader writes the DB until it fences itself. From
  :meth:`kubedag.k8s.leader.LeaderElector.quiet_since` on (the Lease record unchanged for ``renew_deadline``:
  the leader stopped writing; or released), every run is read once more; with client-go's timing that leaves
  ``lease_duration - renew_deadline`` (5 s) before this replica may acquire the Lease.
* **Handover** (:meth:`Standby.handover`, at takeover): the memories read after ``quiet_since`` are *current*
  (they saw every write of the former leader) and become the new leader's (its first pass skips opening them);
  the others are dropped and opened from the DB by the first pass as after a restart. A released Lease (the
  leader's SIGTERM) is taken over at once, before any final read: then no memory is current, the DAGs are.

Only the run store is read, from a thread; nothing here sends a request to the API server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from kubedag.app.ports import RunStore, StoredRun
from kubedag.app.reconcile import RunMemory, open_memory
from kubedag.core import naming as names
from kubedag.core.spec.dag import DAG
from kubedag.k8s import observe
from kubedag.k8s.applied import dagrun_problems, unknown_fields
from kubedag.k8s.dags import DagReconciler
from kubedag.k8s.informers import Cache
from kubedag.k8s.runguards import refused
from kubedag.k8s.workqueue import Key

log = logging.getLogger("kubedag.controller")

INTERVAL = 0.5
"""Seconds between two rounds of the standby loop (DAGs validated, changed runs rebuilt, the final read)."""
REFRESH_INTERVAL = 10.0
"""The shortest time between two rebuilds of one run's memory while its leader is alive, seconds (once the leader
is quiet, a changed run is rebuilt in the next round)."""
READERS = 4
"""Run store reads at once during a round."""


def memory_from(dag: DAG, key: Key, body: Mapping[str, Any], run: Any, stored: StoredRun) -> RunMemory:
    """The memory of a run being opened (:func:`kubedag.app.reconcile.open_memory`) from what the run store holds
    and the DAGRun's status (launched tries, rescheduled sensors' pokes, applied actions)."""
    status = body.get("status") or {}
    entries = status.get("tasks") or {}
    pokes = {}
    for task_id, entry in entries.items():
        task = dag.tasks.get(task_id)
        if task is not None and task.sensor is not None and task.sensor.mode == "reschedule" and entry.get("p"):
            pokes[task_id] = names.poke_from_suffix(key[1], task_id, entry["t"], entry["p"])
    return open_memory(run, stored, observe.tis_from_status(status),
                       launched={t: e["t"] for t, e in entries.items() if e.get("p")}, pokes=pokes,
                       applied=status.get("appliedActions") or [])


def active(body: Mapping[str, Any]) -> bool:
    """Whether a DAGRun object is active as its status says (has one, not finished)."""
    return (body.get("status") or {}).get("phase") in ("queued", "running")


@dataclass(frozen=True)
class Warm:
    """One run's prepared memory: the DAGRun ``uid`` and ``resource_version`` it was built from, and ``read_at``,
    the monotonic time its run store read began."""

    uid: str
    resource_version: str
    memory: RunMemory
    read_at: float


class Standby:
    """The warm standby (see the module docstring). ``store_call(fn, *args)`` runs a blocking store call in a
    thread; ``quiet_since()``: :meth:`kubedag.k8s.leader.Leadership.quiet_since`; ``monotonic``: seconds."""

    def __init__(self, cache: Cache, dags: DagReconciler, store: RunStore, store_call: Callable[..., Awaitable[Any]],
                 quiet_since: Callable[[], float | None], monotonic: Callable[[], float] = time.monotonic) -> None:
        self.cache, self.dags, self._store, self._store_call = cache, dags, store, store_call
        self._quiet_since, self._monotonic = quiet_since, monotonic
        self.warm: dict[Key, Warm] = {}
        """Prepared memories by DAGRun key (a debug accessor as well: ``len(warm)`` runs are warm)."""
        self.dirty: set[Key] = set()
        self.dirty_dags: set[Key] = set()
        self.reads = 0
        """Run store reads made (each run's memory built or rebuilt once per read)."""

    def touch_run(self, key: Key) -> None:
        """A DAGRun or one of its pods changed: rebuild its memory (not before :data:`REFRESH_INTERVAL`)."""
        self.dirty.add(key)

    def touch_dag(self, key: Key) -> None:
        """A DAG changed: validate it again, and rebuild its runs' memories."""
        self.dirty_dags.add(key)
        for run_key, _ in self.cache.runs_of(*key):
            self.dirty.add(run_key)

    async def run(self) -> None:
        """Prepare forever, a round every :data:`INTERVAL` seconds (cancelled at takeover)."""
        self.dirty_dags.update(self.cache.dags)
        while True:
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a standby that cannot prepare still takes over (cold)
                log.exception("the warm standby's round failed")
            await asyncio.sleep(INTERVAL)

    async def round(self) -> None:
        """One round: validate changed DAGs, drop memories of gone runs, (re)build the memories due."""
        for key in list(self.dirty_dags):
            self.dirty_dags.discard(key)
            self.dags.prepare(key)
        for key in [k for k in self.warm if k not in self.cache.runs]:
            del self.warm[key]
        now, quiet = self._monotonic(), self._quiet_since()
        due = []
        for key, body in list(self.cache.runs.items()):
            warm = self.warm.get(key)
            if not active(body) or refused(body):
                self.warm.pop(key, None)
                continue
            after_quiet = quiet is not None and quiet <= now
            final = after_quiet and (warm is None or warm.read_at < quiet)
            # once the leader is quiet a changed run is read again at once: its change is the leader's last write
            if warm is None or final or (key in self.dirty and (after_quiet or now - warm.read_at >= REFRESH_INTERVAL)):
                due.append(key)
        gate = asyncio.Semaphore(READERS)

        async def build(key: Key) -> None:
            async with gate:
                await self.build(key)

        await asyncio.gather(*(build(k) for k in due))

    async def build(self, key: Key) -> None:
        """Build one run's memory as its first pass would open it (read only); left cold when the run cannot be
        opened without a write (no DB row yet, not claimed by this object, an invalid spec, its DAG not valid)."""
        body = self.cache.runs.get(key)
        if body is None:
            return
        self.dirty.discard(key)
        meta = body.get("metadata") or {}
        dag = self.dags.dag_of(key[0], (body.get("spec") or {}).get("dagName") or "")
        if not isinstance(dag, DAG) or unknown_fields(body, dagrun_problems):
            self.warm.pop(key, None)
            return
        try:
            run = observe.run_from_object(dag, body)
        except (ValidationError, ValueError):
            self.warm.pop(key, None)
            return
        read_at = self._monotonic()
        found = await self._store_call(self._store.stored_run, key[0], dag.dag_id, run.run_id)
        self.reads += 1
        if found is None or not meta.get("uid") or found[0] != meta.get("uid") or self.cache.runs.get(key) is not body:
            self.warm.pop(key, None)  # to be created or claimed by the leader (a write), or changed meanwhile
            return
        self.warm[key] = Warm(meta["uid"], str(meta.get("resourceVersion") or ""), memory_from(dag, key, body, run, found[1]),
                              read_at)

    def handover(self) -> tuple[dict[Key, Warm], int]:
        """At takeover: the current memories (read after :meth:`quiet_since`, of the DAGRun object as cached now)
        and how many runs were warm in all. The standby's memories are emptied."""
        quiet = self._quiet_since()
        current = {}
        for key, warm in self.warm.items():
            meta = (self.cache.runs.get(key) or {}).get("metadata") or {}
            if quiet is not None and warm.read_at >= quiet and meta.get("uid") == warm.uid \
                    and str(meta.get("resourceVersion") or "") == warm.resource_version:
                current[key] = warm
        total = len(self.warm)
        self.warm = {}
        return current, total


__all__ = ["INTERVAL", "READERS", "REFRESH_INTERVAL", "Standby", "Warm", "active", "memory_from"]

"""How a DAGRun's life ends, as parts of :class:`kubedag.k8s.runs.RunReconciler` (a mixin over its attributes):
a run whose DAG is missing or was deleted (issue 13: ``DAGNotReady`` / ``DAGDeleted``), and a finished run whose
DB history is made to agree with its status and kept pods (:func:`kubedag.app.convergence.converge_history`,
at start and every ``history_resync``; never the status from the DB; the failures it records are posted as an
Event, as their pass's never was)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from kubedag.app.convergence import converge_history
from kubedag.app.orphans import end_orphaned_run
from kubedag.app.ports import RunHistory
from kubedag.app.reconcile import Result, RunMemory
from kubedag.core import naming as names
from kubedag.core.spec.dag import DAG
from kubedag.core.states import DagRunState
from kubedag.k8s import observe
from kubedag.k8s.informers import DAGS
from kubedag.k8s.workqueue import Key

log = logging.getLogger("kubedag.controller")


class RunEnds:
    """Mixin of :class:`kubedag.k8s.runs.RunReconciler` (uses its cache, store, memories, status writer, reaper,
    clock and ``verify`` mailbox)."""

    cache: Any
    config: Any
    memories: dict[Key, RunMemory]
    verify: set[Key]
    _masker: Any

    async def _without_dag(self, key: Key, body: dict[str, Any], dag_name: str, why: str) -> Result:
        """A run whose DAG is invalid or not in the cache. A DAG missing from the cache is looked up first (right
        after a restart the DAGRun informer may list runs before the DAG informer lists their DAGs: issue 13's
        "DAG ... is invalid" for valid DAGs). A run the controller had accepted (its memory, or a phase it wrote)
        whose DAG was deleted ends failed (:func:`kubedag.app.orphans.end_orphaned_run`; reason ``DAGDeleted``); any
        other run waits for its DAG (reason ``DAGNotReady``)."""
        status = body.get("status") or {}
        if status.get("phase") in ("success", "failed"):
            return Result()
        client = self._client()
        assert client is not None
        if why == "does not exist" and await client.get(names.API_VERSION, DAGS, key[0], dag_name) is not None:
            return Result(requeue_after=1.0)  # not in the cache yet: its reconcile queues this run again
        waited = any(c.get("reason") == "DAGNotReady" for c in status.get("conditions") or [])
        if why != "does not exist" or (key not in self.memories and (not status.get("phase") or waited)):
            await self.status.waiting(key, body, f"DAG {dag_name} {why}; the run waits for it")
            return Result()
        dag = await self._store_call(self._store.stored_dag, key[0], dag_name)
        memory = self.memories.get(key) or (await self._open(key, dag, body) if dag is not None else None)
        message = f"DAG {dag_name} was deleted: the run failed"
        if memory is not None and dag is not None:
            end = end_orphaned_run(dag_name, memory, self._clock())
            await self._store_call(self._store.save_pass, key[0], dag, end.write)
            self.memories[key] = end.memory
            for task_id, try_number, poke in end.stops:
                self._reaper.schedule(key[0], names.pod_name(dag_name, key[1], task_id, try_number, poke))
            if end.stops:
                message += f", and its running tries were stopped ({', '.join(t for t, _, _ in end.stops)})"
        log.info("DAGRun %s/%s: %s", *key, message)
        await self.status.fail(key, body, "DAGDeleted", message)
        return Result()

    async def _converge(self, key: Key, dag: DAG, body: Mapping[str, Any], memory: RunMemory) -> RunMemory:
        """Make the DB history of a finished run agree with its status and kept pods (issue 13: never the other way
        round); the memory takes the status's task instances. A DB error raises: the pass is retried."""
        status = body.get("status") or {}
        if status.get("phase") not in ("success", "failed"):
            self.verify.discard(key)
            return memory
        run = replace(memory.run, state=DagRunState(status["phase"]), start_date=observe.parse_time(status.get("startedAt")) or memory.run.start_date,
                      end_date=observe.parse_time(status.get("finishedAt")) or memory.run.end_date)
        history = await self._store_call(self._store.run_history, key[0], dag.dag_id, run.run_id) or RunHistory(None)
        pods, _ = self._run_pods(key, memory)
        observed = observe.observe_pods(pods, self._clock(), self.config.image_pull_timeout)
        found = converge_history(run, observe.tis_from_status(status), history,
                                 {k: o for k, o in observed.items() if o.finished}, pod_name="the pod",
                                 mask=self._masker.mask if len(self._masker) else None)
        if found.write is not None:
            await self._store_call(self._store.save_pass, key[0], dag, found.write)
            log.warning("DAGRun %s/%s: %d DB history rows corrected from its status and pods", *key, found.repaired)
            for event in found.events:  # the missed pass's events were never posted
                self._events(body, event.kind, event.reason, event.message)
        archived = (memory.archived - found.logs_to_read) | set(found.write.logs if found.write is not None else ())
        memory = self.memories[key] = replace(memory, run=run, tis={**memory.tis, **found.tis}, archived=frozenset(archived))
        self.verify.discard(key)
        return memory

    async def resync_history(self, every: float, enqueue: Callable[[Key], None]) -> None:
        """Every ``every`` seconds, have each finished run's next pass compare its DB history with its status
        (:meth:`_converge`); runs forever."""
        while True:
            await asyncio.sleep(every)
            for key, body in list(self.cache.runs.items()):
                if (body.get("status") or {}).get("phase") in ("success", "failed"):
                    self.verify.add(key)
                    enqueue(key)


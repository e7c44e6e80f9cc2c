"""Writing a DAGRun's status: one JSON merge patch of the status subresource per pass.

The patch (:func:`kubedag.k8s.client.merge_patch_between`) holds what changed since the status the cache has
(the API server's last answer), with null for every field, task entry or task field that is gone, so that it is
removed. It carries no ``resourceVersion``: the controller is the status's only writer (the leader Lease fences
the others), so a DAGRun whose spec or annotations change often never makes the write conflict (a PUT guarded by
the ``resourceVersion`` failed with 409 on busy runs). Should the answer still hold a field the new status lacks
(someone else wrote the status), a second patch nulls it at once; should the cache be behind the server so that
the patch is invalid there (422: a task entry without its state, say), the run is read again and the patch made
against what it holds.

The status is the run's state as users see it (``kubectl get dagruns``): phase, times, counts, a compact entry
per task instance (:func:`kubedag.k8s.observe.build_status`), ``appliedActions``, and a ``Ready`` condition when
the run cannot go on (its DAG is missing or invalid, its spec is invalid, its logical date is taken).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from kubedag.app.ports import EventSink
from kubedag.app.reconcile import RunMemory
from kubedag.core import naming as names
from kubedag.core import timetable
from kubedag.core.runpass import is_pool_problem
from kubedag.core.spec.dagrun import Condition
from kubedag.core.states import TaskInstanceState
from kubedag.k8s import observe
from kubedag.k8s.client import ApiError, KubeClient, merge_patch_between
from kubedag.k8s.informers import DAGRUNS, Cache, newer
from kubedag.k8s.workqueue import Key


def ready_condition(status: str, reason: str, message: str, when: datetime, generation: int | None) -> Condition:
    """A ``Ready`` condition (message cut to 32 KiB)."""
    return Condition.model_validate({"type": "Ready", "status": status, "reason": reason, "message": message[:32768],
                                     "lastTransitionTime": when, "observedGeneration": generation})


class RunStatusWriter:
    """Writes DAGRun statuses and keeps the cache up to date with what the API server answered. ``mask`` hides
    secret values in the failed tries' reasons the status carries (the controller's :class:`kubedag.core.secrets.Masker`)."""

    def __init__(self, cache: Cache, client: Callable[[], KubeClient | None], events: EventSink,
                 clock: Callable[[], datetime], mask: Callable[[str], str] | None = None) -> None:
        self.cache, self._client, self._events, self._clock, self._mask = cache, client, events, clock, mask

    async def write_memory(self, key: Key, body: Mapping[str, Any], memory: RunMemory,
                           problems: Mapping[str, str] | None = None) -> None:
        """Write the status of a run from its memory. ``problems``: task_id -> why it cannot get its pool
        (:func:`pool_problems`): a ``Ready=False`` condition, reason ``PoolUnavailable``, and a Warning event when
        it appears or changes."""
        generation = (body.get("metadata") or {}).get("generation")
        conditions = []
        if problems and not memory.run.finished:
            message = "; ".join(f"task {t}: {why}" for t, why in sorted(problems.items()))
            message += " (it waits until the Pool exists with enough slots)"
            old = next((c for c in (body.get("status") or {}).get("conditions") or []
                        if c.get("reason") == "PoolUnavailable"), None)
            when = old["lastTransitionTime"] if old is not None else self._clock()
            conditions.append(ready_condition("False", "PoolUnavailable", message, when, generation))
            if old is None or old.get("message") != message:
                self._events(body, "Warning", "PoolUnavailable", message[:1024])
        status = observe.build_status(
            memory.run, memory.tis, memory.launched,
            lambda task_id, try_number: names.pod_suffix(key[1], task_id, try_number, memory.pokes.get(task_id, 0)),
            observed_generation=generation, conditions=conditions, mask=self._mask,
        ).to_k8s()
        if memory.applied:
            status["appliedActions"] = list(memory.applied)
        await self.write(key, body, status)

    async def write(self, key: Key, body: Mapping[str, Any], status: dict[str, Any]) -> None:
        """Make ``status`` the DAGRun's status (see the module docstring): nothing when the cache has it already,
        else one merge patch (one more when the answer kept a field that must go, or when the patch was invalid
        against the server's status: then made against the run read again). A DAGRun that is gone is skipped.

        Raises:
            ApiError: any other error answer (the reconcile is retried with backoff).
        """
        client = self._client()
        assert client is not None
        current = self.cache.runs.get(key) or body
        patch = merge_patch_between(current.get("status") or {}, status)
        reread = False
        for _ in range(3):
            if not patch:
                return
            try:
                updated = await client.patch(names.API_VERSION, DAGRUNS, key[0], key[1], {"status": patch}, sub="status")
            except ApiError as exc:
                if exc.status == 404:
                    return
                if exc.status != 422 or reread:
                    raise
                reread, fresh = True, await client.get(names.API_VERSION, DAGRUNS, key[0], key[1])
                if fresh is None:
                    return
                if newer(self.cache.runs.get(key), fresh):
                    self.cache.runs[key] = fresh
                patch = merge_patch_between(fresh.get("status") or {}, status)
                continue
            if newer(self.cache.runs.get(key), updated):
                self.cache.runs[key] = updated
            patch = _removals(merge_patch_between(updated.get("status") or {}, status))

    async def fail(self, key: Key, body: Mapping[str, Any], reason: str, message: str) -> None:
        """A DAGRun that cannot run: phase failed, condition ``Ready=False`` with the reason, a Warning event."""
        status = body.get("status") or {}
        if status.get("phase") == "failed" and any(c.get("reason") == reason for c in status.get("conditions") or []):
            return
        now = self._clock()
        condition = ready_condition("False", reason, message, now, (body.get("metadata") or {}).get("generation"))
        new = {"phase": "failed", "finishedAt": timetable.iso_utc(now), "conditions": [condition.to_k8s()]}
        self._events(body, "Warning", reason, message[:1024])
        await self.write(key, body, new)

    async def waiting(self, key: Key, body: Mapping[str, Any], message: str) -> None:
        """A run waiting for its DAG: condition ``Ready=False``, reason ``DAGNotReady``; phase queued."""
        status = dict(body.get("status") or {})
        conditions = status.get("conditions") or []
        if any(c.get("reason") == "DAGNotReady" and c.get("message") == message for c in conditions):
            return
        condition = ready_condition("False", "DAGNotReady", message, self._clock(), (body.get("metadata") or {}).get("generation"))
        status["conditions"] = [condition.to_k8s()]
        status.setdefault("phase", "queued")
        await self.write(key, body, status)


def _removals(patch: dict[str, Any]) -> dict[str, Any]:
    """The part of a merge patch that removes members (its nulls, at any depth)."""
    out: dict[str, Any] = {}
    for key, value in patch.items():
        if value is None:
            out[key] = None
        elif isinstance(value, dict) and (inner := _removals(value)):
            out[key] = inner
    return out


def pool_problems(memory: RunMemory) -> dict[str, str]:
    """task_id -> why it cannot get its pool, for the task instances still waiting with such a reason
    (:func:`kubedag.core.runpass.pool_problem`)."""
    waiting = (TaskInstanceState.NONE, TaskInstanceState.SCHEDULED)
    return {t: ti.reason for t, ti in memory.tis.items()
            if ti.state in waiting and ti.reason is not None and is_pool_problem(ti.reason)}


__all__ = ["RunStatusWriter", "pool_problems", "ready_condition"]

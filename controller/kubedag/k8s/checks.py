"""Tasks the controller carries out itself (as Airflow's triggerer): trigger tasks and ``externalTask`` sensors.

Before a run's pass, :meth:`InProcessTasks.verdicts` gives a :class:`kubedag.core.runpass.ControllerCheck` for
each queued or running in-process task; a running task's "not met" is kept until its ``recheck_at``.

* ``externalTask`` sensors are poked against the metadata DB every ``pokeInterval``: the logical dates and the
  outcome are :mod:`kubedag.core.sensors`' rules, the states come from the run store
  (:meth:`kubedag.app.ports.RunStore.external_states`).
* Trigger tasks (Airflow's ``TriggerDagRunOperator``) create the target DAGRun (named by
  :func:`kubedag.core.naming.run_name`, annotated ``kubedag.io/triggered-by`` with the triggering try, so a
  restarted controller finds it instead of creating another). ``resetDagRun`` on an existing run appends a
  ``clear`` action to it (Airflow 2.10 clears the existing run rather than deleting it). ``waitForCompletion``
  follows the target's phase from the informer's cache (no API request per check).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from kubedag.app.ports import EventSink, RunStore
from kubedag.app.reconcile import RunMemory
from kubedag.core import engine, runpass, templating, timetable
from kubedag.core import naming as names
from kubedag.core.sensors import external_logical_dates, external_outcome, external_summary
from kubedag.core.spec.dag import DAG
from kubedag.core.states import TaskInstanceState
from kubedag.core.xcom import RETURN_KEY
from kubedag.k8s.client import ApiError, KubeClient
from kubedag.k8s.informers import DAGRUNS, DAGS, Cache
from kubedag.k8s.manifests import ANNOTATION_TRIGGERED_BY, dagrun_manifest
from kubedag.k8s.recovery import expected_failure
from kubedag.k8s.workqueue import Key

log = logging.getLogger("kubedag.controller")


def render_obj(value: Any, ctx: Mapping[str, Any], where: str) -> Any:
    """Every string in a JSON-like value rendered as a template (a trigger's ``conf``)."""
    if isinstance(value, str):
        return templating.render(value, ctx, where)
    if isinstance(value, Mapping):
        return {k: render_obj(v, ctx, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [render_obj(v, ctx, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


class InProcessTasks:
    """Verdicts on a run's in-process tasks (see the module docstring).

    ``dag_of(namespace, name)``: the valid DAG, the reason it is not usable (``"does not exist"``, ``"is
    invalid"``), or None while it is being validated. ``seen_run(event_type, body)``: hands a DAGRun this wrote
    to the informer cache.
    """

    def __init__(self, cache: Cache, client: Callable[[], KubeClient | None],
                 dag_of: Callable[[str, str], DAG | str | None], events: EventSink, store: RunStore,
                 store_call: Callable[..., Any], seen_run: Callable[[str, Mapping[str, Any]], None]) -> None:
        self.cache, self._client, self._dag_of = cache, client, dag_of
        self._events, self._store, self._store_call, self._seen_run = events, store, store_call, seen_run

    async def verdicts(self, key: Key, dag: DAG, memory: RunMemory, now: datetime,
                       inputs: runpass.RenderInputs, stale: set[str]) -> dict[str, runpass.ControllerCheck] | None:
        """task_id -> verdict for the queued and running in-process tasks (None: there are none). ``stale``: tasks
        whose kept verdict must be looked at again now (their trigger's target run changed). A check that
        raises is "not met", looked at again in 30 s."""
        active = [(t, ti) for t, ti in memory.tis.items()
                  if t in dag.tasks and dag.tasks[t].runs_in_controller and ti.state in engine.ACTIVE_STATES]
        if not active:
            return None
        out: dict[str, runpass.ControllerCheck] = {}
        for task_id, ti in active:
            task = dag.tasks[task_id]
            cached = memory.checks.get(task_id)
            if cached is not None and task_id not in stale and ti.state == TaskInstanceState.RUNNING \
                    and cached[0] == ti.try_number and cached[1].outcome == "not_met" \
                    and cached[1].recheck_at is not None and cached[1].recheck_at > now:
                out[task_id] = cached[1]
                continue
            try:
                if task.trigger is not None:
                    check = await self._trigger(key, dag, memory, ti, now, inputs)
                else:
                    check = await self._external(key, dag, memory, ti, now, inputs)
            except Exception as exc:  # noqa: BLE001 - one bad check never stops the run
                if (expected := expected_failure(exc)) is not None:
                    log.warning("checking %s of %s/%s failed: %s; checking again in 30s", task_id, *key, expected)
                else:
                    log.exception("checking %s of %s/%s failed", task_id, *key)
                check = runpass.ControllerCheck("not_met", f"check failed: {exc}", recheck_at=now + timedelta(seconds=30))
            out[task_id] = check
        return out

    async def _external(self, key: Key, dag: DAG, memory: RunMemory, ti: engine.TaskInstance, now: datetime,
                        inputs: runpass.RenderInputs) -> runpass.ControllerCheck:
        """An ``externalTask`` sensor's poke against the metadata DB (Airflow's ``ExternalTaskSensor.poke``)."""
        task = dag.tasks[ti.task_id]
        assert task.sensor is not None and task.sensor.external_task is not None
        check = task.sensor.external_task
        ctx = runpass.template_context(dag, memory.run, ti.task_id, max(ti.try_number, 1), inputs)
        try:
            dates = external_logical_dates(check, memory.run.logical_date, lambda t, f: templating.render(t, ctx, f))
        except ValueError as exc:
            return runpass.ControllerCheck("failed", f"template error in {exc}")
        states = await self._store_call(self._store.external_states, key[0], check.dag, check.task, dates)
        return runpass.ControllerCheck(external_outcome(check, states), external_summary(check, dates, states),
                                       recheck_at=now + task.sensor.poke_interval)

    async def _trigger(self, key: Key, dag: DAG, memory: RunMemory, ti: engine.TaskInstance, now: datetime,
                       inputs: runpass.RenderInputs) -> runpass.ControllerCheck:
        """A trigger task: find or create the target run, then follow it."""
        client = self._client()
        assert client is not None
        trig = dag.tasks[ti.task_id].trigger
        assert trig is not None
        target = self._dag_of(key[0], trig.dag)
        if target == "does not exist" and await client.get(names.API_VERSION, DAGS, key[0], trig.dag) is not None:
            target = None  # not in the cache yet (right after a restart): as being validated
        if target is None:
            return runpass.ControllerCheck("not_met", f"trigger: DAG {trig.dag} is being validated",
                                           recheck_at=now + timedelta(seconds=1))
        if isinstance(target, str):
            return runpass.ControllerCheck("failed", f"trigger: DAG {trig.dag} {target} in namespace {key[0]}")
        try_number = max(ti.try_number, 1)
        identity = f"{key[0]}/{key[1]}/{ti.task_id}/{try_number}"
        ctx = runpass.template_context(dag, memory.run, ti.task_id, try_number, inputs)
        mine = next((b for k, b in self.cache.runs.items() if k[0] == key[0] and
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
                conf = render_obj(trig.conf, ctx, "trigger.conf")
            except ValueError as exc:
                return runpass.ControllerCheck("failed", f"template error in {exc}")
            name = names.run_name(trig.dag, run_id)
            existing = self.cache.runs.get((key[0], name)) or await client.get(names.API_VERSION, DAGRUNS, key[0], name)
            if existing is None:
                obj = dagrun_manifest(key[0], trig.dag, run_id, "manual", logical, conf=conf,
                                      annotations={ANNOTATION_TRIGGERED_BY: identity})
                try:
                    mine = await client.create(names.API_VERSION, DAGRUNS, key[0], obj)
                except ApiError as exc:
                    if exc.status != 409:
                        raise
                    return runpass.ControllerCheck("not_met", "the triggered run exists: looking again", recheck_at=now)
                self._seen_run("ADDED", mine)
                self._events(self.cache.runs.get(key) or {}, "Normal", "Triggered",
                             f"{ti.task_id} triggered DAGRun {name} ({run_id})")
            elif any(a.get("id") == reset_id for a in (existing.get("spec") or {}).get("actions") or []):
                mine = existing
            elif not trig.reset_dag_run:
                return runpass.ControllerCheck(
                    "failed", f"trigger: DAG {trig.dag} has a run {run_id} already (DAGRun {name}); set resetDagRun to run it again")
            else:  # Airflow 2.10: clear the existing run, which then runs again
                actions = [*((existing.get("spec") or {}).get("actions") or []), {"id": reset_id, "type": "clear"}]
                mine = await client.patch(names.API_VERSION, DAGRUNS, key[0], name, {"spec": {"actions": actions}})
                self._seen_run("MODIFIED", mine)
        meta, spec, status = mine.get("metadata") or {}, mine.get("spec") or {}, mine.get("status") or {}
        xcoms = {RETURN_KEY: spec.get("runId")}  # the triggered run's id, as the local trigger task writes it
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


def triggered_by(body: Mapping[str, Any]) -> tuple[Key, str] | None:
    """The triggering run's key and task of a DAGRun a trigger task created (its annotation), or None."""
    origin = ((body.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_TRIGGERED_BY)
    parts = origin.split("/") if origin else []
    if len(parts) != 4:
        return None
    return (parts[0], parts[1]), parts[2]


__all__ = ["InProcessTasks", "render_obj", "triggered_by"]

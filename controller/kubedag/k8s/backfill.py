"""The ``Backfill`` custom resource's reconciler: Airflow 2.10's ``airflow dags backfill``, run by the controller.

A Backfill (:class:`kubedag.core.spec.resources.BackfillSpec`) names a DAG and a range ``[startDate, endDate]``;
it covers every schedule interval whose *logical date* (its start) is in the range, as
:func:`kubedag.core.timetable.backfill_infos` (Airflow's ``DAG.iter_dagrun_infos_between(start, end, align=True)``).
Naive dates are read in the DAG's ``timezone``, as every date of a manifest.

:func:`plan_backfill` is pure: the Backfill, the DAG and the runs that exist at those logical dates in,
the DAGRuns to create, the runs to reset and the new ``status`` out. For each interval, oldest first:

* no run at that logical date: a DAGRun is created (:func:`kubedag.core.naming.run_name` of the run id
  ``backfill__<logical date>``, ``runType: backfill``, the interval from the timetable), labelled
  ``kubedag.io/backfill=<backfill name>`` and owned by the Backfill, so deleting the Backfill deletes its
  runs (their history stays in the metadata DB);
* a run exists (whatever its type): it is left alone and counted; with ``resetDagRuns`` it is cleared to
  run again by appending a ``clear`` :class:`~kubedag.core.spec.dagrun.RunAction` (id ``backfill-<hash>``, the
  same for every run of this Backfill, so that it is appended once and recognised after a restart);
* at most ``maxActiveRuns`` (default: the DAG's) of the backfill's runs are unfinished at once: creations
  and resets wait for a slot.

Runs are found in the cluster and in the metadata DB (a finished DAGRun deleted by ``runHistoryLimit`` is
still a run that exists), so the backfill never re-creates a run, and a restarted controller carries on
from what exists. :class:`BackfillReconciler` carries out a plan (:meth:`BackfillReconciler.reconcile`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubedag.app.ports import Clock, RunStore
from kubedag.app.reconcile import Result
from kubedag.core import naming as names
from kubedag.core import timetable
from kubedag.core.spec.dag import DAG, to_utc
from kubedag.k8s.client import ApiError, KubeClient
from kubedag.k8s.informers import BACKFILLS, DAGRUNS, Cache, newer
from kubedag.k8s.manifests import dagrun_manifest
from kubedag.k8s.workqueue import Key

log = logging.getLogger("kubedag.controller.backfill")

LABEL_BACKFILL = "kubedag.io/backfill"
FINISHED = ("success", "failed", "cancelled")


@dataclass(frozen=True)
class ExistingRun:
    """A run of the DAG that exists: as a DAGRun object (``name`` set) or only in the metadata DB (``name``
    None: its object was deleted). ``phase``: ``queued``/``running``/``success``/``failed`` or None (not yet
    seen by the controller). ``backfill``: the ``kubedag.io/backfill`` label. ``actions``/``applied``: ids of
    ``spec.actions`` and ``status.appliedActions``."""

    run_id: str
    logical_date: datetime
    phase: str | None
    name: str | None = None
    backfill: str | None = None
    actions: tuple[str, ...] = ()
    applied: tuple[str, ...] = ()


@dataclass
class BackfillPlan:
    """What :func:`plan_backfill` decided: DAGRun bodies to create, ``(DAGRun name, RunAction dict)`` to
    append, names of the backfill's queued DAGRuns to delete (once cancelled), and the Backfill's new ``status``
    (camelCase JSON, as written)."""

    create: list[dict[str, Any]] = field(default_factory=list)
    reset: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)


def reset_action_id(namespace: str, name: str, uid: str | None) -> str:
    """The id of the ``clear`` action a Backfill appends to a run it resets: ``backfill-<10-char hash>``
    (of namespace, name and uid, so a new Backfill of the same name resets again)."""
    return "backfill-" + names.short_hash(namespace, name, uid or "", length=10)


def existing_from_object(obj: Mapping[str, Any], dag: DAG) -> ExistingRun | None:
    """The :class:`ExistingRun` of a DAGRun object, or None when it has no ``spec.logicalDate`` (a manual
    run made by hand, whose logical date is its creation time: found through the DB instead)."""
    from kubedag.core.spec.models import parse_datetime

    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    raw = spec.get("logicalDate")
    if not raw:
        return None
    try:
        logical = to_utc(parse_datetime(raw), dag.timezone)
    except (TypeError, ValueError):
        return None
    assert logical is not None
    run_type = spec.get("runType") or "manual"
    return ExistingRun(
        run_id=spec.get("runId") or timetable.run_id(run_type if run_type in timetable.RUN_TYPES else "manual", logical),
        logical_date=logical,
        phase=status.get("phase"),
        name=meta.get("name"),
        backfill=(meta.get("labels") or {}).get(LABEL_BACKFILL),
        actions=tuple(a.get("id") for a in spec.get("actions") or [] if isinstance(a, Mapping)),
        applied=tuple(status.get("appliedActions") or ()),
    )


def _condition(old: Mapping[str, Any], status: str, reason: str, message: str, now: datetime,
               generation: int | None) -> dict[str, Any]:
    from kubedag.core.spec.dagrun import Condition

    previous = next((c for c in old.get("conditions") or [] if c.get("type") == "Ready"), None)
    when = previous.get("lastTransitionTime") if previous and previous.get("status") == status else None
    return Condition.model_validate({
        "type": "Ready", "status": status, "reason": reason, "message": message[:32768],
        "observedGeneration": generation, "lastTransitionTime": when or now,
    }).to_k8s()


def _problem_status(old: Mapping[str, Any], reason: str, message: str, now: datetime, generation: int | None,
                    phase: str = "pending") -> dict[str, Any]:
    status = {k: v for k, v in old.items() if k not in ("conditions", "observedGeneration")}
    status.setdefault("phase", phase)
    if phase == "failed":
        status["phase"] = "failed"
    status["observedGeneration"] = generation
    status["conditions"] = [_condition(old, "False", reason, message, now, generation)]
    return {k: v for k, v in status.items() if v is not None}


def plan_backfill(
    backfill: Mapping[str, Any],
    dag: DAG | None,
    existing: Iterable[ExistingRun],
    now: datetime,
    *,
    dag_problem: str | None = None,
) -> BackfillPlan:
    """Plan one reconcile of the Backfill object ``backfill`` (see the module docstring).

    ``dag``: the parsed DAG, None when it does not exist or is invalid (``dag_problem`` then says which, e.g.
    ``"DAG x does not exist"``: the Backfill stays ``pending`` with ``Ready=False`` reason ``DAGNotReady``).
    ``existing``: the runs of the DAG (any logical date; only those in range matter), from the cluster and
    the DB. ``now``: aware. An invalid spec (e.g. ``endDate`` before ``startDate``, more than
    :data:`kubedag.core.timetable.MAX_RUNS` intervals) fails the Backfill with reason ``InvalidSpec``; nothing
    raises.

    Status: ``total`` intervals in range; ``created`` of them with a run (created, found or reset);
    ``queued``/``running``/``succeeded``/``failed`` by the runs' phases (a run being reset counts as queued
    until the controller applied the clear); ``phase`` ``running`` until every interval has a finished run,
    then ``success`` or ``failed`` (any run failed); ``startedAt``/``finishedAt``.
    """
    from pydantic import ValidationError

    from kubedag.core.spec.resources import BackfillSpec

    meta = backfill.get("metadata") or {}
    namespace, name, uid = meta.get("namespace") or "default", meta.get("name") or "", meta.get("uid")
    generation = meta.get("generation")
    old = dict(backfill.get("status") or {})
    try:
        spec = BackfillSpec.model_validate(backfill.get("spec") or {})
    except ValidationError as exc:
        errors = "; ".join(f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"]
                           for e in exc.errors())
        return BackfillPlan(status=_problem_status(old, "InvalidSpec", errors, now, generation, phase="failed"))
    if dag is None:
        return BackfillPlan(status=_problem_status(
            old, "DAGNotReady", f"{dag_problem or f'DAG {spec.dag_name} does not exist'}; the backfill waits for it",
            now, generation))
    start, end = to_utc(spec.start_date, dag.timezone), to_utc(spec.end_date, dag.timezone)
    assert start is not None and end is not None
    if end < start:
        return BackfillPlan(status=_problem_status(
            old, "InvalidSpec", f"spec.endDate {timetable.iso_utc(end)} is before spec.startDate "
            f"{timetable.iso_utc(start)}", now, generation, phase="failed"))
    try:
        infos = timetable.backfill_infos(dag.timetable, start, end)
    except ValueError as exc:
        return BackfillPlan(status=_problem_status(old, "InvalidSpec", f"spec: {exc}", now, generation, phase="failed"))

    by_date: dict[datetime, ExistingRun] = {}
    for run in existing:
        current = by_date.get(run.logical_date)
        if current is None or (current.name is None and run.name is not None):
            by_date[run.logical_date] = run  # the cluster's view wins over the DB's
    max_active = spec.max_active_runs or dag.max_active_runs
    action_id = reset_action_id(namespace, name, uid)
    counts = {"queued": 0, "running": 0, "success": 0, "failed": 0}
    waiting: list[tuple[timetable.DagRunInfo, ExistingRun | None]] = []
    plan = BackfillPlan()
    for info in infos:
        run = by_date.get(info.logical_date)
        if run is None:
            waiting.append((info, None))
        elif spec.cancelled and run.backfill == name and run.name and _bucket(run.phase) == "queued":
            plan.delete.append(run.name)  # cancelled: its runs that have not started go
            waiting.append((info, None))
        elif run.backfill != name and action_id not in run.actions and spec.reprocess(run.phase):
            if run.name is None:  # only in the DB: nothing to clear; left as it is
                counts[_bucket(run.phase)] += 1
            else:
                waiting.append((info, run))
        elif action_id in run.actions and action_id not in run.applied:
            counts["queued"] += 1
        else:
            counts[_bucket(run.phase)] += 1
    holding = spec.cancelled or spec.paused
    slots = 0 if holding else max(0, max_active - counts["queued"] - counts["running"])
    for info, run in waiting[:slots]:
        if run is None:
            plan.create.append(dagrun_body(namespace, name, uid, dag, info, spec.conf))
        else:
            plan.reset.append((run.name or "", {"id": action_id, "type": "clear", "tasks": []}))
        counts["queued"] += 1
    total = len(infos)
    created = total - len(waiting) + min(slots, len(waiting))
    done = created == total and counts["queued"] == counts["running"] == 0
    phase = ("failed" if counts["failed"] else "success") if done else "running"
    if spec.cancelled:
        done, phase = True, "cancelled"
    started = old.get("startedAt") or timetable.iso_utc(now)
    finished = (old.get("finishedAt") if old.get("phase") in FINISHED else None) or timetable.iso_utc(now) if done else None
    reason = "Completed" if done else "Running"
    if spec.cancelled:
        message = (f"cancelled: {created} of {total} run(s) of DAG {dag.dag_id} were started, "
                   f"{counts['running']} still running; no new run starts")
    elif done:
        message = f"{total} run(s) of DAG {dag.dag_id} finished: {counts['success']} succeeded, {counts['failed']} failed"
    elif spec.paused:
        reason = "Paused"
        message = f"paused: {created} of {total} run(s) of DAG {dag.dag_id} started; no new run starts until unpaused"
    else:
        message = (f"{total} run(s) of DAG {dag.dag_id} for logical dates {timetable.iso_utc(start)} to "
                   f"{timetable.iso_utc(end)}, at most {max_active} active at once")
    status = {
        "phase": phase, "total": total, "created": created, "queued": counts["queued"], "running": counts["running"],
        "succeeded": counts["success"], "failed": counts["failed"], "startedAt": started, "finishedAt": finished,
        "observedGeneration": generation,
        "conditions": [_condition(old, "True", reason, message, now, generation)],
    }
    plan.status = {k: v for k, v in status.items() if v is not None}
    return plan


def _bucket(phase: str | None) -> str:
    return phase if phase in ("running", "success", "failed") else "queued"


def dagrun_body(namespace: str, backfill: str, backfill_uid: str | None, dag: DAG, info: timetable.DagRunInfo,
                conf: Mapping[str, Any]) -> dict[str, Any]:
    """The DAGRun a Backfill creates for ``info``: run id ``backfill__<logical date>``, ``runType: backfill``,
    the interval's dates, the Backfill's ``conf``; labelled ``kubedag.io/backfill`` and owned by the Backfill only
    (Kubernetes deletes a dependent once *all* its owners are gone, so a second owner, the DAG, would keep
    the runs of a deleted Backfill)."""
    return dagrun_manifest(namespace, dag.dag_id, timetable.run_id("backfill", info.logical_date), "backfill",
                           info.logical_date, data_interval=info.data_interval, conf=conf,
                           owner=("Backfill", backfill, backfill_uid), labels={LABEL_BACKFILL: backfill})


class BackfillReconciler:
    """Reconciles Backfill objects: :meth:`reconcile` plans one (:func:`plan_backfill`) and carries the plan out.

    ``parsed(key)``: the DAG reconciler's last validation of a DAG (``generation``, ``dag``, ``errors``) or None;
    ``seen_run(event_type, body)``: hands a DAGRun this wrote to the informer cache; ``store_call(fn, *args)``
    runs a blocking store call in a thread. :meth:`keys_for_run` says which Backfills a DAGRun event concerns.
    """

    def __init__(self, cache: Cache, client: Callable[[], KubeClient | None], store: RunStore,
                 store_call: Callable[..., Awaitable[Any]], clock: Clock, *, parsed: Callable[[Key], Any],
                 seen_run: Callable[[str, Mapping[str, Any]], None]) -> None:
        self.cache, self._client, self._store, self._store_call = cache, client, store, store_call
        self._clock, self._parsed, self._seen_run = clock, parsed, seen_run

    def keys_for_run(self, body: Mapping[str, Any]) -> list[Key]:
        """The Backfills of a DAGRun's DAG (its label names one; a reset run has none)."""
        meta, spec = body.get("metadata") or {}, body.get("spec") or {}
        namespace, dag = meta.get("namespace") or "", spec.get("dagName")
        return [key for key, backfill in self.cache.backfills.items()
                if key[0] == namespace and (backfill.get("spec") or {}).get("dagName") == dag]

    async def _existing(self, key: Key, dag: DAG) -> list[ExistingRun]:
        """Runs of the DAG: listed afresh from the API server (the informer may not have listed them yet after
        a restart), those in the cache, and those in the DB."""
        client = self._client()
        assert client is not None
        listed = await client.list(names.API_VERSION, DAGRUNS, key[0], label_selector=f"{names.LABEL_DAG}={dag.dag_id}")
        objects: dict[str, Mapping[str, Any]] = {o["metadata"]["name"]: o for o in listed}
        for run_key, body in self.cache.runs_of(key[0], dag.dag_id):
            current = objects.get(run_key[1])
            try:
                newer = current is None or int(body["metadata"]["resourceVersion"]) > int(current["metadata"]["resourceVersion"])
            except (KeyError, TypeError, ValueError):
                newer = current is None
            if newer:
                objects[run_key[1]] = body
        runs = [r for r in (existing_from_object(o, dag) for o in objects.values()) if r is not None]
        recorded = await self._store_call(self._store.recorded_runs, key[0], dag.dag_id)
        return runs + [ExistingRun(run_id=r.run_id, logical_date=r.logical_date, phase=r.state) for r in recorded]

    async def reconcile(self, key: Key) -> Result:
        """Plan the Backfill ``key`` and carry the plan out: create DAGRuns (409: exists), append reset actions
        (with the run's ``resourceVersion``; a conflict re-queues), write the status if it changed (a merge
        patch: :meth:`_write_status`)."""
        body = self.cache.backfills.get(key)
        client = self._client()
        if body is None or client is None:
            return Result()
        dag_name = (body.get("spec") or {}).get("dagName")
        dag_key = (key[0], dag_name)
        dag_body = self.cache.dags.get(dag_key)
        parsed = self._parsed(dag_key)
        dag, problem = None, None
        if dag_body is None:
            problem = f"DAG {dag_name} does not exist"
        elif parsed is None or parsed.generation != (dag_body.get("metadata") or {}).get("generation"):
            return Result(requeue_after=1.0)  # the DAG is being validated: come back when it is
        elif parsed.dag is None:
            problem = f"DAG {dag_name} is invalid: {'; '.join(parsed.errors)}"
        else:
            dag = parsed.dag
        existing = await self._existing(key, dag) if dag is not None else []
        plan = plan_backfill(body, dag, existing, self._clock(), dag_problem=problem)
        for run in plan.create:
            try:
                created = await client.create(names.API_VERSION, DAGRUNS, key[0], run)
            except ApiError as exc:
                if exc.status != 409:
                    raise
                continue
            log.info("backfill %s/%s created DAGRun %s (%s)", *key, run["metadata"]["name"], run["spec"]["runId"])
            self._seen_run("ADDED", created)
        for run_name in plan.delete:
            if await client.delete(names.API_VERSION, DAGRUNS, key[0], run_name):
                    log.info("backfill %s/%s is cancelled: deleted its queued DAGRun %s", *key, run_name)
        again = False
        for run_name, action in plan.reset:
            if not await self._append_action(key, run_name, action):
                again = True
        await self._write_status(key, body, plan.status)
        return Result(requeue_after=0.5 if again else None)

    async def _append_action(self, key: Key, run_name: str, action: dict[str, Any]) -> bool:
        """Append ``action`` to DAGRun ``run_name``'s ``spec.actions`` (a merge patch carrying the run's
        ``resourceVersion``: a concurrent change answers 409 and False is returned, to be tried again)."""
        client = self._client()
        assert client is not None
        obj = await client.get(names.API_VERSION, DAGRUNS, key[0], run_name)
        if obj is None:
            return True
        actions = list((obj.get("spec") or {}).get("actions") or [])
        if any(a.get("id") == action["id"] for a in actions):
            return True
        patch = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                 "spec": {"actions": [*actions, action]}}
        try:
            updated = await client.patch(names.API_VERSION, DAGRUNS, key[0], run_name, patch)
        except ApiError as exc:
            if exc.status in (404,):
                return True
            if exc.status == 409:
                return False
            raise
        log.info("backfill %s/%s reset DAGRun %s (action %s)", *key, run_name, action["id"])
        self._seen_run("MODIFIED", updated)
        return True

    async def _write_status(self, key: Key, body: Mapping[str, Any], status: dict[str, Any]) -> None:
        """Make ``status`` the Backfill's status when it changed: a JSON merge patch of the status subresource
        without a ``resourceVersion`` (the controller is the status's only writer, fenced by the leader Lease), so
        that a Backfill whose spec, labels or annotations change meanwhile never makes the write conflict (the PUT
        of before answered 409 and waited for the next pass). The patch holds every top-level field of ``status``
        whole (it has only scalars and the ``conditions`` list, which a merge patch replaces whole: valid whatever
        the server holds) and null for every field the cached status has and ``status`` lacks; should the answer
        still hold such a field (the cache was behind), a second patch nulls it. No GET (the chart grants none).

        Raises:
            ApiError: an error answer but 404 (the Backfill is gone: nothing to write); the reconcile is retried.
        """
        client = self._client()
        assert client is not None
        current: Mapping[str, Any] = self.cache.backfills.get(key) or body
        old = current.get("status") or {}
        if old == status:
            return
        patch = {**{field_: None for field_ in old if field_ not in status}, **status}
        for _ in range(2):
            try:
                updated = await client.patch(names.API_VERSION, BACKFILLS, key[0], key[1], {"status": patch},
                                             sub="status")
            except ApiError as exc:
                if exc.status == 404:
                    return
                raise
            if newer(self.cache.backfills.get(key), updated):
                self.cache.backfills[key] = dict(updated)  # the watch event of this write re-queues the key
            patch = {field_: None for field_ in updated.get("status") or {} if field_ not in status}
            if not patch:
                return


__all__ = ["BackfillPlan", "BackfillReconciler", "ExistingRun", "LABEL_BACKFILL", "dagrun_body", "existing_from_object",
           "plan_backfill", "reset_action_id"]

"""Pods and DAGRun objects read as the core's values (pure functions of API objects; no I/O).

How a pod reads (:func:`observe_pod`), as a kubelet reports it:

* ``Pending`` -> the try is still ``queued``; a container waiting on an image error (``ErrImagePull``,
  ``ImagePullBackOff``, ...) for longer than ``image_pull_timeout`` fails the try
  (``InvalidImageName`` at once);
* ``Running`` -> ``running`` from the container's ``startedAt``;
* ``Succeeded`` -> success; ``Failed`` -> failed with the reason: ``exit code N``, ``OOMKilled``,
  ``Evicted``, ``DeadlineExceeded`` (``activeDeadlineSeconds`` from ``executionTimeout``); the try ended at the
  container's ``finishedAt`` (whole seconds), and a retry counts from :func:`ended_by`, its latest possible end;
* a pod with a ``deletionTimestamp`` that has not finished, or a pod that vanished after it was
  created, fails the try with "pod deleted" (someone else deleted it: kubedag deletes only pods of
  finished tries). Retries then follow the task's policy, as for any failure.

The XCom of a successful try is the container's termination message (``state.terminated.message``: the file
``$KUBEDAG_XCOM_PATH``, see :mod:`kubedag.k8s.podspec`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from kubedag.core import engine, timetable
from kubedag.core import naming as names
from kubedag.core.runpass import TryObservation
from kubedag.core.spec.dag import DAG, to_utc
from kubedag.core.spec.dagrun import (REASON_STATES, REASONS_BUDGET, DAGRunSpec, DAGRunStatus, TaskCounts, TaskEntry,
                                      reason_length)
from kubedag.core.states import DagRunState, RunType, TaskInstanceState

S = TaskInstanceState

IMAGE_ERRORS = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "RegistryUnavailable", "CreateContainerConfigError", "CreateContainerError"})
"""Container waiting reasons that mean the try cannot start (yet): failed after ``image_pull_timeout``."""
FATAL_WAITING = frozenset({"InvalidImageName"})
"""Waiting reasons that can never resolve: the try fails at once."""


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp from the API (``2026-11-01T16:00:00Z``) as an aware datetime; None stays None."""
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def ended_by(finished_at: Any, now: datetime) -> datetime | None:
    """The latest instant a container whose ``finishedAt`` is ``finished_at`` (the API's RFC 3339 string) can
    have ended, seen at ``now``: Kubernetes writes ``finishedAt`` truncated to whole seconds, so a container
    that ended at 12:00:00.8 reads 12:00:00; the real end is before ``finishedAt + 1 s`` and not after ``now``
    (the earlier of the two; never before ``finishedAt``). None when ``finishedAt`` has a fraction of a second
    (exact) or is missing."""
    finished = parse_time(finished_at)
    if finished is None or "." in str(finished_at):
        return None
    return max(finished, min(finished + timedelta(seconds=1), now))


def _container_status(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((c for c in statuses if c.get("name") == "base"), statuses[0] if statuses else {})


def observe_pod(pod: Mapping[str, Any], now: datetime, image_pull_timeout: timedelta) -> TryObservation:
    """Read a pod as the state of its try (see the module docstring for the rules)."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    node = spec.get("nodeName")
    container = _container_status(pod)
    state = container.get("state") or {}
    terminated = state.get("terminated") or {}
    running = state.get("running") or {}
    phase = status.get("phase") or "Pending"
    started = parse_time(terminated.get("startedAt") or running.get("startedAt"))
    finished = parse_time(terminated.get("finishedAt"))
    latest = ended_by(terminated.get("finishedAt"), now)
    if phase == "Succeeded":
        return TryObservation("succeeded", started, finished or now, terminated.get("exitCode", 0), None, node,
                              terminated.get("message"), latest)
    if phase == "Failed":
        code = terminated.get("exitCode")
        pod_reason = status.get("reason")
        if pod_reason == "DeadlineExceeded":
            seconds = spec.get("activeDeadlineSeconds")
            reason = f"execution timeout: the pod ran past activeDeadlineSeconds ({seconds}s)"
        elif pod_reason == "Evicted":
            reason = f"evicted: {status.get('message') or 'the node evicted the pod'}"
        elif terminated.get("reason") == "OOMKilled":
            reason = f"OOMKilled: the container exceeded its memory limit (exit code {code})"
        elif code is not None:
            reason = f"exit code {code}"
        else:
            reason = f"pod failed: {pod_reason or 'unknown reason'}{': ' + status['message'] if status.get('message') else ''}"
        return TryObservation("failed", started, finished or now, code, reason, node, ended_by=latest)
    if meta.get("deletionTimestamp"):
        return TryObservation("failed", started, now, None, pod_lost(str(meta.get("name"))), node)
    if phase == "Running" and running:
        return TryObservation("running", started or now, None, None, None, node)
    waiting = state.get("waiting") or {}
    why = waiting.get("reason")
    created = parse_time(meta.get("creationTimestamp")) or now
    if why in FATAL_WAITING or (why in IMAGE_ERRORS and now - created >= image_pull_timeout):
        detail = f"{why}: {waiting.get('message') or ''}".rstrip(": ")
        return TryObservation("failed", None, now, None, f"the container could not start ({detail})", node)
    return TryObservation("pending", None, None, None, None, node)


def pending_deadline(pod: Mapping[str, Any], image_pull_timeout: timedelta) -> datetime | None:
    """When a pod waiting on an image error will be failed by :func:`observe_pod`; None if it is not waiting so."""
    why = ((_container_status(pod).get("state") or {}).get("waiting") or {}).get("reason")
    created = parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
    if why in IMAGE_ERRORS and created is not None:
        return created + image_pull_timeout
    return None


POD_FIELDS = {
    "metadata": ("name", "namespace", "uid", "labels", "ownerReferences", "creationTimestamp", "deletionTimestamp",
                 "resourceVersion"),
    "spec": ("nodeName", "activeDeadlineSeconds"),
    "status": ("phase", "reason", "message", "startTime", "containerStatuses"),
}
"""What the controller reads of a pod (:func:`observe_pod`, :func:`pending_deadline`, the run's pod routing and
retention), by top-level section; the rest (containers, volumes, env, ``managedFields``...) is never read. Of the
labels it reads kubedag's own (``kubedag.io/...``), of each container status its ``name`` and ``state``."""


def slim_pod(pod: Mapping[str, Any]) -> dict[str, Any]:
    """``pod`` (a pod as the API serves it) cut down to :data:`POD_FIELDS`, as the pod cache keeps it: the cache
    holds every kept pod (issue 13: flat memory with 10,000 finished pods kept), and a pod's spec is most of its
    size. Reads the same as ``pod`` through every function of this module. Shares the values of ``pod``."""
    out: dict[str, Any] = {}
    for section, keys in POD_FIELDS.items():
        part = pod.get(section)
        if isinstance(part, Mapping):
            out[section] = {k: part[k] for k in keys if k in part}
    meta, status = out.get("metadata") or {}, out.get("status") or {}
    if isinstance(meta.get("labels"), Mapping):
        meta["labels"] = {k: v for k, v in meta["labels"].items() if k.startswith(f"{names.GROUP}/")}
    if isinstance(status.get("containerStatuses"), list):
        status["containerStatuses"] = [{k: c[k] for k in ("name", "state") if k in c} if isinstance(c, Mapping) else c
                                       for c in status["containerStatuses"]]
    return out


# ------------------------------------------------------------------------------------- the DAG run
def run_from_object(dag: DAG, body: Mapping[str, Any]) -> engine.DagRun:
    """The engine's :class:`~kubedag.core.engine.DagRun` for a DAGRun object, its defaults filled in.

    As ``airflow dags trigger``: run type ``manual``; ``logicalDate`` as written in the spec (the controller writes
    now, at microsecond precision, on a new DAGRun that has none), else the object's ``creationTimestamp``; the data interval, unless
    given, from the DAG's timetable: ``infer_manual_data_interval`` for a manual run, else
    :func:`kubedag.core.timetable.infer_automated_data_interval` (Airflow's ``DAG.create_dagrun``); run id
    ``<runType>__<logicalDate>``.
    Naive dates are read in the DAG's timezone. The state, start and end come from ``status``.

    Raises:
        pydantic.ValidationError: the spec is invalid (the CRD schema lets through what only the
            controller checks, e.g. a ``runId`` pattern).
        ValueError: no logical date could be found.
    """
    spec = DAGRunSpec.model_validate(body.get("spec") or {})
    meta = body.get("metadata") or {}
    status = DAGRunStatus.model_validate(body.get("status") or {})

    def aware(value: datetime | None) -> datetime | None:
        return to_utc(value, dag.timezone)

    run_type = spec.run_type or RunType.MANUAL
    logical_date = aware(spec.logical_date) or parse_time(meta.get("creationTimestamp"))
    if logical_date is None:
        raise ValueError("spec.logicalDate: missing, and the object has no creationTimestamp")
    if spec.data_interval_start is not None and spec.data_interval_end is not None:
        start, end = aware(spec.data_interval_start), aware(spec.data_interval_end)
    elif run_type == RunType.MANUAL:
        interval = dag.timetable.infer_manual_data_interval(run_after=logical_date)
        start, end = interval.start, interval.end
    else:  # scheduled or backfill: the interval starting at the logical date, as Airflow's DAG.create_dagrun
        interval = timetable.infer_automated_data_interval(dag.timetable, logical_date)
        start, end = interval.start, interval.end
    return engine.DagRun(
        dag_id=dag.dag_id,
        run_id=spec.run_id or timetable.run_id(str(run_type), logical_date),
        run_type=run_type,
        logical_date=logical_date,
        data_interval_start=start,
        data_interval_end=end,
        state=status.phase or DagRunState.QUEUED,
        start_date=status.started_at,
        end_date=status.finished_at,
        conf=dict(spec.conf),
    )


# ------------------------------------------------------------------------------------------ status
def build_status(
    run: engine.DagRun,
    tis: Mapping[str, engine.TaskInstance],
    created: Mapping[str, int],
    pod_suffix: Any,
    *,
    observed_generation: int | None,
    conditions: list[Any] | None = None,
    mask: Callable[[str], str] | None = None,
) -> DAGRunStatus:
    """The DAGRun status for the run and its task instances (compact: see :mod:`kubedag.core.spec.dagrun`).

    ``pod_suffix(task_id, try_number)`` gives ``p`` for tries whose pod was created (``created``). ``r``: the
    reason of each ``failed``/``up_for_retry`` task instance, ``mask`` applied (secret values hidden) before it
    is cut to :func:`kubedag.core.spec.dagrun.reason_length` characters, until the reasons fill
    :data:`kubedag.core.spec.dagrun.REASONS_BUDGET` (the entries after that carry none).
    """
    counts: dict[str, int] = {}
    tasks: dict[str, TaskEntry] = {}
    failing = sum(1 for ti in tis.values() if ti.state in REASON_STATES and ti.reason)
    length, budget = reason_length(failing), REASONS_BUDGET
    for task_id, ti in tis.items():
        state = str(ti.state)
        counts[state] = counts.get(state, 0) + 1
        if ti.state == S.NONE and ti.try_number == 0:
            continue
        p = pod_suffix(task_id, ti.try_number) if created.get(task_id) == ti.try_number and ti.try_number else None
        r = None
        if ti.state in REASON_STATES and ti.reason and budget > 0:
            r = _cut(mask(ti.reason) if mask is not None else ti.reason, min(length, budget))
            budget -= len(r)
        tasks[task_id] = TaskEntry(s=ti.state, t=ti.try_number, p=p, r=r)
    return DAGRunStatus.model_validate({
        "phase": run.state,
        "startedAt": run.start_date,
        "finishedAt": run.end_date,
        "observedGeneration": observed_generation,
        "conditions": conditions or [],
        "counts": TaskCounts.model_validate(counts),
        "tasks": tasks,
    })


def _cut(text: str, length: int) -> str:
    """``text`` at most ``length`` characters long, an ellipsis ending it when cut."""
    return text if len(text) <= length else text[: length - 1] + "…"


def tis_from_status(status: Mapping[str, Any] | None) -> dict[str, engine.TaskInstance]:
    """Task instances as far as a status tells (state, try number and a failed try's short reason; no dates): the
    fallback when the metadata DB has no rows for a run (e.g. a new database), and what history convergence
    compares the DB with."""
    parsed = DAGRunStatus.model_validate(status or {})
    return {task_id: engine.TaskInstance(task_id, e.s, e.t, reason=e.r) for task_id, e in parsed.tasks.items()}


def container_finished_at(pod: Mapping[str, Any]) -> datetime | None:
    """When the pod's task container terminated (its ``finishedAt``, UTC), or None when it never ran or has not
    ended (a pod refused by its node, say): where a kept pod's retention starts (``--pod-retention``)."""
    return parse_time(((_container_status(pod).get("state") or {}).get("terminated") or {}).get("finishedAt"))


def observe_pods(pods: Mapping[tuple[str, int], Mapping[str, Any]], now: datetime,
                 image_pull_timeout: timedelta) -> dict[tuple[str, int], TryObservation]:
    """A run's pods by ``(task_id, try_number)`` read as the run pass's observed tries (:func:`observe_pod`)."""
    return {key: observe_pod(pod, now, image_pull_timeout) for key, pod in pods.items()}


def pod_lost(pod_name: str) -> str:
    """The reason of a try whose pod vanished (or is being deleted) before it finished."""
    return f"pod {pod_name} was deleted before it finished"

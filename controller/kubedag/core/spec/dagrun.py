"""The ``DAGRun`` custom resource (``apiVersion: kubedag.io/v1alpha1``, ``kind: DAGRun``) and the
``status`` the controller writes on DAGs and DAGRuns, as pydantic v2 models.

Conventions are :mod:`kubedag.core.spec.models`': camelCase in YAML through :class:`StrictModel`, unknown
``spec`` fields rejected. Status models ignore unknown fields instead (a newer controller may have
written them) and are written only by the controller, through the ``status`` subresource.

A DAGRun made by hand needs only ``spec.dagName``::

    apiVersion: kubedag.io/v1alpha1
    kind: DAGRun
    metadata: {generateName: supermarket-promotions-manual-}
    spec: {dagName: supermarket-promotions, conf: {data_root: /tmp/out}}

The controller fills in the rest as Airflow's ``airflow dags trigger`` does: ``runType`` manual,
``logicalDate`` now, the data interval from the DAG's timetable
(:meth:`kubedag.core.timetable.Timetable.infer_manual_data_interval`), ``runId``
``manual__<logicalDate in UTC, isoformat>`` (:func:`kubedag.core.timetable.run_id`). Naive dates are read
in the DAG's ``timezone``, as ``startDate`` is.

Status size. etcd refuses objects over 1.5 MiB (its ``--max-request-bytes`` default) and a DAGRun's
status holds every task of the run, so ``status.tasks`` is compact:

* a map ``task id -> {s, t, p}`` (:class:`TaskEntry`), not a list of ``{taskId, ...}``: the id is
  written once, as the key, and a task is found without a scan;
* one-letter keys: ``s`` the state, as Airflow's own string (readable in ``kubectl get -o yaml``; a
  one-letter code would save ~5 bytes a task); ``t`` the try number (Airflow 2.10's: 0 = never tried,
  1 while the first try runs);
* ``p`` is only the 5-character hash ending the try's pod name, which is deterministic
  (:func:`kubedag.core.naming.pod_name`: :func:`pod_prefix` ``(dag, task, t)`` plus a hash of run, task
  and try), so :meth:`TaskEntry.pod_name` rebuilds the name. Set once that try's pod was created; a new
  try drops it;
* ``r``, only on a ``failed`` or ``up_for_retry`` entry, is why that try failed, masked and cut to
  :data:`REASON_LENGTH` characters (fewer when many tasks failed: :func:`reason_length`). It is the one
  record of a failure that never had a pod (a template that does not render, a pod the API server refused,
  a missing pool) should the controller be killed after the status write and before the DB write: the
  restarted controller's history convergence (:mod:`kubedag.app.convergence`) takes it for the DB row;
* tasks still in state ``none`` with try 0 are left out (``counts.none`` counts them); dates, exit
  codes and the other reasons of tries live in the metadata DB and the pods' logs, not in etcd;
* the CRD marks the map ``x-kubernetes-map-type: atomic``, so ``metadata.managedFields`` holds one
  ``f:tasks`` entry instead of ``f:<task id>: {f:p, f:s, f:t}`` per task, which would double the size.

Measured (``tests/crds/test_dagrun_status.py``, compact JSON as the API server stores it): a finished
5,000-task run with realistic ids (24-39 characters, 30.5 on average) has a 337,525-byte status
(330 KiB, 21% of etcd's limit); with every id at the 63-character maximum, 499,862 bytes. A list of
``{taskId, state, tryNumber, podName}`` with full pod names would take 754 KB for the same run, and
granular managedFields would add another 358 KB. Reasons add at most :data:`REASONS_BUDGET` characters
and ~7 bytes of key an entry: 5,000 failed tasks with 63-character ids and long reasons take 855,462 bytes
(54% of etcd's limit).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from kubedag.core.spec.models import DAGName, DateTimeField, KubeMeta, StrictModel
from kubedag.core.states import DagRunState, RunType, TaskInstanceState

RUN_ID_PATTERN = r"^[A-Za-z0-9_.~:+-]+$"
"""Airflow 2.10's default ``[scheduler] allowed_run_id_pattern``; ids are at most 250 characters."""

# metav1.Condition's validation, from its kubebuilder markers (k8s.io/apimachinery/pkg/apis/meta/v1/types.go).
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

POD_SUFFIX_LENGTH = 5
"""Length of the hash ending a pod name (as long as the random part Kubernetes' ``generateName`` appends)."""
_MAX_GENERATE_NAME_PREFIX = 63 - POD_SUFFIX_LENGTH
REASON_LENGTH = 200
"""Most characters of a task entry's ``r`` (the reason of a failed try)."""
REASONS_BUDGET = 320_000
"""Most characters of all the ``r`` of one status together (see :func:`reason_length`)."""
MIN_REASON_LENGTH = 64
"""Fewest characters :func:`reason_length` cuts a reason to (enough for ``template error in command[2]:
'undefined_0' is undefined``)."""
REASON_STATES = frozenset({TaskInstanceState.FAILED, TaskInstanceState.UP_FOR_RETRY})
"""Entry states that carry ``r``."""


def reason_length(entries: int) -> int:
    """The length a status with ``entries`` reasons cuts each to: :data:`REASON_LENGTH`, less when
    ``entries`` of that length would pass :data:`REASONS_BUDGET`, never under :data:`MIN_REASON_LENGTH` (5,000
    reasons of 64 characters fill the budget; past that, the entries beyond it carry none:
    :func:`kubedag.k8s.observe.build_status`)."""
    return max(MIN_REASON_LENGTH, min(REASON_LENGTH, REASONS_BUDGET // max(1, entries)))


class RunAction(StrictModel):
    """A request on a run, applied once by the controller (``kubedag tasks clear`` / ``tasks mark`` write these,
    so the controller stays the only writer of pods). ``id`` is unique per run; the controller lists the ids it
    applied in ``status.appliedActions``.

    ``clear`` (Airflow's ``airflow tasks clear``): the named tasks (all when ``tasks`` is empty), with their
    ``upstream``/``downstream`` tasks, only the failed ones with ``onlyFailed``, are reset to run again with the
    next try number, and a finished run is reopened. ``mark`` (Airflow's "mark success/failed"): the named tasks
    are set to ``state``; a running try is stopped.
    """

    id: Annotated[str, Field(min_length=1, max_length=64)]
    type: Literal["clear", "mark"]
    tasks: list[str] = Field(default_factory=list)
    upstream: bool = False
    downstream: bool = False
    only_failed: bool = False
    state: Literal["success", "failed", "skipped"] | None = None

    @model_validator(mode="after")
    def _check(self) -> RunAction:
        if self.type == "mark" and (self.state is None or not self.tasks):
            raise ValueError("a mark action needs tasks and a state")
        return self


class DAGRunSpec(StrictModel):
    """What to run: one run of a DAG, as Airflow's ``DagRun``. Only ``dagName`` is required."""

    dag_name: DAGName = Field(description="The DAG to run: the `metadata.name` of a DAG in this namespace.")
    run_id: str | None = Field(
        None, pattern=RUN_ID_PATTERN, max_length=250,
        description="Airflow's `run_id`, unique per DAG. Default: `<runType>__<logicalDate in UTC>`.",
    )
    run_type: RunType | None = Field(None, description="How the run came to be. Default: `manual`.")
    logical_date: DateTimeField | None = Field(
        None, description="ISO 8601 date or date-time (Airflow's `logical_date`). Default for a manual run: now."
    )
    data_interval_start: DateTimeField | None = Field(
        None, description="ISO 8601. Default: inferred by the DAG's timetable from `logicalDate`."
    )
    data_interval_end: DateTimeField | None = Field(
        None, description="ISO 8601, with `dataIntervalStart`. Default: inferred like `dataIntervalStart`."
    )
    conf: dict[str, Any] = Field(
        default_factory=dict, description="Airflow's `dag_run.conf`: free-form; overrides the DAG's `params`."
    )
    actions: list[RunAction] = Field(default_factory=list, description="Clear and mark requests (see `RunAction`).")

    @model_validator(mode="after")
    def _check_dates(self) -> DAGRunSpec:
        start, end = self.data_interval_start, self.data_interval_end
        if (start is None) != (end is None):
            raise ValueError("dataIntervalStart and dataIntervalEnd must be given together")
        if start is not None and end is not None and (start.tzinfo is None) == (end.tzinfo is None) and end < start:
            raise ValueError(f"dataIntervalEnd {end.isoformat()} is before dataIntervalStart {start.isoformat()}")
        if self.run_type in (RunType.SCHEDULED, RunType.BACKFILL) and self.logical_date is None:
            raise ValueError(f"a {self.run_type.value} run needs a logicalDate")
        return self


class StatusModel(StrictModel):
    """Base of status models: camelCase, immutable, unknown fields ignored (not rejected)."""

    model_config = ConfigDict(extra="ignore")

    def to_k8s(self) -> dict[str, Any]:
        """The JSON object to write as ``status``: camelCase, ``None`` fields left out.

        A merge patch of it would keep the fields left out: the controller's patch nulls them
        (:mod:`kubedag.k8s.runstatus`).
        """
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Condition(StatusModel):
    """A condition, as Kubernetes' ``metav1.Condition`` (same fields, same validation)."""

    type: str = Field(max_length=316, pattern=CONDITION_TYPE_PATTERN, description="CamelCase, e.g. `Ready`.")
    status: Literal["True", "False", "Unknown"]
    observed_generation: int | None = Field(None, ge=0, description="`metadata.generation` the condition is about.")
    last_transition_time: AwareDatetime = Field(description="When `status` last changed.")
    reason: str = Field(
        min_length=1, max_length=1024, pattern=CONDITION_REASON_PATTERN,
        description="CamelCase reason for the last transition, e.g. `Invalid`.",
    )
    message: str = Field("", max_length=32768, description="Human-readable details.")


def _conditions() -> Any:
    return Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description="Standard conditions, one per `type`.",
    )


class TaskCounts(StatusModel):
    """Task instances of the run per state; keys are the states as ``tasks[*].s`` writes them."""

    none: int = Field(0, ge=0, alias="none")
    scheduled: int = Field(0, ge=0, alias="scheduled")
    queued: int = Field(0, ge=0, alias="queued")
    running: int = Field(0, ge=0, alias="running")
    success: int = Field(0, ge=0, alias="success")
    failed: int = Field(0, ge=0, alias="failed")
    up_for_retry: int = Field(0, ge=0, alias="up_for_retry")
    up_for_reschedule: int = Field(0, ge=0, alias="up_for_reschedule")
    upstream_failed: int = Field(0, ge=0, alias="upstream_failed")
    skipped: int = Field(0, ge=0, alias="skipped")
    removed: int = Field(0, ge=0, alias="removed")


class TaskEntry(StatusModel):
    """One task instance of the run: state, try number, the suffix of the try's pod name and, when the try
    failed, why (short)."""

    s: TaskInstanceState = Field(description="Task instance state.")
    t: int = Field(0, ge=0, description="Try number: 0 = never tried, 1 = first try.")
    p: str | None = Field(None, max_length=POD_SUFFIX_LENGTH, description="The try's pod name suffix.")
    r: str | None = Field(None, max_length=REASON_LENGTH,
                          description="Why the try failed (failed and up_for_retry entries), secrets masked, cut short.")

    def pod_name(self, dag_name: str, task_id: str) -> str | None:
        """The name of this try's pod in a run of DAG ``dag_name``, or None before it was created."""
        return None if self.p is None else pod_prefix(dag_name, task_id, self.t) + self.p


def pod_prefix(dag_name: str, task_id: str, try_number: int) -> str:
    """The readable start of a try's pod name: ``<dag>-<task slug>-<try>-``, at most 58 characters.

    The task slug is the task id lowercased with ``_`` and ``.`` turned into ``-`` (pod names are
    DNS-1123 labels); ``<dag>-<task slug>`` is cut so that the try number always fits. Several runs and
    tasks share a prefix; the hash that follows (:func:`kubedag.core.naming.pod_suffix`) keeps pods apart.
    """
    slug = task_id.lower().replace("_", "-").replace(".", "-")
    tail = f"-{try_number}-"
    return f"{dag_name}-{slug}"[: _MAX_GENERATE_NAME_PREFIX - len(tail)].rstrip("-") + tail


class DAGRunStatus(StatusModel):
    """The observed state of a DAGRun, written by the controller (Airflow's ``DagRun`` state)."""

    phase: DagRunState | None = Field(None, description="The run's state. Unset until the controller sees the run.")
    started_at: AwareDatetime | None = Field(None, description="When the run started running.")
    finished_at: AwareDatetime | None = Field(None, description="When the run reached success or failed.")
    observed_generation: int | None = Field(None, ge=0, description="The `metadata.generation` last acted on.")
    conditions: list[Condition] = _conditions()
    counts: TaskCounts = Field(default_factory=TaskCounts, description="Task instances per state.")
    tasks: dict[str, TaskEntry] = Field(
        default_factory=dict,
        json_schema_extra={"x-kubernetes-map-type": "atomic"},
        description="task id -> {s: state, t: try number, p: pod name suffix, r: reason of a failed try}; tasks in "
                    "state none are left out.",
    )
    applied_actions: list[str] | None = Field(None, description="Ids of `spec.actions` already applied.")


class LastRun(StatusModel):
    """The DAG's most recent run (by logical date)."""

    run_id: str
    phase: DagRunState | None = None
    logical_date: AwareDatetime | None = None


class DAGStatus(StatusModel):
    """The observed state of a DAG, written by the controller.

    ``conditions``: ``Ready`` is True when the manifest is valid and the DAG is scheduled; False with
    reason ``Invalid`` and the field errors in ``message`` otherwise.
    """

    observed_generation: int | None = Field(None, ge=0, description="The `metadata.generation` last acted on.")
    conditions: list[Condition] = _conditions()
    next_run_at: AwareDatetime | None = Field(None, description="When the next scheduled run is due; unset if none.")
    last_run: LastRun | None = None
    paused: bool | None = Field(None, description="Whether scheduling is paused, as the controller applies it.")


RunMeta = KubeMeta
"""A DAGRun's metadata; ``name`` may be absent (``generateName``)."""


class DAGRunManifest(StrictModel):
    """One run of a DAG, as ``kubectl create`` takes it and the controller creates it."""

    api_version: Literal["kubedag.io/v1alpha1"]
    kind: Literal["DAGRun"]
    metadata: RunMeta = Field(default_factory=RunMeta)
    spec: DAGRunSpec
    status: DAGRunStatus | None = None


__all__ = [
    "Condition", "DAGRunManifest", "RunAction", "DAGRunSpec", "DAGRunStatus", "DAGStatus", "LastRun", "RunMeta",
    "REASON_LENGTH", "REASON_STATES", "REASONS_BUDGET", "StatusModel", "TaskCounts", "TaskEntry", "pod_prefix", "reason_length",
]

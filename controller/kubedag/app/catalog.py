"""The read side of kubedag, one port for every reader (the REST API, the web UI, the CLI): :class:`Catalog`.

An executor's side implements it: locally from the metadata DB and the DAG folder (``kubedag.store.catalog``),
on a cluster from the DAG, DAGRun, Pool and Backfill objects plus the Postgres history
(``kubedag.k8s.catalog``). Writes never go through it: they are the operations of
:mod:`kubedag.app.operations` (trigger, clear, mark, delete, pause, backfill), so there is one implementation of
each, whichever entry point calls it.

Every record here is a small frozen dataclass of plain values. Every datetime is timezone-aware UTC; durations
are seconds. Field names follow Airflow's REST API (``dag_run_id`` is ``run_id`` here, as in Airflow's models).
An adapter fills what it knows and leaves ``None`` where it cannot know (say so in its docstring).

Errors: :class:`kubedag.app.operations.ports.NotFound` for a DAG, run, task, try, pool or backfill that does not
exist (or that the caller's scope cannot see); :class:`~kubedag.app.operations.ports.OperationError` for the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from kubedag.app.operations.ports import OperationError
from kubedag.core.spec.dag import DAG


@dataclass(frozen=True)
class DagInfo:
    """One DAG as the catalog knows it.

    ``dag``: the parsed DAG, ``None`` when it is invalid (then ``error`` holds the validation message, Airflow's
    import error). ``namespace``: the Kubernetes namespace (``None`` locally). ``fileloc``: the manifest file
    locally, ``<namespace>/<name>`` on a cluster. ``next_*``: the next scheduled run from the timetable (``None``
    when paused, invalid or the schedule has ended), as Airflow's ``DagModel.next_dagrun*``.
    """

    dag_id: str
    dag: DAG | None
    is_paused: bool
    namespace: str | None = None
    fileloc: str | None = None
    error: str | None = None
    last_parsed_time: datetime | None = None
    next_logical_date: datetime | None = None
    next_data_interval_start: datetime | None = None
    next_data_interval_end: datetime | None = None
    next_run_after: datetime | None = None


@dataclass(frozen=True)
class RunInfo:
    """One DAG run. ``run_type``: ``scheduled``, ``manual``, ``backfill`` (Airflow's ``DagRunType`` values).
    ``state``: ``queued``, ``running``, ``success``, ``failed``. ``object_name``: the DAGRun object on a cluster."""

    dag_id: str
    run_id: str
    run_type: str
    state: str
    logical_date: datetime | None
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    run_after: datetime | None = None
    queued_at: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    conf: Mapping[str, Any] = field(default_factory=dict)
    note: str | None = None
    triggered_by: str | None = None
    namespace: str | None = None
    object_name: str | None = None
    backfill_id: str | None = None
    """The backfill that created or re-ran the run (Airflow 3's ``dag_run.backfill_id``), None for others."""


@dataclass(frozen=True)
class TryInfo:
    """One try of a task instance (Airflow's task instance history row). ``hostname``: the node (cluster) or host
    (local); ``pod_name``: the pod of the try (cluster only). ``reason``: why it ended as it did, or why it waits.
    ``rendered_fields``: what this try was launched with, secrets masked (``{"command", "args", "env"}``,
    :func:`kubedag.core.tries.masked_rendered`; empty when not recorded: a try not launched yet, or recorded before
    migration 0007)."""

    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    state: str | None
    start_date: datetime | None = None
    end_date: datetime | None = None
    duration: float | None = None
    queued_at: datetime | None = None
    exit_code: int | None = None
    hostname: str | None = None
    pod_name: str | None = None
    pid: int | None = None
    reason: str | None = None
    rendered_fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskInstanceInfo:
    """One task instance of a run, at its latest try. ``state`` ``None`` is Airflow's "no status".
    ``operator``: the task's kind (``command``, ``sensor``, ``trigger``, ``empty`` …). ``reason``: why it is in its
    state or why it is not running (the engine's trigger-rule reason, a pool's limit, a retry time)."""

    dag_id: str
    run_id: str
    task_id: str
    state: str | None
    try_number: int
    max_tries: int
    start_date: datetime | None = None
    end_date: datetime | None = None
    duration: float | None = None
    queued_at: datetime | None = None
    hostname: str | None = None
    pod_name: str | None = None
    pool: str = "default_pool"
    pool_slots: int = 1
    priority_weight: int = 1
    operator: str | None = None
    reason: str | None = None
    logical_date: datetime | None = None
    run_after: datetime | None = None
    rendered_fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class XComInfo:
    """One XCom entry; ``value`` is the JSON value (already masked where it holds a secret)."""

    dag_id: str
    run_id: str
    task_id: str
    key: str
    value: Any
    timestamp: datetime | None = None
    map_index: int = -1
    logical_date: datetime | None = None


@dataclass(frozen=True)
class PoolInfo:
    """A pool with its slot counts (Airflow's pool: open = slots - occupied; occupied = running + queued)."""

    name: str
    slots: int
    running: int = 0
    queued: int = 0
    scheduled: int = 0
    deferred: int = 0
    description: str | None = None
    namespace: str | None = None

    @property
    def occupied(self) -> int:
        return self.running + self.queued

    @property
    def open(self) -> int:
        return max(self.slots - self.occupied, 0)


@dataclass(frozen=True)
class BackfillInfo:
    """A backfill (a Backfill object on a cluster, a backfill row locally). ``id``: its name; ``from_date`` /
    ``to_date``: the logical date range, inclusive; ``reprocess_behavior``: Airflow's ``none`` / ``failed`` /
    ``completed``; ``completed_at`` set once every run of it has ended or it was cancelled."""

    id: str
    dag_id: str
    from_date: datetime
    to_date: datetime
    reprocess_behavior: str = "none"
    max_active_runs: int | None = None
    is_paused: bool = False
    cancelled: bool = False
    dag_run_conf: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    completed_at: datetime | None = None
    runs_total: int = 0
    runs_done: int = 0
    namespace: str | None = None
    run_backwards: bool = False


@dataclass(frozen=True)
class VariableInfo:
    """A variable; ``value`` is masked (``***``) when its key or value is sensitive, as Airflow's masker does."""

    key: str
    value: str
    description: str | None = None
    is_encrypted: bool = False


@dataclass(frozen=True)
class ConnectionInfo:
    """A connection with its password and secret extras masked (never the real secret)."""

    connection_id: str
    conn_type: str
    host: str | None = None
    login: str | None = None
    schema: str | None = None
    port: int | None = None
    password: str | None = None
    extra: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class ComponentHealth:
    """One component's health: ``status`` ``healthy`` or ``unhealthy``; ``latest_heartbeat`` (UTC) where it has
    one; ``detail``: a one-line reason when unhealthy, or who leads (``holder``) for the controller."""

    status: str
    latest_heartbeat: datetime | None = None
    detail: str | None = None


@dataclass(frozen=True)
class HealthInfo:
    """Airflow's health document: the metadata DB and the scheduler (the controller on a cluster, the standalone
    scheduler locally)."""

    metadatabase: ComponentHealth
    scheduler: ComponentHealth


@dataclass(frozen=True)
class RunQuery:
    """Filters of a run listing, as Airflow's ``GET /dags/{dag_id}/dagRuns``: every bound inclusive, UTC;
    ``order_by`` a field of :class:`RunInfo`, ``-`` first for descending; ``limit``/``offset`` page the result."""

    dag_id: str | None = None
    states: Sequence[str] = ()
    run_types: Sequence[str] = ()
    logical_date_gte: datetime | None = None
    logical_date_lte: datetime | None = None
    start_date_gte: datetime | None = None
    start_date_lte: datetime | None = None
    end_date_gte: datetime | None = None
    end_date_lte: datetime | None = None
    order_by: str = "id"
    limit: int = 100
    offset: int = 0


class Catalog(Protocol):
    """What kubedag holds, read-only. See the module docstring for the errors and units."""

    def dags(self) -> list[DagInfo]:
        """Every DAG, valid or not, ordered by ``dag_id``."""

    def dag(self, dag_id: str) -> DagInfo:
        """One DAG. Raises NotFound."""

    def runs(self, query: RunQuery) -> tuple[list[RunInfo], int]:
        """The runs matching ``query`` (one page) and the total count before paging."""

    def run(self, dag_id: str, run_id: str) -> RunInfo:
        """One run. Raises NotFound."""

    def task_instances(self, dag_id: str, run_id: str) -> list[TaskInstanceInfo]:
        """Every task instance of a run, one per task of the DAG (a task with no row yet has state ``None``),
        ordered by task id. Raises NotFound for the run."""

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[TryInfo]:
        """Every try of one task instance, oldest first. Raises NotFound."""

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """The try's log text (live while it runs, archived after), secrets masked. Raises NotFound, or
        OperationError("log unavailable: <reason>")."""

    def xcoms(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[XComInfo]:
        """The XCom entries of a run (of one task when ``task_id``), newest try's value per key."""

    def pools(self) -> list[PoolInfo]:
        """Every pool, ``default_pool`` included, ordered by name."""

    def backfills(self, dag_id: str | None = None) -> list[BackfillInfo]:
        """The backfills (of one DAG), newest first."""

    def backfill(self, backfill_id: str) -> BackfillInfo:
        """One backfill. Raises NotFound."""

    def variables(self) -> list[VariableInfo]:
        """The variables the DAGs can read, masked."""

    def connections(self) -> list[ConnectionInfo]:
        """The connections the DAGs can read, masked."""

    def health(self) -> HealthInfo:
        """The metadata DB's and the scheduler's health, now."""


# ------------------------------------------------------------------------------------- backfills (writes)
@dataclass(frozen=True)
class BackfillRequest:
    """A backfill to create, as Airflow 3's ``POST /api/v2/backfills``: logical dates in ``[from_date, to_date]``
    (UTC), ``reprocess_behavior`` ``none`` (leave existing runs), ``failed`` (re-run failed ones) or ``completed``
    (re-run every existing run); ``max_active_runs`` caps its running runs (``None``: the DAG's)."""

    dag_id: str
    from_date: datetime
    to_date: datetime
    reprocess_behavior: str = "none"
    max_active_runs: int | None = None
    dag_run_conf: Mapping[str, Any] = field(default_factory=dict)
    run_backwards: bool = False


class Conflict(OperationError):
    """The object's state forbids the change (HTTP 409), e.g. pausing or cancelling a backfill that has completed."""


@runtime_checkable
class GridReader(Protocol):
    """A catalog that reads the task instances of many runs of one DAG at once (the grid's read: one query where
    :meth:`Catalog.task_instances` would make one per run). Optional: the UI falls back to per-run reads."""

    def grid(self, dag_id: str, run_ids: Sequence[str]) -> dict[str, list[TaskInstanceInfo]]:
        """``{run_id: task instances as Catalog.task_instances gives them}``; a run id with no run is left out.
        Raises NotFound for the DAG."""


@runtime_checkable
class GridVersion(Protocol):
    """A catalog that tells cheaply whether a DAG's grid changed (the grid's live poll asks every 2-5 s; building
    the grid to compare would read every task instance). Optional: without it the UI builds the grid and compares
    a digest of it."""

    def grid_version(self, dag_id: str, limit: int) -> str:
        """A short token of the grid of ``dag_id``'s latest ``limit`` runs (by logical date, newest first): it
        changes when a run is added or removed or changes state, or a task instance of those runs changes state
        or try number. Computed from a small query (the runs' ids and states, and per run and state the count, try
        sum and latest update of its task instances), not from the rows. An empty or unknown DAG has a token too."""


class RunNotes(Protocol):
    """Where a run's note is kept (Airflow's ``DagRun.note``): on a cluster the DAGRun's annotation
    ``kubedag.io/note``, which the cluster catalog reads into :attr:`RunInfo.note`. Optional: without it the API
    refuses notes (400)."""

    def set_note(self, dag_id: str, run_id: str, note: str | None) -> None:
        """Set the note of run ``run_id`` of ``dag_id`` (None: remove it). Raises NotFound."""


class IdentityScoped(Protocol):
    """A catalog that can narrow itself to what one identity may see (the cluster's: the namespaces where the
    Authorizer lets it ``list dags``; the others are then invisible). Optional: the API uses it when present."""

    def for_identity(self, identity: Identity, authorizer: Authorizer) -> Catalog:
        """The catalog as ``identity`` sees it."""


class Backfills(Protocol):
    """Where backfills are kept and carried out (the Backfill resource on a cluster, the metadata DB locally,
    carried out by the controller or the standalone scheduler). Planning is
    :func:`kubedag.app.operations.backfill.plan_backfill` in both."""

    def create(self, request: BackfillRequest) -> BackfillInfo:
        """Create a backfill. Raises NotFound (DAG), AlreadyExists (an active backfill of the DAG exists),
        InvalidRequest (dates, behaviour)."""

    def set_paused(self, backfill_id: str, paused: bool) -> BackfillInfo:
        """Pause (no new run starts) or unpause. Raises NotFound, or OperationError if it has completed."""

    def cancel(self, backfill_id: str) -> BackfillInfo:
        """Cancel: no new run starts, queued runs of it are removed, running ones finish. Raises NotFound."""


# ------------------------------------------------------------------------------------- who is asking
class Unauthenticated(Exception):
    """No credentials, or credentials that do not prove an identity (HTTP 401). The message names which."""


@dataclass(frozen=True)
class Identity:
    """Who makes a request: a Kubernetes user (from a TokenReview, or the user a basic-auth entry maps to) with
    its groups; locally ``local`` for the start-up token."""

    username: str
    groups: tuple[str, ...] = ()
    uid: str | None = None
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class Authenticator(Protocol):
    """Turns a request's ``Authorization`` header into an :class:`Identity`."""

    def authenticate(self, authorization: str | None) -> Identity:
        """``authorization``: the raw header (``Bearer …`` or ``Basic …``) or ``None``. Raises Unauthenticated."""


class Authorizer(Protocol):
    """Decides whether an identity may do one thing, in Kubernetes' terms (a SubjectAccessReview on a cluster:
    ``verb`` get/list/create/patch/update/delete, ``resource`` dags/dagruns/pools/backfills/pods, optional
    ``subresource`` such as ``log``, ``name`` for resourceName-level RBAC, ``namespace`` ``None`` for
    cluster-wide)."""

    def allowed(self, identity: Identity, verb: str, resource: str, namespace: str | None, *,
                name: str | None = None, subresource: str | None = None, group: str = "kubedag.io") -> bool:
        """Whether it is allowed. Never raises for a denial; raises OperationError if it cannot decide."""

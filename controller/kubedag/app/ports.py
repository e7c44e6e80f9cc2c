"""The ports of the application layer: Protocols the adapters implement and the application talks to.

Organised by section (run store, events and notifications, variables and connections, clock); add a port to
its section. Every datetime is timezone-aware UTC; durations are seconds unless a type says otherwise. A port
never returns an adapter's object (a SQLAlchemy row, a Kubernetes body): only :mod:`kubedag.core` values and
the small frozen dataclasses below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from kubedag.core import engine
from kubedag.core.spec.dag import DAG
from kubedag.core.timetable import DataInterval
from kubedag.core.tries import TryRecord

TryKey = tuple[str, int]
"""``(task_id, try_number)`` of one try (try numbers start at 1)."""


# ------------------------------------------------------------------------------------- run store
class RunConflictError(ValueError):
    """A run cannot be opened: another run of the DAG holds the same logical date (one run per logical date, as
    Airflow's ``dag_run`` unique constraint). The message names the logical date."""


@dataclass(frozen=True)
class RunObject:
    """The object a run belongs to (a DAGRun on a cluster): its ``metadata.name`` and ``metadata.uid``."""

    name: str
    uid: str


class RunIdTakenError(RunConflictError):
    """A run cannot be opened: its run id belongs to another object (``holder``), which may still exist or may
    have been deleted (the caller tells: :meth:`RunStore.archive_run` then frees the run id)."""

    def __init__(self, message: str, holder: RunObject) -> None:
        super().__init__(message)
        self.holder = holder


ARCHIVED_RUN_SEPARATOR = "~deleted-"
"""A run id used again after its DAGRun was deleted: the old history is kept as ``<run id>~deleted-<8 characters of
the old object's uid>`` (``~`` is allowed in run ids, and appears in none the controller makes)."""


@dataclass(frozen=True)
class StoredRun:
    """What the run store holds of one DAG run when it is (re)opened.

    ``tis``: task_id -> task instance (empty for a run the store has never seen). ``xcoms``: ``(task_id, key)`` ->
    JSON value, each from the newest try that pushed it. ``archived``: tries whose log is archived (so a restart
    archives nothing twice, issue 13).
    """

    tis: Mapping[str, engine.TaskInstance] = field(default_factory=dict)
    xcoms: Mapping[tuple[str, str], Any] = field(default_factory=dict)
    archived: frozenset[TryKey] = frozenset()


@dataclass(frozen=True)
class PassWrite:
    """Everything one reconcile pass changed, written by :meth:`RunStore.save_pass` in one transaction.

    ``run``: the run with its state. ``tis``: the task instances that changed. ``tries``: try history rows (a try
    that started or ended), each with its ``pod_name``/``hostname`` when known. ``xcoms``: ``(task_id, try_number)``
    -> key -> JSON value pushed by a successful try. ``cleared``: tasks whose XComs are removed first (Airflow's
    ``clear_xcom_data`` on clear). ``logs``: ``(task_id, try_number)`` -> the finished try's archived log text.
    ``rendered``: ``(task_id, try_number)`` -> the rendered fields a try launched in this pass was created with,
    secrets masked (:func:`kubedag.core.tries.masked_rendered`).
    """

    run: engine.DagRun
    tis: tuple[engine.TaskInstance, ...] = ()
    tries: tuple[TryRecord, ...] = ()
    xcoms: Mapping[TryKey, Mapping[str, Any]] = field(default_factory=dict)
    cleared: tuple[str, ...] = ()
    logs: Mapping[TryKey, str] = field(default_factory=dict)
    rendered: Mapping[TryKey, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when nothing but the run's state is to be written."""
        return not (self.tis or self.tries or self.xcoms or self.cleared or self.logs or self.rendered)


@dataclass(frozen=True)
class TryHistory:
    """One try's history row as the DB holds it: ``state`` (the try's outcome, e.g. ``success``, ``failed``, or
    ``running`` while it was not recorded as ended), dates (UTC-aware), ``exit_code``, and whether its log is
    archived (``has_log``)."""

    state: str | None
    start_date: datetime | None = None
    end_date: datetime | None = None
    exit_code: int | None = None
    has_log: bool = False


@dataclass(frozen=True)
class RunHistory:
    """What the DB holds of one run, to compare with its executor record (:mod:`kubedag.app.convergence`):
    the run's ``state`` and ``end_date``, task instances by task id, tries by ``(task_id, try_number)``."""

    state: str | None
    end_date: datetime | None = None
    tis: Mapping[str, engine.TaskInstance] = field(default_factory=dict)
    tries: Mapping[TryKey, TryHistory] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedRun:
    """A run as the store lists it (for backfills: a run whose object is gone still exists)."""

    run_id: str
    logical_date: datetime
    state: str | None


class RunStore(Protocol):
    """The metadata DB as the application sees it: a unit of work per call, every write idempotent (an upsert
    keyed by DAG, run, task and try), so a pass written twice, or again after a restart, changes nothing.

    Calls block (the controller runs them in a thread). DAGs are keyed by ``(namespace, name)``; a local
    scheduler uses one namespace. Every method may raise the DB driver's errors; the caller retries with backoff.
    """

    def save_dag(self, namespace: str, dag: DAG) -> None:
        """Upsert the DAG's row (its spec, paused flag)."""

    def open_run(self, namespace: str, dag: DAG, run: engine.DagRun, owner: RunObject | None = None) -> StoredRun:
        """Make sure the DAG and the run have rows; return what is stored of the run. ``owner``: the object the run
        belongs to (None: not checked); a run recorded with no owner is claimed by the first that opens it.

        Raises:
            RunIdTakenError: the run id belongs to another object (the run's identity is (namespace, DAG, run id)).
            RunConflictError: another run of the DAG has the same logical date (the message names its run id).
        """

    def stored_run(self, namespace: str, dag_id: str, run_id: str) -> tuple[str | None, StoredRun] | None:
        """Read only (a follower's warm standby): the uid of the object the run belongs to (None: unclaimed) and
        what is stored of it, as :meth:`open_run` returns it; None when the DB has no such run."""

    def archive_run(self, namespace: str, dag_id: str, run_id: str, holder_uid: str) -> str | None:
        """Keep the history of run ``run_id``, whose object ``holder_uid`` was deleted, under a new run id
        (``<run id>~deleted-<uid[:8]>``, :data:`ARCHIVED_RUN_SEPARATOR`) so the run id can start afresh. Returns the
        new run id; None when the run is not (or no longer) that object's (archived already: nothing to do)."""

    def stored_dag(self, namespace: str, name: str) -> DAG | None:
        """The DAG ``name`` as last saved (:meth:`save_dag`); None when the store has none that parses (a run whose
        DAG object was deleted is ended with it)."""

    def save_pass(self, namespace: str, dag: DAG, write: PassWrite) -> None:
        """Write one pass (see :class:`PassWrite`) in one transaction: cleared XComs first, then the run's state,
        the task instances, the try rows, the XComs and the archived logs."""

    def run_history(self, namespace: str, dag_id: str, run_id: str) -> RunHistory | None:
        """The run's rows (:class:`RunHistory`), None when the DB has no such run."""

    def latest_scheduled_interval(self, namespace: str, dag_id: str) -> DataInterval | None:
        """The data interval of the DAG's latest scheduled run, or None (Airflow's ``last_automated_dagrun``)."""

    def recorded_runs(self, namespace: str, dag_id: str) -> list[RecordedRun]:
        """Every run of the DAG the store holds, any state."""

    def external_states(self, namespace: str, dag_id: str, task_id: str | None,
                        dates: list[datetime]) -> list[str | None]:
        """An ``externalTask`` sensor's query (Airflow's ``ExternalTaskSensor`` counting states): the state of
        task ``task_id`` (None: of the run) in the DAG's run at each logical date of ``dates``, in order; ``"none"``
        for a task instance without a state, None when there is no such run or task instance."""


# -------------------------------------------------------------------------- events, notifications
class EventSink(Protocol):
    """Where user-facing events about an object go (Kubernetes Events on a cluster). Never blocks, never raises.

    ``about``: the object (a body with ``apiVersion``, ``kind``, ``metadata``); ``kind``: ``Normal`` | ``Warning``;
    ``reason``: CamelCase (``RunCreated``, ``SlaMiss``); ``message``: at most 1,024 characters, secrets masked by
    the sink.
    """

    def __call__(self, about: Mapping[str, Any], kind: str, reason: str, message: str) -> None: ...


class NotificationSink(Protocol):
    """Delivers a task or run notification (``notifier``: a :class:`kubedag.core.spec.models.Notifier`,
    ``notification``: a :class:`kubedag.core.notify.Notification`) in the background; a failing webhook never blocks
    nor fails the caller. ``namespace``: where the notifier's Secrets are read."""

    def __call__(self, namespace: str, notifier: Any, notification: Any) -> None: ...


# ----------------------------------------------------------------------- variables, connections
class SourceReader(Protocol):
    """A DAG's ``variablesFrom``/``connectionsFrom``: a :class:`kubedag.core.secrets.Sources` (``variables``,
    ``connections``, ``missing``: sources that could not be read, named in a failing template's reason).
    Implementations cache for a short TTL and register every secret value with the masker."""

    async def __call__(self, namespace: str, dag: DAG) -> Any: ...


# ------------------------------------------------------------------------------------------ clock
Clock = Callable[[], datetime]
"""Now, timezone-aware UTC."""


__all__ = [
    "ARCHIVED_RUN_SEPARATOR", "Clock", "EventSink", "NotificationSink", "PassWrite", "RecordedRun",
    "RunConflictError", "RunHistory", "RunIdTakenError", "RunObject", "RunStore", "SourceReader", "StoredRun",
    "TryHistory", "TryKey",
]

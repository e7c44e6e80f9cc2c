"""The ports of the operations (trigger, clear, mark, backfill, delete, pause): what an executor's side must
offer so that :mod:`kubedag.app.operations` can act on its runs.

* :class:`RunsRepository`: create a run, load a run with its task instances, apply a clear or mark
  (:class:`RunChange`), delete a run, and list the DAG's runs by logical date (for backfill).
  Locally: the metadata DB (``kubedag.store.operations.DbRuns``). In a cluster: DAGRun objects, where a
  clear or mark is appended to ``spec.actions`` so that the controller stays the only writer of a run and
  its pods (``kubedag.k8s.kubeapi.ClusterRuns``).
* :class:`DagSource`: find a DAG by name, list DAGs (a DAG folder locally, DAG objects in a cluster).
* :class:`PauseFlags`: a DAG's paused flag (the DB's ``dag.is_paused`` locally, ``spec.paused`` in a cluster).

Every error an adapter raises for the user is an :class:`OperationError` (or a subclass): its message is one
line, naming what is wrong; :class:`InvalidRequest` is bad usage (the CLI exits 2), the others exit 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from kubedag.core import engine
from kubedag.core.spec.dag import DAG


class OperationError(Exception):
    """An operation cannot be done; the message (one line) is for the user."""


class NotFound(OperationError):
    """The DAG, run or task named does not exist."""


class AlreadyExists(OperationError):
    """A run with that run id (or at that logical date) exists already."""


class InvalidRequest(OperationError):
    """The request itself is invalid (a bad run id, an end date before the start date, an unknown task)."""


class Unavailable(OperationError):
    """A service the operation needs cannot answer now (the Kubernetes API server unreachable or failing, a
    TokenReview/SubjectAccessReview that could not be made): HTTP 503, try again later."""


@dataclass(frozen=True)
class LoadedRun:
    """A run and its task instances (task_id -> TaskInstance; a task with no row has none)."""

    run: engine.DagRun
    tis: Mapping[str, engine.TaskInstance]


@dataclass(frozen=True)
class RunChange:
    """A clear or mark of one run, as the user asked for it and as the engine computed it.

    ``kind``: ``clear`` or ``mark``. ``task_ids``: the tasks named (empty: every task, for a clear).
    ``upstream``/``downstream``/``only_failed``: a clear's options; ``state``: a mark's new state.
    ``run``/``updates``/``affected``: the run after the change, the changed task instances and the ids of the
    tasks cleared or marked (:class:`kubedag.core.engine.ClearResult`), for a repository that writes them
    itself; a cluster's repository sends the request instead, and the controller computes the same result.
    """

    kind: str
    task_ids: tuple[str, ...]
    run: engine.DagRun
    updates: Mapping[str, engine.TaskInstance] = field(default_factory=dict)
    affected: tuple[str, ...] = ()
    upstream: bool = False
    downstream: bool = False
    only_failed: bool = False
    state: str | None = None


# --- the ports of the operations (kept together; other ports of the app live in their own modules) --------


class RunsRepository(Protocol):
    """Where an executor keeps its DAG runs and task instances."""

    def create_run(self, dag: DAG | str, run: engine.DagRun) -> None:
        """Create ``run`` (queued) of ``dag`` (a DAG, or only its name where the executor keeps the DAG).

        Raises:
            AlreadyExists: a run with that run id, or at that logical date, exists.
            NotFound: the DAG does not exist where the runs are kept.
        """

    def load_run(self, dag: DAG, run_id: str) -> LoadedRun:
        """The run ``run_id`` of ``dag`` and its task instances. Raises :class:`NotFound`."""

    def apply(self, dag: DAG, change: RunChange) -> None:
        """Carry out a clear or mark of ``change.run``. Raises :class:`NotFound` if the run is gone."""

    def delete_run(self, dag_id: str, run_id: str) -> None:
        """Delete the run with its task instances. Raises :class:`NotFound`."""

    def runs_by_logical_date(self, dag: DAG) -> Mapping[datetime, tuple[str, str]]:
        """The DAG's runs: logical date (UTC) -> ``(run_id, state)`` (state ``queued`` when not known yet)."""


class DagSource(Protocol):
    """Where DAGs are found."""

    def dag(self, name: str) -> DAG:
        """The DAG called ``name``. Raises :class:`NotFound` (or :class:`OperationError` for an invalid one)."""

    def dags(self) -> list[DAG]:
        """Every valid DAG, ordered by name."""


class PauseFlags(Protocol):
    """A DAG's paused flag (Airflow's ``DagModel.is_paused``): a paused DAG gets no scheduled run."""

    def is_paused(self, dag: DAG) -> bool:
        """Whether ``dag`` is paused now."""

    def set_paused(self, dag: DAG | str, paused: bool) -> bool:
        """Pause or unpause ``dag`` (a DAG, or its name where the executor keeps the DAG); returns the flag as
        stored. Raises :class:`NotFound`."""

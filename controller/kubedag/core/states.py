"""The vocabulary shared by every layer: Airflow 2's task instance states, DAG run states, run types
and trigger rules. Values are Airflow's own strings, so they read the same in the CLI, the database
and the Kubernetes status.
"""

from __future__ import annotations

from enum import StrEnum


class TaskInstanceState(StrEnum):
    """A task instance's state, as Airflow 2.10's ``TaskInstanceState`` (``none`` is Airflow's ``None``)."""

    NONE = "none"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"
    REMOVED = "removed"

    @property
    def finished(self) -> bool:
        """True for states a task instance does not leave by itself (Airflow's ``State.finished``)."""
        return self in FINISHED_STATES


FINISHED_STATES = frozenset(
    {
        TaskInstanceState.SUCCESS,
        TaskInstanceState.FAILED,
        TaskInstanceState.SKIPPED,
        TaskInstanceState.UPSTREAM_FAILED,
        TaskInstanceState.REMOVED,
    }
)
"""Airflow's ``State.finished`` for task instances."""

UNFINISHED_STATES = frozenset(set(TaskInstanceState) - FINISHED_STATES)


class DagRunState(StrEnum):
    """A DAG run's state, as Airflow 2.10's ``DagRunState``."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class RunType(StrEnum):
    """How a DAG run came to be, as Airflow's ``DagRunType``; the prefix of its run id."""

    SCHEDULED = "scheduled"
    MANUAL = "manual"
    BACKFILL = "backfill"


class TriggerRule(StrEnum):
    """When a task may run given its upstream tasks' states, as Airflow 2.10's ``TriggerRule``."""

    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_SKIPPED = "all_skipped"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    NONE_SKIPPED = "none_skipped"
    ALWAYS = "always"

"""When a failed try is retried, and whether it may be.

Ports of Airflow 2.10's ``TaskInstance.next_retry_datetime`` and ``_is_eligible_to_retry``
(``airflow/models/taskinstance.py``), with Airflow 2.10's try numbering: ``try_number`` is the
number of the try that just ran (1 for the first), because 2.10 increments it when it schedules a
try, not when the try starts running.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta, timezone

from kubedag.core.spec.dag import Task

MAX_RETRY_DELAY = 24 * 60 * 60
"""Seconds; Airflow's ``airflow.models.abstractoperator.MAX_RETRY_DELAY``, the cap of an exponential delay."""


def _hash_input(dag_id: str, task_id: str, logical_date: datetime, try_number: int) -> str:
    # Airflow hashes f"{dag_id}#{task_id}#{execution_date}#{try_number}", i.e. str() of the UTC
    # execution date as loaded from the database: "2024-01-01 00:00:00+00:00" (space separator,
    # "+00:00" offset, ".ffffff" only when microseconds are not zero).
    return f"{dag_id}#{task_id}#{logical_date.astimezone(timezone.utc)}#{try_number}"


def exponential_delay(
    task: Task, *, dag_id: str, task_id: str, logical_date: datetime, try_number: int
) -> timedelta:
    """The delay before the next try with ``retry_exponential_backoff``, as Airflow 2.10 computes it.

    ``min_backoff = max(1, ceil(retry_delay_seconds * 2 ** (try_number - 1)))``; the delay in whole
    seconds is ``min_backoff + sha1(dag_id#task_id#logical_date#try_number) % min_backoff``, so it
    lies in ``[min_backoff, 2 * min_backoff)``, deterministic per task instance and try; then capped
    at :data:`MAX_RETRY_DELAY` (24 h) and at ``task.max_retry_delay`` when that is set and non-zero.
    """
    # 2.10: `2 ** (self.try_number - 1)` (was `- 2` before 2.10 moved the increment to scheduling).
    min_backoff = math.ceil(task.retry_delay.total_seconds() * (2 ** (try_number - 1)))
    if min_backoff < 1:
        min_backoff = 1
    ti_hash = int(hashlib.sha1(_hash_input(dag_id, task_id, logical_date, try_number).encode()).hexdigest(), 16)
    modded_hash = min_backoff + ti_hash % min_backoff
    delay = timedelta(seconds=min(modded_hash, MAX_RETRY_DELAY))
    if task.max_retry_delay:  # Airflow: `if self.task.max_retry_delay:`; a zero delay is no cap
        delay = min(task.max_retry_delay, delay)
    return delay


def next_retry_at(
    task: Task,
    *,
    dag_id: str,
    task_id: str,
    logical_date: datetime,
    try_number: int,
    end_date: datetime,
) -> datetime:
    """When the try numbered ``try_number`` that failed at ``end_date`` may be retried.

    Airflow's ``next_retry_datetime``: ``end_date + retry_delay``, or with
    ``retry_exponential_backoff`` ``end_date +`` :func:`exponential_delay`. Note that, as in
    Airflow, the 24 h cap and ``max_retry_delay`` apply only to the exponential delay; a linear
    ``retry_delay`` is used as it is. Datetimes are UTC-aware.
    """
    if task.retry_exponential_backoff:
        return end_date + exponential_delay(
            task, dag_id=dag_id, task_id=task_id, logical_date=logical_date, try_number=try_number
        )
    return end_date + task.retry_delay


def can_retry(task: Task, try_number: int, max_tries: int | None = None) -> bool:
    """Whether a failure of the try numbered ``try_number`` (1 = first) leads to up_for_retry.

    Airflow 2.10's ``_is_eligible_to_retry``: ``task.retries and ti.try_number <= ti.max_tries``,
    where Airflow's ``max_tries`` is ``retries`` until the task instance is cleared (then
    ``try_number + retries``: pass the task instance's ``max_tries``); so with ``retries=2`` tries 1
    and 2 are retried and try 3 fails, i.e. ``try_number < task.max_tries`` in kubedag's terms.
    """
    return task.retries > 0 and try_number <= (task.retries if max_tries is None else max_tries)


def tries_allowed(task: Task, max_tries: int | None = None) -> int:
    """How many tries a task instance may have in all, for "try N of M": Airflow's ``max_tries`` (retries allowed,
    the task instance's own after a clear: pass it) plus the first try; ``task.retries + 1`` when None."""
    return (task.retries if max_tries is None else max_tries) + 1

"""Retry timing and eligibility against Airflow 2.10's next_retry_datetime / _is_eligible_to_retry."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from kubedag.core.engine import MAX_RETRY_DELAY, can_retry, exponential_delay, next_retry_at
from kubedag.core.spec.dag import Task

LOGICAL = datetime(2024, 1, 1, tzinfo=timezone.utc)
END = datetime(2024, 1, 1, 1, 0, tzinfo=timezone.utc)


def t(**kw) -> Task:
    return Task(task_id="extract", command=("x",), **kw)


def at(task: Task, try_number: int, logical_date: datetime = LOGICAL) -> datetime:
    return next_retry_at(
        task, dag_id="etl", task_id="extract", logical_date=logical_date, try_number=try_number, end_date=END
    )


def test_linear_delay_is_retry_delay_for_every_try():
    task = t(retries=5, retry_delay=timedelta(minutes=5))
    assert [at(task, n) for n in (1, 2, 5)] == [END + timedelta(minutes=5)] * 3


def test_linear_delay_ignores_max_retry_delay():
    # Airflow applies max_retry_delay (and the 24 h cap) only inside `if retry_exponential_backoff:`
    task = t(retries=1, retry_delay=timedelta(hours=2), max_retry_delay=timedelta(minutes=1))
    assert at(task, 1) == END + timedelta(hours=2)


def _by_hand(retry_delay_s: float, try_number: int) -> int:
    # Airflow 2.10 models/taskinstance.py next_retry_datetime:
    #   min_backoff = math.ceil(delay.total_seconds() * (2 ** (self.try_number - 1)))
    #   ti_hash = int(sha1(f"{dag_id}#{task_id}#{execution_date}#{try_number}").hexdigest(), 16)
    #   modded_hash = min_backoff + ti_hash % min_backoff
    min_backoff = max(1, math.ceil(retry_delay_s * 2 ** (try_number - 1)))
    text = f"etl#extract#2024-01-01 00:00:00+00:00#{try_number}"
    return min_backoff + int(hashlib.sha1(text.encode()).hexdigest(), 16) % min_backoff


# retry_delay 10 s; min_backoff 10, 20, 40, 80, 160; sha1 jitter mod min_backoff = 4, 15, 13, 50, 152
EXPONENTIAL = {1: 14, 2: 35, 3: 53, 4: 130, 5: 312}


@pytest.mark.parametrize(("try_number", "seconds"), sorted(EXPONENTIAL.items()))
def test_exponential_backoff_tries_1_to_5(try_number, seconds):
    task = t(retries=5, retry_delay=timedelta(seconds=10), retry_exponential_backoff=True)
    assert _by_hand(10, try_number) == seconds
    assert at(task, try_number) == END + timedelta(seconds=seconds)
    # always within [min_backoff, 2 * min_backoff)
    assert 10 * 2 ** (try_number - 1) <= seconds < 20 * 2 ** (try_number - 1)


def test_exponential_first_retry_uses_the_plain_delay_as_floor():
    # 2.10 uses `2 ** (try_number - 1)`: the first failure (try 1) waits between 1x and 2x retry_delay,
    # not between 0.5x and 1x as with Airflow < 2.10's `2 ** (try_number - 2)`.
    task = t(retries=1, retry_delay=timedelta(seconds=300), retry_exponential_backoff=True)
    delay = at(task, 1) - END
    assert timedelta(seconds=300) <= delay < timedelta(seconds=600)


def test_exponential_capped_at_24h():
    assert MAX_RETRY_DELAY == 86400
    task = t(retries=9, retry_delay=timedelta(hours=20), retry_exponential_backoff=True)
    # try 2: min_backoff = 144000 s > 86400 s, so the cap wins
    assert at(task, 2) == END + timedelta(hours=24)
    # and it does not overflow for absurd try numbers
    assert at(task, 200) == END + timedelta(hours=24)


def test_exponential_capped_by_max_retry_delay():
    task = t(
        retries=5,
        retry_delay=timedelta(seconds=10),
        retry_exponential_backoff=True,
        max_retry_delay=timedelta(minutes=1),
    )
    assert at(task, 3) == END + timedelta(seconds=53)  # below the cap: untouched
    assert at(task, 4) == END + timedelta(minutes=1)  # 130 s capped
    assert at(task, 5) == END + timedelta(minutes=1)


def test_zero_max_retry_delay_is_no_cap():
    # `if self.task.max_retry_delay:` -- timedelta(0) is falsy
    task = t(retries=5, retry_delay=timedelta(seconds=10), retry_exponential_backoff=True, max_retry_delay=timedelta(0))
    assert at(task, 5) == END + timedelta(seconds=312)


def test_zero_retry_delay_exponential_is_one_second():
    # `if min_backoff < 1: min_backoff = 1` -> 1 + hash % 1 = 1
    task = t(retries=1, retry_delay=timedelta(0), retry_exponential_backoff=True)
    assert exponential_delay(task, dag_id="etl", task_id="extract", logical_date=LOGICAL, try_number=1) == (
        timedelta(seconds=1)
    )


def test_hash_uses_str_of_utc_logical_date():
    task = t(retries=5, retry_delay=timedelta(seconds=10), retry_exponential_backoff=True)
    # the same instant in another zone hashes the same (Airflow stores and loads it in UTC)
    paris = LOGICAL.astimezone(ZoneInfo("Europe/Paris"))
    assert at(task, 4, paris) == at(task, 4)
    # microseconds are part of str(datetime)
    odd = datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=timezone.utc)
    text = "etl#extract#2024-01-01 00:00:00.123456+00:00#4"
    expected = 80 + int(hashlib.sha1(text.encode()).hexdigest(), 16) % 80
    assert at(task, 4, odd) == END + timedelta(seconds=expected)


@pytest.mark.parametrize(
    ("retries", "try_number", "expected"),
    [
        (0, 1, False),  # `task.retries and ...` -- no retries, never
        (1, 1, True),
        (1, 2, False),
        (2, 1, True),
        (2, 2, True),  # try_number <= max_tries (== retries)
        (2, 3, False),
    ],
)
def test_can_retry(retries, try_number, expected):
    task = t(retries=retries)
    assert can_retry(task, try_number) is expected
    assert (try_number < task.max_tries) is expected or retries == 0

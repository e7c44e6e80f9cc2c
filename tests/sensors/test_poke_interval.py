"""next_poke_interval against Airflow 2.10's BaseSensorOperator._get_next_poke_interval."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from kubedag.core.sensors import NOT_MET, next_poke_interval
from kubedag.core.spec.models import SENSOR_NOT_MET_EXIT_CODE

from ._helpers import sensor

STARTED = datetime(2026, 11, 1, tzinfo=timezone.utc)
STAMP = "2026-11-01 00:00:00+00:00"  # str() of Airflow's UTC start date as loaded from its DB


def interval(spec, poke_count: int, elapsed_s: float = 0, started_at: datetime = STARTED) -> timedelta:
    return next_poke_interval(
        spec, dag_id="etl", task_id="wait", started_at=started_at, poke_count=poke_count,
        elapsed=timedelta(seconds=elapsed_s),
    )


class AirflowSensor:
    """Airflow 2.10's _get_next_poke_interval, transcribed with its own attribute names (seconds as floats)."""

    def __init__(self, poke_interval, timeout, mode="poke", max_wait=None, dag_id="etl", task_id="wait"):
        self.poke_interval, self.timeout, self.mode = poke_interval, timeout, mode
        self.max_wait = timedelta(seconds=max_wait) if max_wait is not None else None
        self.dag_id, self.task_id, self.exponential_backoff = dag_id, task_id, True
        self.reschedule = mode == "reschedule"

    def _get_next_poke_interval(self, started_at, run_duration, poke_count):
        if not self.exponential_backoff:
            return self.poke_interval
        if self.reschedule:
            elapsed_time = run_duration()
            cumulative_time = 0.0
            estimated_poke_count = 0
            while cumulative_time <= elapsed_time:
                estimated_poke_count += 1
                min_backoff = max(int(self.poke_interval * (2 ** (estimated_poke_count - 2))), 1)
                run_hash = int(
                    hashlib.sha1(f"{self.dag_id}#{self.task_id}#{started_at}#{estimated_poke_count}".encode()).hexdigest(),
                    16,
                )
                modded_hash = min_backoff + run_hash % min_backoff
                interval_with_jitter = min(modded_hash, timedelta.max.total_seconds() - 1)
                cumulative_time += interval_with_jitter
            poke_count = estimated_poke_count or poke_count
        min_backoff = max(int(self.poke_interval * (2 ** (poke_count - 2))), 1)
        run_hash = int(hashlib.sha1(f"{self.dag_id}#{self.task_id}#{started_at}#{poke_count}".encode()).hexdigest(), 16)
        modded_hash = min_backoff + run_hash % min_backoff
        delay_backoff_in_seconds = min(modded_hash, timedelta.max.total_seconds() - 1)
        new_interval = min(self.timeout - int(run_duration()), delay_backoff_in_seconds)
        if self.max_wait:
            new_interval = min(self.max_wait.total_seconds(), new_interval)
        return new_interval


def test_not_met_exit_code_is_the_spec_constant():
    assert NOT_MET == SENSOR_NOT_MET_EXIT_CODE == 75


def test_without_backoff_the_interval_is_poke_interval_whatever_the_time_left():
    spec = sensor(pokeInterval="5m", timeout="1m", maxWait="10s")
    assert [interval(spec, n, elapsed_s=50) for n in (1, 2, 9)] == [timedelta(minutes=5)] * 3


def test_backoff_values_computed_by_hand():
    # sha1("etl#wait#2026-11-01 00:00:00+00:00#N"), min_backoff 30, 60, 120, 240 s for N = 1..4:
    spec = sensor(pokeInterval="60s", exponentialBackoff=True)
    assert [interval(spec, n).total_seconds() for n in (1, 2, 3, 4)] == [36, 115, 231, 349]


@pytest.mark.parametrize("poke_interval", [0, 0.5, 1, 7, 60, 300])
@pytest.mark.parametrize("poke_count", [1, 2, 3, 6, 12])
@pytest.mark.parametrize("max_wait", [None, 0, 90])
def test_poke_mode_backoff_matches_airflow(poke_interval, poke_count, max_wait):
    spec = sensor(pokeInterval=f"{int(poke_interval * 1000)}ms", timeout="1h", exponentialBackoff=True,
                  **({} if max_wait is None else {"maxWait": max_wait}))
    airflow = AirflowSensor(poke_interval, 3600, max_wait=max_wait)
    want = airflow._get_next_poke_interval(STAMP, lambda: 125.7, poke_count)
    assert interval(spec, poke_count, elapsed_s=125.7).total_seconds() == want


@pytest.mark.parametrize("elapsed", [0, 0.4, 1, 29, 100, 1000])
@pytest.mark.parametrize("poke_interval", [0, 10, 60])
def test_reschedule_mode_estimates_the_poke_count_from_elapsed_time(elapsed, poke_interval):
    spec = sensor(mode="reschedule", pokeInterval=poke_interval, timeout="1h", exponentialBackoff=True)
    airflow = AirflowSensor(poke_interval, 3600, mode="reschedule")
    want = airflow._get_next_poke_interval(STAMP, lambda: elapsed, 1)
    # The poke count passed is ignored in reschedule mode: every poke is a new process.
    assert interval(spec, 1, elapsed_s=elapsed).total_seconds() == want
    assert interval(spec, 5, elapsed_s=elapsed).total_seconds() == want


def test_zero_poke_interval_backs_off_by_one_second_even_after_1024_pokes():
    # Airflow's 0.0 * 2 ** (n - 2) raises OverflowError once n passes 1025; min_backoff is 1 s before that.
    spec = sensor(mode="reschedule", pokeInterval=0, timeout="1h", exponentialBackoff=True)
    assert interval(spec, 1, elapsed_s=3000) == timedelta(seconds=1)
    assert interval(sensor(pokeInterval=0, exponentialBackoff=True), 5000) == timedelta(seconds=1)


def test_backoff_is_capped_by_the_time_left_and_by_max_wait():
    spec = sensor(pokeInterval="60s", timeout="100s", exponentialBackoff=True)
    assert interval(spec, 4, elapsed_s=70.9) == timedelta(seconds=30)  # Airflow: timeout - int(elapsed)
    capped = sensor(pokeInterval="60s", exponentialBackoff=True, maxWait="90s")
    assert interval(capped, 4) == timedelta(seconds=90)
    no_cap = sensor(pokeInterval="60s", exponentialBackoff=True, maxWait="0s")  # Airflow: `if self.max_wait:`
    assert interval(no_cap, 4) == interval(sensor(pokeInterval="60s", exponentialBackoff=True), 4)


def test_past_the_timeout_the_interval_is_zero_not_negative():
    spec = sensor(pokeInterval="60s", timeout="10s", exponentialBackoff=True)
    assert interval(spec, 2, elapsed_s=20) == timedelta(0)


def test_jitter_depends_on_the_start_in_utc_whatever_its_zone():
    spec = sensor(pokeInterval="600s", exponentialBackoff=True)
    paris = STARTED.astimezone(ZoneInfo("Europe/Paris"))
    assert interval(spec, 3, started_at=paris) == interval(spec, 3)
    assert interval(spec, 3, started_at=STARTED + timedelta(seconds=1)) != interval(spec, 3)


def test_naive_start_and_bad_poke_count_are_rejected():
    spec = sensor(exponentialBackoff=True)
    with pytest.raises(ValueError, match="started_at"):
        interval(spec, 1, started_at=datetime(2026, 11, 1))
    with pytest.raises(ValueError, match="poke_count"):
        interval(spec, 0)

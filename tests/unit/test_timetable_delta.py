"""``schedule: 10m`` (any duration): Airflow 2.10's ``DeltaDataIntervalTimetable``.

Expected datetimes are worked out by hand from Airflow 2.10's ``airflow/timetables/interval.py`` and the values of
its ``tests/timetables/test_interval_timetable.py`` (START_DATE 2021-09-04, CURRENT_TIME 2021-09-07, an hourly
delta), never computed with the code under test.
"""

from __future__ import annotations

import datetime as dt

import pytest

from kubedag.core.spec import DAGValidationError, parse_dag
from kubedag.core.timetable import (
    DagRunInfo,
    DataInterval,
    DeltaDataIntervalTimetable,
    TimeRestriction,
    backfill_infos,
    due_runs,
    infer_automated_data_interval,
    schedule_report,
    timetable_for,
)

UTC = dt.timezone.utc
HOUR = dt.timedelta(hours=1)
START_DATE = dt.datetime(2021, 9, 4, tzinfo=UTC)
CURRENT_TIME = dt.datetime(2021, 9, 7, tzinfo=UTC)
PREV_DATA_INTERVAL = DataInterval(START_DATE, START_DATE + dt.timedelta(days=1))
HOURLY = DeltaDataIntervalTimetable(HOUR)


def u(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("schedule", "delta"), [("10m", dt.timedelta(minutes=10)), ("1h30m", dt.timedelta(minutes=90)),
                                                 ("2d", dt.timedelta(days=2)), ("1w", dt.timedelta(weeks=1))])
def test_a_duration_schedule_is_a_delta_timetable(schedule, delta):
    assert timetable_for(schedule, "Europe/Berlin") == DeltaDataIntervalTimetable(delta)


def test_catchup_next_info_starts_at_previous_interval_end():
    info = HOURLY.next_dagrun_info(last_automated_data_interval=PREV_DATA_INTERVAL,
                                   restriction=TimeRestriction(START_DATE, None, catchup=True), now=CURRENT_TIME)
    assert info == DagRunInfo.interval(u(2021, 9, 5), u(2021, 9, 5, 1))


@pytest.mark.parametrize("last", [None, DataInterval.exact(u(2021, 9, 5))])
def test_no_catchup_next_info_ends_at_the_current_time(last):
    info = HOURLY.next_dagrun_info(last_automated_data_interval=last,
                                   restriction=TimeRestriction(START_DATE, None, catchup=False), now=CURRENT_TIME)
    assert info == DagRunInfo.interval(CURRENT_TIME - HOUR, CURRENT_TIME)


@pytest.mark.parametrize("now", [u(2022, 7, 27), u(2022, 7, 27, 0, 30)])
def test_no_catchup_rounds_now_down_to_a_multiple_of_the_delta_since_the_epoch(now):
    # DeltaDataIntervalTimetable._round, then one interval back: the latest complete interval
    info = HOURLY.next_dagrun_info(last_automated_data_interval=None,
                                   restriction=TimeRestriction(u(2022, 1, 1), None, catchup=False), now=now)
    assert info == DagRunInfo.interval(u(2022, 7, 26, 23), u(2022, 7, 27))


def test_first_run_starts_at_start_date_not_aligned_to_anything():
    every_10m = timetable_for("10m")
    runs = due_runs(every_10m, TimeRestriction(u(2026, 1, 1, 0, 3), None, catchup=True), u(2026, 1, 1, 0, 40))
    assert [(r.data_interval.start, r.data_interval.end, r.run_after) for r in runs] == [
        (u(2026, 1, 1, 0, 3), u(2026, 1, 1, 0, 13), u(2026, 1, 1, 0, 13)),
        (u(2026, 1, 1, 0, 13), u(2026, 1, 1, 0, 23), u(2026, 1, 1, 0, 23)),
        (u(2026, 1, 1, 0, 23), u(2026, 1, 1, 0, 33), u(2026, 1, 1, 0, 33)),
    ]


def test_end_date_is_inclusive_of_an_interval_start():
    runs = due_runs(HOURLY, TimeRestriction(u(2026, 1, 1), u(2026, 1, 1, 2), catchup=True), u(2026, 2, 1))
    assert [r.logical_date for r in runs] == [u(2026, 1, 1), u(2026, 1, 1, 1), u(2026, 1, 1, 2)]


def test_manual_run_covers_the_delta_before_it():
    assert HOURLY.infer_manual_data_interval(run_after=u(2026, 1, 1, 12, 34)) == DataInterval(
        u(2026, 1, 1, 11, 34), u(2026, 1, 1, 12, 34))


def test_a_scheduled_runs_interval_from_its_logical_date_and_backfill():
    assert infer_automated_data_interval(HOURLY, u(2026, 1, 1, 5)) == DataInterval(u(2026, 1, 1, 5), u(2026, 1, 1, 6))
    infos = backfill_infos(HOURLY, u(2026, 1, 1, 0, 30), u(2026, 1, 1, 2))
    assert [i.logical_date for i in infos] == [u(2026, 1, 1, 0, 30), u(2026, 1, 1, 1, 30)]


def test_schedule_report_and_summary():
    every_10m = timetable_for("10m")
    assert every_10m.summary == "0:10:00"  # str(timedelta), as Airflow's summary
    report = schedule_report(every_10m, TimeRestriction(u(2026, 1, 1), None, catchup=True), u(2026, 1, 1, 0, 25), count=1)
    assert [r["run_id"] for r in report["due"]] == ["scheduled__2026-01-01T00:00:00+00:00",
                                                    "scheduled__2026-01-01T00:10:00+00:00"]
    assert report["upcoming"][0]["data_interval_start"] == "2026-01-01T00:20:00+00:00"
    assert report["manual"] == {"data_interval_start": "2026-01-01T00:15:00+00:00",
                                "data_interval_end": "2026-01-01T00:25:00+00:00"}


def test_a_manifest_with_a_duration_schedule():
    dag = parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "every-10m"},
                     "spec": {"schedule": "10m", "startDate": "2026-01-01", "tasks": [{"name": "a", "command": ["true"]}]}})
    assert dag.timetable == DeltaDataIntervalTimetable(dt.timedelta(minutes=10))


@pytest.mark.parametrize(("schedule", "message"), [
    ("0s", "spec.schedule: schedule interval must be positive, not '0s'"),
    ("10x", "spec.schedule: invalid schedule '10x': expected a cron expression (5 fields: minute hour dom month dow), "
            "a preset such as '@daily', or a duration such as '10m', '1h30m', '2d'"),
])
def test_a_bad_duration_schedule_is_an_error_naming_the_field(schedule, message):
    with pytest.raises(DAGValidationError) as info:
        parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "d"},
                   "spec": {"schedule": schedule, "startDate": "2026-01-01", "tasks": [{"name": "a", "command": ["true"]}]}})
    assert [str(e) for e in info.value.errors] == [message]

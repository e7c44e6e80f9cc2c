"""run_from_object: a DAGRun object as the engine's DagRun, its defaults filled in as ``airflow dags trigger``.

Expected intervals are worked out by hand. Europe/Berlin is UTC+1 until 29 Mar 2026, UTC+2 after.
"""

from __future__ import annotations

from datetime import datetime

import pydantic
import pytest

from kubedag.k8s.observe import run_from_object
from kubedag.core.states import DagRunState, RunType
from tests.unit_k8s.podkit import T0, UTC, dag_of, run_body

TASKS = [{"name": "extract", "command": ["echo", "hi"]}]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_run_with_only_dag_name_is_a_manual_run_at_its_creation_time():
    dag = dag_of(TASKS)  # schedule: none
    run = run_from_object(dag, run_body(created=T0))
    assert run.dag_id == "etl"
    assert run.run_type == RunType.MANUAL
    assert run.logical_date == T0
    assert run.run_id == "manual__2026-03-10T05:30:00+00:00"
    # a DAG without schedule: the exact interval [logical date, logical date]
    assert (run.data_interval_start, run.data_interval_end) == (T0, T0)
    assert run.state == DagRunState.QUEUED
    assert run.start_date is None and run.end_date is None
    assert dict(run.conf) == {}


def test_every_pass_agrees_on_the_run():
    dag = dag_of(TASKS, schedule="@daily", startDate="2026-01-01")
    assert run_from_object(dag, run_body()) == run_from_object(dag, run_body())


def test_manual_run_of_a_daily_dag_covers_the_previous_complete_day():
    dag = dag_of(TASKS, schedule="@daily", startDate="2026-01-01")
    run = run_from_object(dag, run_body(created=T0))  # Tue 10 Mar 05:30Z
    assert run.logical_date == T0
    assert run.data_interval_start == utc(2026, 3, 9)
    assert run.data_interval_end == utc(2026, 3, 10)


def test_manual_run_of_an_hourly_dag_covers_the_previous_complete_hour():
    dag = dag_of(TASKS, schedule="@hourly", startDate="2026-01-01")
    run = run_from_object(dag, run_body(created=T0))
    assert (run.data_interval_start, run.data_interval_end) == (utc(2026, 3, 10, 4), utc(2026, 3, 10, 5))


def test_manual_interval_is_computed_in_the_dag_timezone():
    # 06:00 Berlin = 05:00Z in March (CET); created at 05:30Z, just after the 10 March fire time.
    dag = dag_of(TASKS, schedule="0 6 * * *", timezone="Europe/Berlin", startDate="2026-01-01")
    run = run_from_object(dag, run_body(created=T0))
    assert (run.data_interval_start, run.data_interval_end) == (utc(2026, 3, 9, 5), utc(2026, 3, 10, 5))


def test_manual_run_created_exactly_on_a_boundary_covers_the_interval_ending_there():
    dag = dag_of(TASKS, schedule="@daily", startDate="2026-01-01")
    run = run_from_object(dag, run_body(created=utc(2026, 3, 10)))
    assert (run.data_interval_start, run.data_interval_end) == (utc(2026, 3, 9), utc(2026, 3, 10))


def test_a_scheduled_run_with_explicit_dates():
    dag = dag_of(TASKS, schedule="@daily", startDate="2026-01-01")
    body = run_body(created=T0, spec={
        "runType": "scheduled",
        "logicalDate": "2026-03-09T00:00:00Z",
        "dataIntervalStart": "2026-03-09T00:00:00Z",
        "dataIntervalEnd": "2026-03-10T00:00:00Z",
    })
    run = run_from_object(dag, body)
    assert run.run_type == RunType.SCHEDULED
    assert run.logical_date == utc(2026, 3, 9)  # not the creation time
    assert (run.data_interval_start, run.data_interval_end) == (utc(2026, 3, 9), utc(2026, 3, 10))
    assert run.run_id == "scheduled__2026-03-09T00:00:00+00:00"


def test_explicit_run_id_and_conf_are_kept():
    dag = dag_of(TASKS)
    body = run_body(spec={"runId": "rerun_after-fix.2", "conf": {"target": "s3://bucket/x", "n": 3}})
    run = run_from_object(dag, body)
    assert run.run_id == "rerun_after-fix.2"
    assert dict(run.conf) == {"target": "s3://bucket/x", "n": 3}


def test_naive_dates_are_read_in_the_dag_timezone():
    dag = dag_of(TASKS, schedule="@daily", timezone="Europe/Berlin", startDate="2026-01-01")
    body = run_body(spec={
        "runType": "scheduled",
        "logicalDate": "2026-03-09T00:00:00",
        "dataIntervalStart": "2026-03-09T00:00:00",
        "dataIntervalEnd": "2026-03-10T00:00:00",
    })
    run = run_from_object(dag, body)
    assert run.logical_date == utc(2026, 3, 8, 23)
    assert (run.data_interval_start, run.data_interval_end) == (utc(2026, 3, 8, 23), utc(2026, 3, 9, 23))
    assert run.run_id == "scheduled__2026-03-08T23:00:00+00:00"
    assert run.logical_date.utcoffset().total_seconds() == 0


def test_naive_summer_date_uses_summer_time():
    dag = dag_of(TASKS, timezone="Europe/Berlin")
    run = run_from_object(dag, run_body(spec={"logicalDate": "2026-07-01T00:00:00"}))
    assert run.logical_date == utc(2026, 6, 30, 22)
    assert run.run_id == "manual__2026-06-30T22:00:00+00:00"


def test_a_date_alone_is_midnight_in_the_dag_timezone():
    dag = dag_of(TASKS, timezone="Europe/Berlin")
    run = run_from_object(dag, run_body(spec={"logicalDate": "2026-03-09"}))
    assert run.logical_date == utc(2026, 3, 8, 23)


def test_manual_run_with_a_naive_logical_date_infers_the_interval_from_it():
    # @daily in Berlin fires at 23:00Z (CET); 12:00 Berlin on 10 Mar = 11:00Z.
    dag = dag_of(TASKS, schedule="@daily", timezone="Europe/Berlin", startDate="2026-01-01")
    run = run_from_object(dag, run_body(spec={"logicalDate": "2026-03-10T12:00:00"}))
    assert run.run_type == RunType.MANUAL
    assert run.logical_date == utc(2026, 3, 10, 11)
    assert (run.data_interval_start, run.data_interval_end) == (utc(2026, 3, 8, 23), utc(2026, 3, 9, 23))


def test_an_offset_date_is_converted_to_utc():
    dag = dag_of(TASKS, timezone="Europe/Berlin")
    run = run_from_object(dag, run_body(spec={"logicalDate": "2026-03-09T10:00:00-05:00"}))
    assert run.logical_date == utc(2026, 3, 9, 15)


def test_the_status_phase_and_dates_are_carried():
    dag = dag_of(TASKS)
    status = {"phase": "running", "startedAt": "2026-03-10T05:30:02Z", "counts": {"running": 1},
              "tasks": {"extract": {"s": "running", "t": 1}}}
    run = run_from_object(dag, run_body(status=status))
    assert run.state == DagRunState.RUNNING
    assert run.start_date == utc(2026, 3, 10, 5, 30, 2)
    assert run.end_date is None


def test_a_finished_status_is_carried():
    dag = dag_of(TASKS)
    status = {"phase": "failed", "startedAt": "2026-03-10T05:30:02Z", "finishedAt": "2026-03-10T05:40:00Z"}
    run = run_from_object(dag, run_body(status=status))
    assert run.state == DagRunState.FAILED
    assert run.finished
    assert run.end_date == utc(2026, 3, 10, 5, 40)


def test_unknown_status_fields_are_ignored():
    dag = dag_of(TASKS)
    run = run_from_object(dag, run_body(status={"phase": "queued", "someFutureField": {"x": 1}}))
    assert run.state == DagRunState.QUEUED


@pytest.mark.parametrize("run_id", ["manual run 1", "a/b", "été", "x" * 251])
def test_an_invalid_run_id_raises(run_id):
    with pytest.raises(pydantic.ValidationError):
        run_from_object(dag_of(TASKS), run_body(spec={"runId": run_id}))


@pytest.mark.parametrize("spec", [
    {"logical_date": "2026-03-09"},                                   # snake_case: unknown field
    {"dataIntervalStart": "2026-03-09T00:00:00Z"},                    # without its end
    {"dataIntervalStart": "2026-03-10T00:00:00Z", "dataIntervalEnd": "2026-03-09T00:00:00Z"},  # reversed
    {"runType": "scheduled"},                                         # a scheduled run needs a logicalDate
    {"runType": "sometimes"},
    {"logicalDate": "next tuesday"},
])
def test_an_invalid_spec_raises(spec):
    with pytest.raises(pydantic.ValidationError):
        run_from_object(dag_of(TASKS), run_body(spec=spec))


def test_no_logical_date_and_no_creation_timestamp_raises_value_error():
    body = run_body()
    del body["metadata"]["creationTimestamp"]
    with pytest.raises(ValueError, match="logicalDate"):
        run_from_object(dag_of(TASKS), body)


def test_a_scheduled_run_with_only_a_logical_date_covers_the_interval_starting_there():
    dag = dag_of(TASKS, schedule="@daily", startDate="2026-01-01")
    run = run_from_object(dag, run_body(spec={"runType": "scheduled", "logicalDate": "2026-03-09T00:00:00Z"}))
    assert (run.data_interval_start, run.data_interval_end) == (utc(2026, 3, 9), utc(2026, 3, 10))

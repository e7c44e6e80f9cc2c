"""The externalTask sensor (Airflow's ExternalTaskSensor): dates, outcome, summary and the DB query."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.orm import Session

from kubedag.core.sensors import (
    external_check_problems,
    external_logical_dates,
    external_outcome,
    external_summary,
)
from kubedag.store import open_store, repository
from kubedag.store.external import external_states
from kubedag.core.templating import TemplateError

from ._helpers import external

UTC = timezone.utc
LOGICAL = datetime(2026, 11, 2, tzinfo=UTC)
D1 = datetime(2026, 11, 1, tzinfo=UTC)


def rendering(text: str):
    """A render(template, field) that returns ``text`` and records the fields it was asked for."""

    def render(template: str, field: str) -> str:
        render.fields.append(field)
        return text

    render.fields = []
    return render


def no_render(template: str, field: str) -> str:
    raise AssertionError(f"{field} should not be rendered")


# ------------------------------------------------------------------ logical dates


def test_default_is_this_runs_logical_date_in_utc():
    paris = LOGICAL.astimezone(timezone(timedelta(hours=1)))
    assert external_logical_dates(external(), paris, no_render) == [LOGICAL]
    assert external_logical_dates(external(), paris, no_render)[0].tzinfo == UTC


def test_execution_delta_looks_back():
    assert external_logical_dates(external(executionDelta="1d"), LOGICAL, no_render) == [D1]
    assert external_logical_dates(external(executionDelta="0s"), LOGICAL, no_render) == [LOGICAL]


@pytest.mark.parametrize(
    "text, dates",
    [
        ("2026-11-01", [D1]),
        (" 2026-11-01T00:00:00Z\n", [D1]),
        ("2026-11-01T01:00:00+01:00", [D1]),
        ('"2026-11-01T00:00:00"', [D1]),  # a JSON string; naive is UTC
        ('["2026-11-01", "2026-11-02T00:00:00+00:00"]', [D1, LOGICAL]),
    ],
)
def test_logical_dates_template(text, dates):
    render = rendering(text)
    assert external_logical_dates(external(logicalDates="{{ x }}"), LOGICAL, render) == dates
    assert render.fields == ["sensor.externalTask.logicalDates"]


@pytest.mark.parametrize(
    "text, field, message",
    [
        ("yesterday", "sensor.externalTask.logicalDates", "'yesterday' is not an ISO 8601 date"),
        ("[2026-11-01]", "sensor.externalTask.logicalDates", "not valid JSON"),
        ("[]", "sensor.externalTask.logicalDates", "empty list"),
        ('["2026-11-01", 5]', "sensor.externalTask.logicalDates[1]", "expected an ISO 8601 date string, got 5"),
        ('["2026-11-01", "soon"]', "sensor.externalTask.logicalDates[1]", "'soon' is not an ISO 8601 date"),
    ],
)
def test_bad_logical_dates_name_the_field(text, field, message):
    with pytest.raises(TemplateError) as exc:
        external_logical_dates(external(logicalDates="{{ x }}"), LOGICAL, rendering(text))
    assert exc.value.field == field
    assert message in exc.value.message


def test_naive_run_logical_date_is_rejected():
    with pytest.raises(ValueError, match="run_logical_date"):
        external_logical_dates(external(), datetime(2026, 11, 2), no_render)


# ------------------------------------------------------------------ outcome

TASK = {"task": "load"}
STRICT = {"task": "load", "failedStates": ["failed", "upstream_failed"], "skippedStates": ["skipped"]}


@pytest.mark.parametrize(
    "fields, states, outcome",
    [
        (TASK, ["success"], "met"),
        (TASK, ["running"], "not_met"),
        (TASK, [None], "not_met"),  # no run / task instance yet
        (TASK, ["none"], "not_met"),
        (TASK, ["failed"], "not_met"),  # no failedStates: wait (until the sensor's timeout), as Airflow
        (TASK, ["success", None], "not_met"),  # every date must be allowed
        (TASK, ["success", "success"], "met"),
        (STRICT, ["upstream_failed"], "failed"),
        (STRICT, ["skipped"], "skipped"),
        (STRICT, ["skipped", "failed"], "failed"),  # failed is checked first
        (STRICT, ["success", "skipped"], "skipped"),  # one skipped date is enough
        (STRICT, [None, "running"], "not_met"),
        ({**TASK, "allowedStates": ["success", "skipped"]}, ["skipped", "success"], "met"),
        ({"allowedStates": ["failed"], "failedStates": ["success"], "task": "load"}, ["success"], "failed"),
        ({}, ["success"], "met"),  # the whole run
        ({}, ["running"], "not_met"),
        ({"failedStates": ["failed"]}, ["failed", None], "failed"),
        ({"skippedStates": ["failed"]}, ["queued", "failed"], "skipped"),
    ],
)
def test_outcome(fields, states, outcome):
    assert external_outcome(external(**fields), states) == outcome


@pytest.mark.parametrize(
    "fields, problem",
    [
        ({"task": "load", "allowedStates": ["succes"]}, "sensor.externalTask.allowedStates[0]: 'succes' is not a task"),
        ({"allowedStates": ["skipped"]}, "'skipped' is not a DAG run state (no task is set)"),
        ({"failedStates": ["upstream_failed"]}, "sensor.externalTask.failedStates[0]: 'upstream_failed' is not a DAG"),
        ({"task": "load", "failedStates": ["success"]}, "failedStates[0]: 'success' is already in "
                                                        "sensor.externalTask.allowedStates"),
    ],
)
def test_invalid_state_lists_are_rejected_naming_the_field(fields, problem):
    check = external(**fields)
    assert any(problem in p for p in external_check_problems(check)), external_check_problems(check)
    with pytest.raises(ValueError, match="sensor.externalTask"):
        external_outcome(check, ["success"])


def test_valid_state_lists_have_no_problems():
    assert external_check_problems(external(**STRICT)) == []
    assert external_check_problems(external(allowedStates=["success", "failed"], skippedStates=["queued"])) == []


def test_summary_says_what_the_sensor_waits_for():
    dates = [D1, LOGICAL]
    assert external_summary(external(**TASK), [D1], [None]) == (
        "waiting for load-data.load at 2026-11-01T00:00:00Z: no such run or task instance yet"
    )
    assert external_summary(external(), dates, ["success", "running"]) == (
        "waiting for the run of load-data at 2026-11-02T00:00:00Z: running (want success)"
    )
    assert external_summary(external(**TASK), dates, [None, None]).endswith("(and 1 more logical dates)")
    assert external_summary(external(**STRICT), dates, ["success", "upstream_failed"]) == (
        "load-data.load at 2026-11-02T00:00:00Z is upstream_failed (in failedStates)"
    )
    assert external_summary(external(**TASK), [D1], ["success"]) == "load-data.load at 2026-11-01T00:00:00Z is success"
    with pytest.raises(ValueError, match="length"):
        external_summary(external(), dates, ["success"])


# ------------------------------------------------------------------ the DB query

DAG_ID = "team-a/load-data"  # a cluster DAG's DB dag id is <namespace>/<name>


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    engine, factory = open_store(db_url)
    try:
        with factory.begin() as s:
            for dag_id in (DAG_ID, "load-data"):
                repository.upsert_dag(s, dag_id, spec={"tasks": []})
            for day, state in ((1, "success"), (2, "running")):
                run_id = f"scheduled__2026-11-0{day}T00:00:00+00:00"
                repository.create_dag_run(
                    s, dag_id=DAG_ID, run_id=run_id, run_type="scheduled", state=state,
                    logical_date=datetime(2026, 11, day, tzinfo=UTC),
                )
                repository.upsert_task_instance(s, DAG_ID, run_id, "load", state=state)
                repository.upsert_task_instance(s, DAG_ID, run_id, "report", state=None)
            # The local DAG of the same name is another DAG: its runs never count.
            repository.create_dag_run(s, dag_id="load-data", run_id="m", run_type="manual", state="failed",
                                      logical_date=datetime(2026, 11, 3, tzinfo=UTC))
        with factory() as s:
            yield s
    finally:
        engine.dispose()


def test_task_states_at_each_date_in_order(session):
    dates = [datetime(2026, 11, d, tzinfo=UTC) for d in (2, 3, 1, 2)]
    assert external_states(session, DAG_ID, "load", dates) == ["running", None, "success", "running"]


def test_a_task_instance_without_state_is_none_and_a_missing_one_is_None(session):
    assert external_states(session, DAG_ID, "report", [D1]) == ["none"]
    assert external_states(session, DAG_ID, "no-such-task", [D1]) == [None]


def test_run_states_without_a_task(session):
    dates = [D1, LOGICAL, datetime(2026, 11, 3, tzinfo=UTC)]
    assert external_states(session, DAG_ID, None, dates) == ["success", "running", None]
    assert external_states(session, "load-data", None, dates) == [None, None, "failed"]


def test_dates_in_any_zone_match_the_utc_logical_date(session):
    paris = D1.astimezone(timezone(timedelta(hours=1)))
    assert external_states(session, DAG_ID, "load", [paris]) == ["success"]
    assert external_states(session, DAG_ID, "load", [D1 + timedelta(seconds=1)]) == [None]
    assert external_states(session, DAG_ID, "load", []) == []
    with pytest.raises(ValueError, match="naive"):
        external_states(session, DAG_ID, "load", [datetime(2026, 11, 1)])


def test_end_to_end_with_a_logical_dates_template(session):
    check = external(task="load", logicalDates="{{ dates }}", failedStates=["failed"])
    dates = external_logical_dates(check, LOGICAL, rendering(json.dumps(["2026-11-01", "2026-11-02"])))
    states = external_states(session, DAG_ID, check.task, dates)
    assert external_outcome(check, states) == "not_met"
    assert external_summary(check, dates, states) == (
        "waiting for load-data.load at 2026-11-02T00:00:00Z: running (want success)"
    )
    assert external_outcome(check, external_states(session, DAG_ID, "load", dates[:1])) == "met"

"""The rest of Airflow 2.10's template context: ``next_ds``/``prev_ds`` (per the timetable, the logical date itself
for a manual run), ``yesterday_ds``/``tomorrow_ds``, the ``prev_*_success`` values of the previous successful run,
``inlets``/``outlets`` and the filters of ``airflow.templates.FILTERS``. Expected values follow Airflow 2.10's
``TaskInstance.get_template_context`` and its templates reference, worked out by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kubedag.core import engine, runpass, tries
from kubedag.core.spec import parse_dag
from kubedag.core.states import RunType
from kubedag.core.templating import PreviousRun, TemplateError, render

UTC = timezone.utc


def dag(schedule: str | None, tz: str = "UTC"):
    return parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "sales"},
                      "spec": {"schedule": schedule, "startDate": "2026-01-01", "timezone": tz,
                               "tasks": [{"name": "load", "command": ["true"]}]}})


def run(run_type: RunType, start: datetime, end: datetime) -> engine.DagRun:
    return engine.DagRun(dag_id="sales", run_id=f"{run_type}__{start.isoformat()}", run_type=run_type,
                         logical_date=start, data_interval_start=start, data_interval_end=end)


def rendered(template: str, schedule: str | None, r: engine.DagRun, prev: PreviousRun | None = None) -> str:
    return render(template, tries.try_context(dag(schedule), r, "load", 1, prev_success=prev))


DATES = "{{ next_ds }} {{ next_ds_nodash }} {{ prev_ds }} {{ prev_ds_nodash }}"
DAILY_RUN = run(RunType.SCHEDULED, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))


@pytest.mark.parametrize(("schedule", "r", "expected"), [
    # a scheduled @daily run of 1 March: the next and previous fire times (UTC midnights here)
    ("0 0 * * *", DAILY_RUN, "2026-03-02 20260302 2026-02-28 20260228"),
    # a weekly run (Mondays): next and previous Mondays
    ("0 0 * * 1", run(RunType.SCHEDULED, datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)),
     "2026-03-09 20260309 2026-02-23 20260223"),
    # every 10 hours from startDate: logical date +- the delta
    ("10h", run(RunType.SCHEDULED, datetime(2026, 3, 1, 20, tzinfo=UTC), datetime(2026, 3, 2, 6, tzinfo=UTC)),
     "2026-03-02 20260302 2026-03-01 20260301"),
    # backfill runs are not externally triggered: the timetable decides, as for scheduled ones
    ("0 0 * * *", run(RunType.BACKFILL, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)),
     "2026-03-02 20260302 2026-02-28 20260228"),
    # a manual run (dag_run.external_trigger): both are its own logical date
    ("0 0 * * *", run(RunType.MANUAL, datetime(2026, 3, 5, 13, tzinfo=UTC), datetime(2026, 3, 5, 13, tzinfo=UTC)),
     "2026-03-05 20260305 2026-03-05 20260305"),
    # @once has no next or previous schedule: None, as Airflow renders it
    ("@once", run(RunType.SCHEDULED, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
     "None None None None"),
])
def test_next_and_prev_ds(schedule, r, expected):
    assert rendered(DATES, schedule, r) == expected


def test_dates_of_a_dag_in_another_timezone_are_formatted_in_utc():
    # @daily in Berlin: the run of 1 March 00:00 CET starts 28 Feb 23:00 UTC; its neighbours likewise
    r = run(RunType.SCHEDULED, datetime(2026, 2, 28, 23, tzinfo=UTC), datetime(2026, 3, 1, 23, tzinfo=UTC))
    context = tries.try_context(dag("0 0 * * *", "Europe/Berlin"), r, "load", 1)
    assert render("{{ ds }} " + DATES, context) == "2026-02-28 2026-03-01 20260301 2026-02-27 20260227"


def test_yesterday_and_tomorrow_are_the_logical_date_plus_minus_a_day():
    template = "{{ yesterday_ds }} {{ yesterday_ds_nodash }} {{ tomorrow_ds }} {{ tomorrow_ds_nodash }}"
    assert rendered(template, "0 0 * * *", DAILY_RUN) == "2026-02-28 20260228 2026-03-02 20260302"


def test_next_and_prev_execution_date_are_datetimes():
    assert rendered("{{ next_execution_date }} {{ prev_execution_date }}", "0 0 * * *", DAILY_RUN) == (
        "2026-03-02T00:00:00+00:00 2026-02-28T00:00:00+00:00")


SUCCESS = ("{{ prev_data_interval_start_success }}|{{ prev_data_interval_end_success }}|"
           "{{ prev_start_date_success }}|{{ prev_end_date_success }}")


def test_prev_success_values_come_from_the_previous_successful_run():
    prev = PreviousRun(logical_date=datetime(2026, 2, 27, tzinfo=UTC), data_interval_start=datetime(2026, 2, 27, tzinfo=UTC),
                       data_interval_end=datetime(2026, 2, 28, tzinfo=UTC),
                       start_date=datetime(2026, 2, 28, 0, 0, 5, tzinfo=UTC),
                       end_date=datetime(2026, 2, 28, 1, 2, 3, tzinfo=timezone(timedelta(hours=1))))
    assert rendered(SUCCESS, "0 0 * * *", DAILY_RUN, prev) == (
        "2026-02-27T00:00:00+00:00|2026-02-28T00:00:00+00:00|2026-02-28T00:00:05+00:00|2026-02-28T00:02:03+00:00")
    assert rendered("{{ prev_start_date_success | ds_nodash }}", "0 0 * * *", DAILY_RUN, prev) == "20260228"


def test_prev_success_values_are_none_without_a_previous_successful_run():
    assert rendered(SUCCESS, "0 0 * * *", DAILY_RUN) == "None|None|None|None"


def test_the_run_pass_renders_with_the_previous_successful_run_it_is_given():
    prev = PreviousRun(logical_date=datetime(2026, 2, 28, tzinfo=UTC), data_interval_start=datetime(2026, 2, 28, tzinfo=UTC),
                       data_interval_end=datetime(2026, 3, 1, tzinfo=UTC))
    ctx = runpass.template_context(dag("0 0 * * *"), DAILY_RUN, "load", 1, runpass.RenderInputs(prev_success=prev))
    assert render("{{ prev_data_interval_end_success | ds }} {{ next_ds }}", ctx) == "2026-03-01 2026-03-02"


def test_inlets_and_outlets_are_empty():
    assert rendered("{{ inlets }} {{ outlets | length }}", "0 0 * * *", DAILY_RUN) == "[] 0"


@pytest.mark.parametrize(("template", "expected"), [
    ("{{ data_interval_end | ds }}", "2026-03-02"),
    ("{{ data_interval_end | ds_nodash }}", "20260302"),
    ("{{ data_interval_end | ts }}", "2026-03-02T00:00:00+00:00"),
    ("{{ data_interval_end | ts_nodash }}", "20260302T000000"),
    ("{{ data_interval_end | ts_nodash_with_tz }}", "20260302T000000+0000"),
    ("{{ macros.datetime(2026, 5, 17, 8, 30) | ts_nodash }}", "20260517T083000"),
])
def test_airflow_filters(template, expected):
    assert rendered(template, "0 0 * * *", DAILY_RUN) == expected


def test_a_filter_on_a_string_is_a_template_error_naming_the_field():
    with pytest.raises(TemplateError) as info:
        render("{{ ds | ds_nodash }}", tries.try_context(dag("0 0 * * *"), DAILY_RUN, "load", 1), "args[0]")
    assert info.value.field == "args[0]" and "strftime" in info.value.message

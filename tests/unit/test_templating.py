"""Templating: Airflow 2.10's template variables and macros, strictness and sandboxing."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kubedag.core.templating import RunContext, TemplateError, check_syntax, ds_add, ds_format, render, render_fields, template_context

UTC = timezone.utc


@pytest.fixture
def ctx():
    return template_context(
        RunContext(
            dag_id="supermarket-promotions",
            task_id="create_metrics",
            run_id="scheduled__2026-11-01T16:00:00+00:00",
            run_type="scheduled",
            logical_date=datetime(2026, 11, 1, 16, 0, tzinfo=UTC),
            data_interval_start=datetime(2026, 11, 1, 16, 0, tzinfo=UTC),
            data_interval_end=datetime(2026, 11, 2, 16, 0, tzinfo=UTC),
            try_number=2,
            params={"region": "kr", "limit": 10},
            conf={"limit": 3},
        )
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ ds }}", "2026-11-01"),
        ("{{ ds_nodash }}", "20261101"),
        ("{{ ts }}", "2026-11-01T16:00:00+00:00"),
        ("{{ ts_nodash }}", "20261101T160000"),
        ("{{ ts_nodash_with_tz }}", "20261101T160000+0000"),
        ("{{ logical_date }}", "2026-11-01T16:00:00+00:00"),
        ("{{ logical_date.strftime('%H') }}", "16"),
        ("{{ data_interval_start }}", "2026-11-01T16:00:00+00:00"),
        ("{{ data_interval_end }}", "2026-11-02T16:00:00+00:00"),
        ("{{ run_id }}", "scheduled__2026-11-01T16:00:00+00:00"),
        ("{{ dag.dag_id }}/{{ task.task_id }}", "supermarket-promotions/create_metrics"),
        ("{{ ti.try_number }}", "2"),
        ("{{ params.region }}", "kr"),
        ("{{ params.limit }}", "3"),  # dag_run.conf overrides params (dag_run_conf_overrides_params)
        ("{{ dag_run.conf.limit }}", "3"),
        ("{{ dag_run.run_type }}", "scheduled"),
        ("{{ macros.ds_add(ds, -7) }}", "2026-10-25"),
        ("{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }}", "01/11/2026"),
        ("{{ (data_interval_end - data_interval_start).total_seconds() | int }}", "86400"),
        ("plain text stays", "plain text stays"),
    ],
)
def test_airflow_template_variables(ctx, template, expected):
    assert render(template, ctx) == expected


def test_dates_render_in_utc_whatever_the_dag_timezone():
    # Airflow formats ds from the logical date in UTC: 2026-11-01T00:30+09:00 is 2026-10-31 in UTC.
    from zoneinfo import ZoneInfo

    seoul = datetime(2026, 11, 1, 0, 30, tzinfo=ZoneInfo("Asia/Seoul"))
    ctx = template_context(RunContext("d", "t", "r", "manual", seoul, seoul, seoul))
    assert render("{{ ds }} {{ ts }}", ctx) == "2026-10-31 2026-10-31T15:30:00+00:00"


def test_undefined_variable_is_an_error_naming_the_field(ctx):
    with pytest.raises(TemplateError) as info:
        render_fields(["echo"], ["{{ ds }}", "{{ params.missing }}"], {}, ctx)
    assert info.value.field == "args[1]"
    assert "missing" in str(info.value)


def test_sandbox_blocks_unsafe_attribute_access(ctx):
    with pytest.raises(TemplateError, match="args\\[0\\]"):
        render_fields([], ["{{ ''.__class__.__mro__[1].__subclasses__() }}"], {}, ctx)


def test_render_fields_renders_command_args_and_env(ctx):
    out = render_fields(["python3", "-c", "print('{{ ds }}')"], ["--try", "{{ ti.try_number }}"], {"OUT": "out/{{ ds_nodash }}"}, ctx)
    assert out.command == ["python3", "-c", "print('2026-11-01')"]
    assert out.args == ["--try", "2"]
    assert out.env == {"OUT": "out/20261101"}


def test_check_syntax_reports_line():
    check_syntax("{{ ds }} and {% if true %}x{% endif %}")
    with pytest.raises(ValueError, match="line 2"):
        check_syntax("ok\n{{ ds }")


def test_macros_match_airflow_examples():
    # the examples in Airflow's macros docstrings
    assert ds_add("2015-01-01", 5) == "2015-01-06"
    assert ds_add("2015-01-06", -5) == "2015-01-01"
    assert ds_format("2015-01-01", "%Y-%m-%d", "%m-%d-%y") == "01-01-15"
    assert ds_format("1/5/2015", "%m/%d/%Y", "%Y-%m-%d") == "2015-01-05"

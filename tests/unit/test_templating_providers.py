"""Templating with providers: ti.xcom_pull, var.value / var.json and conn, as Airflow 2.10's context has them."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kubedag.core.templating import ContextError, RunContext, TemplateError, render, render_fields, template_context
from kubedag.core.xcom import NO_XCOM, RETURN_KEY

T0 = datetime(2026, 11, 1, 16, 0, tzinfo=timezone.utc)

XCOMS = {
    ("extract", RETURN_KEY): {"n": 3, "rows": [{"id": 1, "ok": True}], "note": None},
    ("extract", "rows"): 3,
    ("count", RETURN_KEY): "42",
    ("flag", RETURN_KEY): False,
}
VARIABLES = {"region": "kr", "settings": '{"limit": 10, "tags": ["a", "b"]}', "broken": "{not json", "api_key": "s3cr3t-v4lue"}
CONNECTIONS = {
    "my_db": "postgres://etl%40corp:p%40ss%2Fw0rd@db.example:5432/sales?sslmode=require&connect_timeout=10",
    "my-api": "http://api.example.com",
    "bad_port": "postgres://u:p@db:notaport/x",
}


def ctx(**overrides):
    pulled = []

    def pull(task_id, key):
        pulled.append((task_id, key))
        return XCOMS.get((task_id, key), NO_XCOM)

    fields = dict(
        dag_id="etl", task_id="load", run_id="manual__1", run_type="manual", logical_date=T0,
        data_interval_start=T0, data_interval_end=T0, try_number=2,
        xcom_pull=pull, variables=VARIABLES, connections=CONNECTIONS,
    )
    fields.update(overrides)
    context = template_context(RunContext(**fields))
    context["_pulled"] = pulled
    return context


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ ti.xcom_pull(task_ids='extract') }}", '{"n": 3, "rows": [{"id": 1, "ok": true}], "note": null}'),
        ("{{ ti.xcom_pull('extract') }}", '{"n": 3, "rows": [{"id": 1, "ok": true}], "note": null}'),
        ("{{ ti.xcom_pull('extract')['n'] }}", "3"),
        ("{{ ti.xcom_pull('extract').rows }}", '[{"id": 1, "ok": true}]'),
        ("{{ ti.xcom_pull('extract').rows[0] }}", '{"id": 1, "ok": true}'),
        ("{{ ti.xcom_pull('extract').rows | length }}", "1"),
        ("{{ ti.xcom_pull(task_ids='extract', key='rows') }}", "3"),
        ("{{ ti.xcom_pull('extract', key='rows') + 1 }}", "4"),
        ("{{ ti.xcom_pull('count') }}", "42"),  # a string renders as itself, not quoted
        ("{{ ti.xcom_pull(task_ids=['count', 'missing', 'extract'], key='return_value') | length }}", "2"),
        ("{{ ti.xcom_pull(task_ids=['count', 'flag']) }}", '["42", false]'),
        ("{{ ti.xcom_pull(task_ids=('extract',), key='rows') }}", "[3]"),
        ("{{ ti.xcom_pull('missing') }}", "None"),  # Airflow's default
        ("{{ ti.xcom_pull('missing', default='-') }}", "-"),
        ("{% if ti.xcom_pull('missing') is none %}skip{% endif %}", "skip"),
        ("{% if not ti.xcom_pull('flag') %}off{% endif %}", "off"),
        ("{{ task_instance.xcom_pull('extract', 'etl', 'rows') }}", "3"),  # Airflow's positional order
        ("{{ ti.xcom_pull('extract', dag_id='etl', run_id='manual__1') | length }}", "3"),
        ("{{ ti.try_number }} {{ ti.task_id }} {{ ti.run_id }} {{ ti.dag_id }}", "2 load manual__1 etl"),
    ],
)
def test_xcom_pull(template, expected):
    assert render(template, ctx()) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ ti.xcom_pull() }}", "ti.xcom_pull: task_ids is required"),
        ("{{ ti.xcom_pull('extract', dag_id='other') }}", "dag_id='other': only this DAG's XComs can be pulled"),
        ("{{ ti.xcom_pull('extract', run_id='r0') }}", "run_id='r0': only this run's XComs can be pulled"),
        ("{{ ti.xcom_pull('extract', include_prior_dates=True) }}", "include_prior_dates is not supported"),
        ("{{ ti.xcom_pull('extract', map_indexes=[0]) }}", "map_indexes is not supported"),
        ("{{ ti.xcom_pull('extract', key='') }}", "key must be a non-empty string"),
        ("{{ ti.xcom_pull(task_ids=3) }}", "task_ids must be a task id or a list of them"),
    ],
)
def test_xcom_pull_errors(template, message):
    with pytest.raises(TemplateError, match="^args\\[0\\]: ") as info:
        render_fields([], [template], {}, ctx())
    assert message in str(info.value)


def test_provider_errors_name_the_field():
    def pull(task_id, key):
        raise ContextError(f"ti.xcom_pull: no task {task_id!r} in DAG 'etl'")

    with pytest.raises(TemplateError) as info:
        render_fields([], [], {"OUT": "{{ ti.xcom_pull('nope') }}"}, ctx(xcom_pull=pull))
    assert str(info.value) == "env.OUT: ti.xcom_pull: no task 'nope' in DAG 'etl'"


def test_nothing_is_pulled_for_templates_that_do_not_ask():
    context = ctx()
    render_fields(["echo", "{{ ds }}"], ["{{ var.value.region }}"], {"A": "{{ conn.my_db.host }}"}, context)
    assert context["_pulled"] == []


def test_without_providers_there_is_nothing_to_read():
    context = ctx(xcom_pull=None, variables=None, connections=None)
    assert render("{{ ti.xcom_pull('extract') }}", context) == "None"
    with pytest.raises(TemplateError, match="no variable 'region'"):
        render("{{ var.value.region }}", context)
    with pytest.raises(TemplateError, match="no connection 'my_db'"):
        render("{{ conn.my_db.host }}", context)


# ------------------------------------------------------------------- variables
@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ var.value.region }}", "kr"),
        ("{{ var.value['region'] }}", "kr"),
        ("{{ var.value.get('region') }}", "kr"),
        ("{{ var.value.get('missing', 'default') }}", "default"),
        ("{{ var.value.settings }}", '{"limit": 10, "tags": ["a", "b"]}'),
        ("{{ var.json.settings.limit * 2 }}", "20"),
        ("{{ var.json.settings.tags }}", '["a", "b"]'),
        ("{{ var.json.settings }}", '{"limit": 10, "tags": ["a", "b"]}'),
        ("{{ var.json.get('missing', {'x': 1}).x }}", "1"),
        ("{{ var.value.api_key }}", "s3cr3t-v4lue"),  # masking is the log's business, not the template's
    ],
)
def test_variables(template, expected):
    assert render(template, ctx()) == expected


def test_missing_variable_says_where_variables_come_from():
    with pytest.raises(TemplateError) as info:
        render_fields(["{{ var.value.regoin }}"], [], {}, ctx())
    assert str(info.value) == (
        "command[0]: var.value.regoin: no variable 'regoin'; variables come from the keys of the ConfigMaps "
        "and Secrets listed in the DAG's spec.variablesFrom"
    )
    with pytest.raises(TemplateError, match="var.json.nope: no variable 'nope'"):
        render("{{ var.json.nope }}", ctx())


def test_variable_that_is_not_json():
    with pytest.raises(TemplateError) as info:
        render("{{ var.json.broken }}", ctx())
    assert "var.json.broken: variable 'broken' is not valid JSON: Expecting property name" in str(info.value)
    assert "{not json" not in str(info.value)  # a value may be secret: never quoted


# ----------------------------------------------------------------- connections
@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ conn.my_db.host }}", "db.example"),
        ("{{ conn.my_db.login }}", "etl@corp"),
        ("{{ conn.my_db.password }}", "p@ss/w0rd"),
        ("{{ conn.my_db.port }}", "5432"),
        ("{{ conn.my_db.port + 1 }}", "5433"),  # an int
        ("{{ conn.my_db.schema }}", "sales"),
        ("{{ conn.my_db.conn_type }}", "postgres"),
        ("{{ conn.my_db.extra_dejson.sslmode }}", "require"),
        ("{{ conn.my_db.extra_dejson['connect_timeout'] }}", "10"),
        ("{{ conn.my_db.get_uri() }}", CONNECTIONS["my_db"]),
        ("{{ conn.my_db }}", "my_db"),  # str() is the id, never the password
        ("{{ conn['my-api'].host }}", "api.example.com"),
        ("{{ conn['my-api'].port }}", "None"),
        ("{{ conn.get('nope') }}", "None"),
        ("{{ conn.get('my_db').schema }}", "sales"),
    ],
)
def test_connections(template, expected):
    assert render(template, ctx()) == expected


def test_missing_connection_says_where_connections_come_from():
    with pytest.raises(TemplateError) as info:
        render_fields([], [], {"DB": "{{ conn.my_dbb.host }}"}, ctx())
    assert str(info.value) == (
        "env.DB: conn.my_dbb: no connection 'my_dbb'; connections come from the keys of the Secrets listed in "
        "the DAG's spec.connectionsFrom (key: connection id, value: connection URI)"
    )


def test_bad_connection_uri_fails_only_when_used_and_hides_the_uri():
    assert render("{{ conn.my_db.host }}", ctx()) == "db.example"  # bad_port is not parsed
    with pytest.raises(TemplateError) as info:
        render("{{ conn.bad_port.host }}", ctx(), "args[1]")
    assert str(info.value).startswith("args[1]: conn.bad_port: connection 'bad_port': invalid connection URI: Port")
    assert "u:p@db" not in str(info.value)


# --------------------------------------------------------------------- sandbox
@pytest.mark.parametrize(
    "template",
    ["{{ ti._pull('extract', 'return_value') }}", "{{ var.value._variables }}", "{{ conn._uris }}",
     "{{ ti.xcom_pull.__self__ }}", "{{ ti.xcom_pull('extract').__class__.__mro__ }}"],
)
def test_sandbox_still_guards_private_attributes(template):
    with pytest.raises(TemplateError):
        render(template, ctx())


def test_a_template_changing_a_pulled_value_changes_no_stored_one():
    context = ctx()
    assert render("{% set x = ti.xcom_pull('extract') %}{{ x.update({'n': 4}) }}{{ x.n }}", context) == "None4"
    assert render("{{ ti.xcom_pull('extract').n }}", context) == "3"
    assert XCOMS[("extract", RETURN_KEY)]["n"] == 3

"""DAG manifests: what a user gets back for good and bad manifests."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import pytest

from kubedag.core.spec import DAGValidationError, parse_dag
from kubedag.core.spec.durations import format_duration, parse_duration
from kubedag.core.states import TriggerRule

BASE = {
    "apiVersion": "kubedag.io/v1alpha1",
    "kind": "DAG",
    "metadata": {"name": "etl"},
    "spec": {
        "schedule": "@daily",
        "startDate": "2026-11-01",
        "tasks": [
            {"name": "extract", "command": ["echo", "{{ ds }}"]},
            {"name": "transform", "command": ["true"], "dependsOn": ["extract"]},
            {"name": "load", "command": ["true"], "dependsOn": ["transform"]},
        ],
    },
}


def manifest(**spec_changes):
    m = copy.deepcopy(BASE)
    m["spec"].update(spec_changes)
    return m


def with_task(index, **changes):
    m = copy.deepcopy(BASE)
    m["spec"]["tasks"][index].update(changes)
    return m


def errors_of(obj) -> list[str]:
    with pytest.raises(DAGValidationError) as info:
        parse_dag(obj)
    return [str(e) for e in info.value.errors]


BAD = [
    ("dag name not DNS-1123", {**BASE, "metadata": {"name": "Supermarket_ETL"}},
     "metadata.name: 'Supermarket_ETL' is not a valid DNS-1123 label"),
    ("dag name too long", {**BASE, "metadata": {"name": "a" * 64}}, "metadata.name: '" + "a" * 64 + "' is not a valid DNS-1123 label"),
    ("task name with spaces", with_task(0, name="extract data"), "spec.tasks[0].name: 'extract data' is not a valid task name"),
    ("duplicate task", with_task(2, name="extract"), "spec.tasks[2].name: duplicate task name 'extract' (first at spec.tasks[0])"),
    ("unknown dependency", with_task(2, dependsOn=["transfrom"]), "spec.tasks[2].dependsOn[0]: unknown task 'transfrom'"),
    ("self dependency", with_task(0, dependsOn=["extract"]), "spec.tasks[0].dependsOn[0]: task 'extract' depends on itself"),
    ("cycle", with_task(0, dependsOn=["load"]), "spec.tasks: dependency cycle: extract -> transform -> load -> extract"),
    ("invalid cron", manifest(schedule="61 * * * *"), "spec.schedule: invalid cron expression '61 * * * *'"),
    ("six-field cron", manifest(schedule="0 0 * * * *"), "spec.schedule: invalid cron expression '0 0 * * * *'"),
    ("unknown preset", manifest(schedule="@fortnightly"), "spec.schedule: "),
    ("invalid timezone", manifest(timezone="Mars/Olympus"), "spec.timezone: unknown timezone 'Mars/Olympus'"),
    ("unparseable duration", manifest(defaults={"retryDelay": "5 minutes"}), "spec.defaults.retryDelay: invalid duration '5 minutes'"),
    ("duration wrong order", with_task(1, executionTimeout="30m1h"), "spec.tasks[1].executionTimeout: invalid duration '30m1h'"),
    ("unparseable date", manifest(startDate="2026-13-01"), "spec.startDate: invalid date '2026-13-01'"),
    ("end before start", manifest(endDate="2026-10-01"),
     "spec.endDate: endDate 2026-10-01T00:00:00+00:00 is before startDate 2026-11-01T00:00:00+00:00"),
    ("scheduled without start", manifest(startDate=None), "spec.startDate: required when spec.schedule is set"),
    ("jinja syntax in command", with_task(0, command=["echo", "{{ ds }"]), "spec.tasks[0].command[1]: template syntax error at line 1"),
    ("jinja syntax in args", with_task(1, args=["{% if %}"]), "spec.tasks[1].args[0]: template syntax error"),
    ("jinja syntax in env", with_task(1, env={"OUT": "{{ ds"}), "spec.tasks[1].env[0].value: template syntax error"),
    ("unknown spec field", manifest(schedule_interval="@daily"), "spec.schedule_interval: unknown field"),
    ("unknown task field", with_task(1, retry_delay="5m"), "spec.tasks[1].retry_delay: unknown field (fields are camelCase: did you mean 'retryDelay'?)"),
    ("unknown trigger rule", with_task(2, triggerRule="all_sucess"), "spec.tasks[2].triggerRule: Input should be"),
    ("negative retries", with_task(2, retries=-1), "spec.tasks[2].retries: Input should be greater than or equal to 0"),
    ("wrong kind", {**BASE, "kind": "Workflow"}, "kind: Input should be 'DAG', got 'Workflow'"),
    ("wrong apiVersion", {**BASE, "apiVersion": "kubedag.io/v1"}, "apiVersion: Input should be 'kubedag.io/v1alpha1'"),
    ("no tasks", manifest(tasks=[]), "spec.tasks: List should have at least 1 item"),
    ("missing task name", with_task(1, name=None), "spec.tasks[1].name: Input should be a valid string"),
    ("bad env name", with_task(1, env={"1BAD": "x"}), "spec.tasks[1].env[0].name: '1BAD' is not a valid environment variable name"),
    ("maxActiveRuns zero", manifest(maxActiveRuns=0), "spec.maxActiveRuns: Input should be greater than or equal to 1"),
]


@pytest.mark.parametrize(("case", "obj", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_manifest_is_rejected_with_field_path_and_problem(case, obj, expected):
    errors = errors_of(obj)
    assert any(e.startswith(expected) for e in errors), errors


def test_every_problem_is_reported_not_only_the_first():
    m = manifest(schedule="61 * * * *", timezone="Nowhere/City", bogus=True)
    m["spec"]["tasks"].append({"name": "extract", "command": ["x"]})
    m["spec"]["tasks"][1]["dependsOn"] = ["missing"]
    paths = {e.split(":")[0] for e in errors_of(m)}
    assert paths == {"spec.schedule", "spec.timezone", "spec.bogus", "spec.tasks[3].name", "spec.tasks[1].dependsOn[0]"}


def test_valid_manifest_resolves_defaults_and_topological_order():
    m = manifest(
        timezone="Asia/Seoul",
        defaults={"image": "python:3.12-slim", "retries": 2, "retryDelay": "3m", "env": {"A": "1", "B": "2"}},
    )
    m["spec"]["tasks"] = [
        {"name": "load", "command": ["true"], "dependsOn": ["transform"], "retries": 0, "env": [{"name": "B", "value": "task"}]},
        {"name": "extract", "command": ["true"], "image": "busybox"},
        {"name": "transform", "command": ["true"], "dependsOn": ["extract"], "triggerRule": "none_failed"},
    ]
    dag = parse_dag(m)
    assert list(dag.tasks) == ["extract", "transform", "load"]
    assert dag.tasks["load"].retries == 0 and dag.tasks["transform"].retries == 2
    assert dag.tasks["transform"].retry_delay == timedelta(minutes=3)
    assert dag.tasks["extract"].image == "busybox" and dag.tasks["load"].image == "python:3.12-slim"
    assert dict(dag.tasks["load"].env) == {"A": "1", "B": "task"}
    assert dag.tasks["transform"].trigger_rule is TriggerRule.NONE_FAILED
    assert dag.leaves == ("load",)
    # a naive date is read in the DAG's timezone (Seoul is UTC+9)
    assert dag.start_date == datetime(2026, 10, 31, 15, 0, tzinfo=timezone.utc)


def test_airflow_defaults_apply_when_nothing_is_set():
    dag = parse_dag(manifest(schedule=None, startDate=None))
    task = dag.tasks["extract"]
    assert (task.retries, task.retry_delay, task.retry_exponential_backoff, task.execution_timeout) == (
        0, timedelta(seconds=300), False, None)
    assert (dag.catchup, dag.max_active_runs, dag.max_active_tasks, dag.schedule) == (True, 16, 16, None)


def test_kubernetes_metadata_and_status_from_the_api_are_accepted():
    m = copy.deepcopy(BASE)
    m["metadata"].update({"uid": "123", "resourceVersion": "7", "namespace": "data"})
    m["status"] = {"conditions": []}
    assert parse_dag(m).namespace == "data"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", timedelta(seconds=30)), ("5m", timedelta(minutes=5)), ("1h30m", timedelta(minutes=90)),
     ("2d", timedelta(days=2)), ("1w1d", timedelta(days=8)), ("250ms", timedelta(milliseconds=250)), (45, timedelta(seconds=45))],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("text", ["", "5", "m5", "1.5h", "5 m", "1h1h", "-3s", "3x"])
def test_bad_durations_name_the_value(text):
    if text == "5":  # a bare number is seconds, as Airflow's retry_delay
        assert parse_duration(text) == timedelta(seconds=5)
        return
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)

"""Airflow's names in a manifest: unknown fields suggest only fields that exist, Airflow's ``owner``, ``email``,
``tags`` and ``description`` are accepted, ``kind: empty`` tasks, and a task without a command is an error naming
the field."""

from __future__ import annotations

import copy

import pytest

from kubedag.core.spec import DAGValidationError, parse_dag

BASE = {
    "apiVersion": "kubedag.io/v1alpha1",
    "kind": "DAG",
    "metadata": {"name": "etl"},
    "spec": {"tasks": [{"name": "extract", "command": ["true"]}, {"name": "load", "command": ["true"],
                                                                  "dependsOn": ["extract"]}]},
}


def manifest(spec: dict | None = None, task: dict | None = None, drop: tuple[str, ...] = ()) -> dict:
    m = copy.deepcopy(BASE)
    m["spec"].update(spec or {})
    m["spec"]["tasks"][0].update(task or {})
    for key in drop:
        m["spec"]["tasks"][0].pop(key)
    return m


def errors_of(obj: dict) -> list[str]:
    with pytest.raises(DAGValidationError) as info:
        parse_dag(obj)
    return [str(e) for e in info.value.errors]


@pytest.mark.parametrize(("obj", "expected"), [
    # Airflow's DAG argument: the field playing its part, never the made-up camelCase 'scheduleInterval'
    (manifest({"schedule_interval": "@daily"}), "spec.schedule_interval: unknown field (did you mean 'schedule'?)"),
    (manifest({"scheduleInterval": "@daily"}), "spec.scheduleInterval: unknown field (did you mean 'schedule'?)"),
    (manifest({"default_args": {}}), "spec.default_args: unknown field (did you mean 'defaults'?)"),
    (manifest({"concurrency": 4}), "spec.concurrency: unknown field (did you mean 'maxActiveTasks'?)"),
    (manifest(task={"bash_command": "x"}), "spec.tasks[0].bash_command: unknown field (did you mean 'command'?)"),
    (manifest(task={"task_id": "x"}), "spec.tasks[0].task_id: unknown field (did you mean 'name'?)"),
    (manifest(task={"retires": 2}), "spec.tasks[0].retires: unknown field (did you mean 'retries'?)"),
    (manifest(task={"retry_delay": "1m"}),
     "spec.tasks[0].retry_delay: unknown field (fields are camelCase: did you mean 'retryDelay'?)"),
    (manifest({"defaults": {"emails": "a@example.com"}}), "spec.defaults.emails: unknown field (did you mean 'email'?)"),
])
def test_unknown_field_suggests_a_field_that_exists_there(obj, expected):
    assert errors_of(obj) == [expected]


@pytest.mark.parametrize("obj", [
    manifest({"depends_on_past": True}),  # an Airflow argument kubedag has no field for
    manifest(task={"foo": 1}),
    manifest(task={"schedule_interval": "@daily"}),  # 'schedule' exists on the DAG, not on a task
])
def test_unknown_field_without_a_likely_match_gets_no_hint(obj):
    (error,) = errors_of(obj)
    assert error.endswith(": unknown field")


def test_description_tags_owner_and_email_are_kept_on_the_dag():
    dag = parse_dag(manifest({"description": "Loads the shop's sales", "tags": ["sales", "daily"],
                              "owner": "data-team", "email": "data@example.com"}))
    assert dag.description == "Loads the shop's sales"
    assert dag.tags == ("sales", "daily")
    assert dag.owner == "data-team"
    assert dag.email == ("data@example.com",)
    assert {t.owner for t in dag.tasks.values()} == {"data-team"}


def test_owner_and_email_inherit_through_defaults_and_a_task_may_set_its_own():
    dag = parse_dag(manifest({"defaults": {"owner": "ops", "email": ["a@example.com", "b@example.com"]}},
                             task={"owner": "alice"}))
    assert (dag.tasks["extract"].owner, dag.tasks["load"].owner) == ("alice", "ops")
    assert dag.owner == "alice, ops"  # Airflow's DAG.owner: the tasks' owners joined
    assert dag.email == ("a@example.com", "b@example.com")
    assert dag.tasks["load"].email == ("a@example.com", "b@example.com")


def test_a_dag_without_them_has_none():
    dag = parse_dag(manifest())
    assert (dag.description, dag.tags, dag.owner, dag.email) == (None, (), None, ())


def test_a_tag_longer_than_airflows_limit_is_rejected():
    (error,) = errors_of(manifest({"tags": ["x" * 101]}))
    assert error.startswith("spec.tags[0]: String should have at most 100 characters")


def test_a_task_without_a_command_is_an_error_naming_the_field():
    assert errors_of(manifest(drop=("command",))) == [
        "spec.tasks[0].command: required: the command the task runs (or kind: empty for a task that does nothing, "
        "as Airflow's EmptyOperator)"]


def test_built_in_sensors_and_triggers_need_no_command():
    dag = parse_dag(manifest(task={"sensor": {"file": {"path": "/tmp/x"}}}, drop=("command",)))
    assert dag.tasks["extract"].command == ()
    dag = parse_dag(manifest(task={"trigger": {"dag": "other"}}, drop=("command",)))
    assert dag.tasks["extract"].trigger is not None


def test_kind_empty_needs_no_command_and_takes_none():
    dag = parse_dag(manifest(task={"kind": "empty"}, drop=("command",)))
    assert dag.tasks["extract"].empty and not dag.tasks["load"].empty
    assert errors_of(manifest(task={"kind": "empty"})) == [
        "spec.tasks[0]: a kind: empty task does nothing: remove command"]
    assert errors_of(manifest(task={"kind": "python"}, drop=("command",)))[0].startswith("spec.tasks[0].kind: ")

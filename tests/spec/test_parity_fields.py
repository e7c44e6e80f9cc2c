"""Manifest validation of the Airflow-parity fields: every problem reported with its field path."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kubedag.core.spec.dag import DEFAULT_POOL
from kubedag.core.spec.loader import DAGValidationError, parse_dag


def manifest(*tasks, **spec):
    return {"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "etl"},
            "spec": {"tasks": list(tasks), **spec}}


def errors(obj) -> dict[str, str]:
    with pytest.raises(DAGValidationError) as info:
        parse_dag(obj)
    return {e.path: e.message for e in info.value.errors}


def test_parity_fields_resolve_with_airflow_defaults():
    dag = parse_dag(manifest(
        {"name": "wait", "sensor": {"mode": "reschedule", "file": {"path": "/d/{{ ds }}/*.csv", "marker": "_SUCCESS"}}},
        {"name": "kick", "dependsOn": ["wait"], "trigger": {"dag": "other", "conf": {"day": "{{ ds }}"}}},
        {"name": "pick", "branch": True, "command": ["true"], "pool": "db", "poolSlots": 2},
        {"name": "a", "dependsOn": ["pick"], "command": ["true"]},
        dagrunTimeout="1h", defaults={"sla": "30m", "priorityWeight": 3,
                                       "onFailure": [{"webhook": {"url": "http://127.0.0.1:9/x"}}]},
        variablesFrom=[{"configMapRef": {"name": "settings"}}], connectionsFrom=[{"secretRef": {"name": "conns"}}],
    ))
    wait, kick, pick = dag.tasks["wait"], dag.tasks["kick"], dag.tasks["pick"]
    assert wait.sensor.timeout == timedelta(days=7) and wait.sensor.poke_interval == timedelta(seconds=60)
    assert wait.sensor.builtin == "file" and not wait.runs_in_controller
    assert kick.runs_in_controller and kick.trigger.dag == "other"
    assert (pick.pool, pick.pool_slots, wait.pool, wait.pool_slots) == ("db", 2, DEFAULT_POOL, 1)
    assert wait.sla == timedelta(minutes=30) and wait.priority_weight == 3 and len(wait.on_failure) == 1
    assert dag.dagrun_timeout == timedelta(hours=1)
    assert dag.variables_from == ({"configMapRef": {"name": "settings"}},)
    assert dag.connections_from == ({"secretRef": {"name": "conns"}},)


def test_invalid_parity_fields_name_each_problem():
    found = errors(manifest(
        {"name": "both", "sensor": {"file": {"path": "/x"}, "http": {"url": "http://h"}}},
        {"name": "cmd", "command": ["true"], "trigger": {"dag": "other"}},
        {"name": "hook", "command": ["true"], "onFailure": [{}]},
        {"name": "mode", "command": ["true"], "sensor": {"mode": "sleep"}},
        {"name": "slots", "command": ["true"], "poolSlots": 0},
    ))
    assert "set only one of file, http, externalTask" in found["spec.tasks[0].sensor"]
    assert "remove command and args" in found["spec.tasks[1]"]
    assert "set one of slack, webhook" in found["spec.tasks[2].onFailure[0]"]
    assert "spec.tasks[3].sensor.mode" in found
    assert "spec.tasks[4].poolSlots" in found


def test_sensor_checks_across_fields():
    found = errors(manifest(
        {"name": "ext", "sensor": {"externalTask": {"dag": "other", "allowedStates": ["upstream_failed"]}}},
        {"name": "web", "sensor": {"http": {"url": "http://h", "expectedValue": 1}}},
    ))
    assert "'upstream_failed' is not a DAG run state" in found["spec.tasks[0].sensor.externalTask.allowedStates[0]"]
    assert "needs sensor.http.jsonPath" in found["spec.tasks[1].sensor.http.expectedValue"]

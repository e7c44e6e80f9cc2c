"""DAG manifests against the DAG CRD's openAPIV3Schema (validated as the API server would, see
:mod:`tests.crds.k8s_schema`), and the same manifests against the pydantic models: the CRD must accept
every manifest the controller accepts, and reject the plainly wrong ones before the controller sees them."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from kubedag.core.spec import DAGValidationError, parse_dag
from tests.crds.conftest import REPO
from tests.crds.k8s_schema import errors, load

BASE = {
    "apiVersion": "kubedag.io/v1alpha1",
    "kind": "DAG",
    "metadata": {"name": "etl", "namespace": "data", "labels": {"team": "analytics"}},
    "spec": {"tasks": [{"name": "extract", "command": ["echo", "{{ ds }}"]}]},
}


def dag(spec: dict | None = None, task: dict | None = None, **meta) -> dict:
    m = copy.deepcopy(BASE)
    m["metadata"].update(meta)
    m["spec"].update(spec or {})
    if task:
        m["spec"]["tasks"][0].update(task)
    return m


def readme_manifest() -> dict:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n(apiVersion: kubedag.io/v1alpha1\nkind: DAG\n.*?)```", text, re.S)
    assert block, "README.md has no DAG manifest example"
    return load(block.group(1))


VALID = {
    "minimal, manual only": dag(),
    "every spec field": dag({
        "description": "Daily ETL", "schedule": "0 16 * * *", "timezone": "Europe/Amsterdam",
        "startDate": "2026-11-01", "endDate": "2026-12-31T23:59:59Z", "catchup": False, "paused": True,
        "maxActiveRuns": 1, "maxActiveTasks": 4, "tags": ["etl", "daily"],
        "params": {"root": "out", "nested": {"list": [1, 2.5, None, True]}},
        "defaults": {"image": "python:3.12", "retries": 3, "retryDelay": "1m30s", "retryExponentialBackoff": True,
                     "maxRetryDelay": "1h", "executionTimeout": 600, "env": {"A": "1"}},
    }),
    "null schedule and dates": dag({"schedule": None, "startDate": None, "endDate": None}),
    "preset schedule": dag({"schedule": "@daily", "startDate": "2026-11-01T00:00:00+01:00"}),
    "env as a mapping": dag(task={"env": {"TARGET": "raw/{{ ds_nodash }}", "N": 3, "EMPTY": None}}),
    "env as Kubernetes' list": dag(task={"env": [{"name": "TARGET", "value": "x"}, {"name": "ONLY_NAME"}]}),
    "resources, numbers and strings": dag(task={"resources": {"requests": {"cpu": 0.5, "memory": "1Gi"},
                                                               "limits": {"cpu": 2, "nvidia.com/gpu": "1"}}}),
    "durations as seconds": dag(task={"retryDelay": 30, "maxRetryDelay": "30", "executionTimeout": "2d"}),
    "durations as null": dag(task={"retryDelay": None, "retries": None, "image": None}),
    "task with everything": dag(task={
        "image": "busybox", "args": ["-c", "{{ params.x | default('y') }}"], "retries": 0,
        "triggerRule": "none_failed_min_one_success", "name": "Extract.v2-raw_data",
    }),
    "63-character name": dag(name="a" * 63),
    "many tasks": dag({"tasks": [{"name": f"t{i}", "command": ["true"], "dependsOn": [f"t{i - 1}"] if i else []} for i in range(50)]}),
}


@pytest.mark.parametrize("name", VALID)
def test_valid_manifests(name, dag_crd):
    manifest = VALID[name]
    assert errors(manifest, dag_crd) == []
    parse_dag(manifest)  # and the controller agrees


@pytest.mark.parametrize("trigger_rule", [
    "all_success", "all_failed", "all_done", "all_skipped", "one_success", "one_failed", "one_done",
    "none_failed", "none_failed_min_one_success", "none_skipped", "always",
])
def test_every_trigger_rule(trigger_rule, dag_crd):
    assert errors(dag(task={"triggerRule": trigger_rule}), dag_crd) == []


def test_supermarket_example(dag_crd):
    manifest = load((REPO / "examples/supermarket/dag.yaml").read_text())
    assert errors(manifest, dag_crd) == []
    assert len(manifest["spec"]["tasks"]) == 10
    parse_dag(manifest)


def test_readme_example(dag_crd):
    manifest = readme_manifest()
    assert errors(manifest, dag_crd) == []
    parse_dag(manifest)


def test_every_example_manifest(dag_crd):
    """Any DAG manifest under examples/ (there may be more than the supermarket)."""
    found = 0
    for path in sorted(Path(REPO / "examples").rglob("*.yaml")):
        manifest = load(path.read_text())
        if isinstance(manifest, dict) and manifest.get("kind") == "DAG":
            found += 1
            assert errors(manifest, dag_crd) == [], path
    assert found >= 1


INVALID = [
    # (name, manifest, path of the error, words in the message)
    ("wrong type: maxActiveRuns", dag({"maxActiveRuns": "three"}), "spec.maxActiveRuns", "is not of type 'integer'"),
    ("wrong type: catchup", dag({"catchup": "perhaps"}), "spec.catchup", "is not of type 'boolean'"),
    ("wrong type: command", dag(task={"command": "echo hi"}), "spec.tasks.0.command", "is not of type 'array'"),
    ("wrong type: params", dag({"params": ["a"]}), "spec.params", "is not of type 'object'"),
    ("bad triggerRule", dag(task={"triggerRule": "all_sucess"}), "spec.tasks.0.triggerRule", "is not one of"),
    ("negative retries", dag(task={"retries": -1}), "spec.tasks.0.retries", "less than the minimum of 0"),
    ("negative default retries", dag({"defaults": {"retries": -2}}), "spec.defaults.retries", "less than the minimum"),
    ("maxActiveTasks zero", dag({"maxActiveTasks": 0}), "spec.maxActiveTasks", "less than the minimum of 1"),
    ("no tasks", dag({"tasks": []}), "spec.tasks", "should be non-empty"),
    ("tasks missing", {**BASE, "spec": {"schedule": "@daily"}}, "spec", "'tasks' is a required property"),
    ("spec missing", {k: v for k, v in BASE.items() if k != "spec"}, "", "'spec' is a required property"),
    ("task without name", dag({"tasks": [{"command": ["true"]}]}), "spec.tasks.0", "'name' is a required property"),
    ("task name with a space", dag(task={"name": "extract data"}), "spec.tasks.0.name", "does not match"),
    ("task name too long", dag(task={"name": "t" * 64}), "spec.tasks.0.name", "is too long"),
    ("DAG name not DNS-1123", dag(name="Supermarket_ETL"), "metadata.name", "does not match"),
    ("DAG name too long", dag(name="a" * 64), "metadata.name", "is too long"),
    ("duration as a boolean", dag(task={"retryDelay": True}), "spec.tasks.0.retryDelay", "is not of type"),
    ("date as a number", dag({"startDate": 20261101}), "spec.startDate", "is not of type 'string'"),
    ("unknown task field (kubectl --validate=strict)", dag(task={"retry": 3}), "spec.tasks.0", "'retry' was unexpected"),
    ("unknown spec field", dag({"schedule_interval": "@daily"}), "spec", "'schedule_interval' was unexpected"),
]


@pytest.mark.parametrize("name, manifest, path, message", INVALID, ids=[case[0] for case in INVALID])
def test_invalid_manifests_are_rejected(name, manifest, path, message, dag_crd):
    problems = errors(manifest, dag_crd)
    assert any(p.startswith(f"{path}: ") and message in p for p in problems), problems
    with pytest.raises(DAGValidationError):  # the controller rejects them too
        parse_dag(manifest)


def test_unknown_fields_are_pruned_not_rejected_without_strict_validation(dag_crd):
    assert errors(dag(task={"retry": 3}), dag_crd, strict=False) == []


def test_scalars_are_typed_alike_by_the_crd_and_the_models(dag_crd):
    """``"3"`` is not 3 and ``"yes"`` is not true for the API server nor for kubedag's own validation."""
    for manifest in (dag({"maxActiveRuns": "3"}), dag({"catchup": "yes"}), dag(task={"retries": "2"})):
        assert errors(manifest, dag_crd) != []
        with pytest.raises(DAGValidationError):
            parse_dag(manifest)


def test_float_durations_are_rejected_by_both(dag_crd):
    """Durations are int-or-string in the CRD, so a bare float must be quoted: ``retryDelay: "1.5"``."""
    assert errors(dag(task={"retryDelay": "1.5"}), dag_crd) == []
    parse_dag(dag(task={"retryDelay": "1.5"}))
    assert errors(dag(task={"retryDelay": 1.5}), dag_crd) != []
    with pytest.raises(DAGValidationError, match="whole seconds"):
        parse_dag(dag(task={"retryDelay": 1.5}))


def test_what_only_the_controller_checks(dag_crd):
    """Cross-field and semantic checks stay in the controller (kubedag.core.spec.loader): the CRD lets them by."""
    for manifest in (
        dag({"schedule": "61 * * * *"}),
        dag({"timezone": "Mars/Olympus"}),
        dag(task={"dependsOn": ["nope"]}),
        dag(task={"command": ["{{ ds "]}),
        dag(task={"retryDelay": "5 minutes"}),
    ):
        assert errors(manifest, dag_crd) == []
        with pytest.raises(DAGValidationError):
            parse_dag(manifest)

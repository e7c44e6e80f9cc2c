"""DAGRun manifests: the pydantic model (kubedag.core.spec.dagrun) and the DAGRun CRD agree on them."""

from __future__ import annotations

from datetime import datetime, timezone

import pydantic
import pytest

from kubedag.core import timetable
from kubedag.core.spec.dagrun import DAGRunManifest, DAGRunSpec, DAGStatus, TaskEntry, pod_prefix
from kubedag.core.states import RunType, TaskInstanceState
from tests.crds.conftest import REPO
from tests.crds.k8s_schema import errors, load

MINIMAL = """
apiVersion: kubedag.io/v1alpha1
kind: DAGRun
metadata:
  name: supermarket-promotions-manual-1
spec:
  dagName: supermarket-promotions
"""


def run(spec: dict, **metadata) -> dict:
    return {
        "apiVersion": "kubedag.io/v1alpha1", "kind": "DAGRun",
        "metadata": metadata or {"name": "etl-run-1"}, "spec": spec,
    }


def test_minimal_hand_written_run(dagrun_crd):
    manifest = load(MINIMAL)
    assert errors(manifest, dagrun_crd) == []
    parsed = DAGRunManifest.model_validate(manifest)
    assert parsed.spec == DAGRunSpec.model_validate({"dagName": "supermarket-promotions"})
    spec = parsed.spec
    assert (spec.run_id, spec.run_type, spec.logical_date, spec.data_interval_start, spec.conf) == (None, None, None, None, {})
    assert parsed.status is None


VALID = {
    "generateName instead of a name": run({"dagName": "etl"}, generateName="etl-manual-"),
    "conf and a date": run({"dagName": "etl", "conf": {"data_root": "/tmp", "n": [1, {"x": None}]},
                            "logicalDate": "2026-11-01"}),
    "a naive date-time": run({"dagName": "etl", "logicalDate": "2026-11-01T16:00:00"}),
    "as the controller writes it": run({
        "dagName": "etl", "runType": "scheduled",
        "runId": timetable.run_id("scheduled", datetime(2026, 11, 1, 16, tzinfo=timezone.utc)),
        "logicalDate": "2026-11-01T16:00:00Z",
        "dataIntervalStart": "2026-11-01T16:00:00Z", "dataIntervalEnd": "2026-11-02T16:00:00Z",
    }),
    "backfill with nulls": run({"dagName": "etl", "runType": "backfill", "logicalDate": "2026-11-01",
                                "runId": None, "dataIntervalStart": None, "dataIntervalEnd": None}),
    "a null runType (pruned by the API server)": run({"dagName": "etl", "runType": None}),
}


@pytest.mark.parametrize("name", VALID)
def test_valid_runs(name, dagrun_crd):
    assert errors(VALID[name], dagrun_crd) == []
    DAGRunManifest.model_validate(VALID[name])


def test_controller_written_run_id_matches_the_pattern():
    spec = DAGRunManifest.model_validate(VALID["as the controller writes it"]).spec
    assert spec.run_id == "scheduled__2026-11-01T16:00:00+00:00" and spec.run_type is RunType.SCHEDULED
    assert spec.logical_date == datetime(2026, 11, 1, 16, tzinfo=timezone.utc)


INVALID = [
    ("no dagName", run({"conf": {}}), "spec", "'dagName' is a required property"),
    ("no spec", {k: v for k, v in run({}).items() if k != "spec"}, "", "'spec' is a required property"),
    ("dagName not a DNS label", run({"dagName": "Supermarket_ETL"}), "spec.dagName", "does not match"),
    ("bad runType", run({"dagName": "etl", "runType": "triggered"}), "spec.runType", "is not one of"),
    ("conf not an object", run({"dagName": "etl", "conf": "x=1"}), "spec.conf", "is not of type 'object'"),
    ("runId with a space", run({"dagName": "etl", "runId": "my run"}), "spec.runId", "does not match"),
    ("runId too long", run({"dagName": "etl", "runId": "r" * 251}), "spec.runId", "is too long"),
    ("date not a string", run({"dagName": "etl", "logicalDate": 20261101}), "spec.logicalDate", "is not of type"),
    ("unknown spec field", run({"dagName": "etl", "dag_id": "etl"}), "spec", "'dag_id' was unexpected"),
]


@pytest.mark.parametrize("name, manifest, path, message", INVALID, ids=[case[0] for case in INVALID])
def test_invalid_runs_are_rejected(name, manifest, path, message, dagrun_crd):
    problems = errors(manifest, dagrun_crd)
    assert any(p.startswith(f"{path}: ") and message in p for p in problems), problems
    with pytest.raises(pydantic.ValidationError):
        DAGRunManifest.model_validate(manifest)


@pytest.mark.parametrize("spec, message", [
    ({"dagName": "etl", "dataIntervalStart": "2026-11-01"}, "must be given together"),
    ({"dagName": "etl", "dataIntervalStart": "2026-11-02", "dataIntervalEnd": "2026-11-01"}, "is before"),
    ({"dagName": "etl", "runType": "backfill"}, "a backfill run needs a logicalDate"),
    ({"dagName": "etl", "logicalDate": "yesterday"}, "invalid date 'yesterday'"),
])
def test_what_only_the_model_checks(spec, message, dagrun_crd):
    assert errors(run(spec), dagrun_crd) == []
    with pytest.raises(pydantic.ValidationError, match=message):
        DAGRunSpec.model_validate(spec)


def test_mixed_naive_and_aware_interval_is_left_to_the_controller():
    DAGRunSpec.model_validate({"dagName": "etl", "dataIntervalStart": "2026-11-01", "dataIntervalEnd": "2026-11-01T00:00:00Z"})


def test_spec_is_strict_and_camel_case():
    with pytest.raises(pydantic.ValidationError, match="dag_name"):
        DAGRunSpec.model_validate({"dag_name": "etl"})
    dumped = DAGRunSpec.model_validate({"dagName": "etl", "runType": "manual"}).model_dump(by_alias=True, mode="json")
    assert dumped == {"dagName": "etl", "runId": None, "runType": "manual", "logicalDate": None,
                      "dataIntervalStart": None, "dataIntervalEnd": None, "conf": {}, "actions": []}


def test_pod_names():
    assert pod_prefix("etl-run-1", "Copy_To.Raw", 2) == "etl-run-1-copy-to-raw-2-"
    long = pod_prefix("supermarket-promotions-with-a-very-long-dag-name", "copy_to_raw_supermarket_1", 12)
    assert len(long) <= 58 and long.startswith("supermarket-promotions-with-a-very-long-dag-name-copy")
    assert long.endswith("-12-")  # the try number is never cut off
    entry = TaskEntry(s=TaskInstanceState.RUNNING, t=2, p="x7k2q")
    assert entry.pod_name("etl-run-1", "extract") == "etl-run-1-extract-2-x7k2q"
    assert TaskEntry(s=TaskInstanceState.SCHEDULED, t=1).pod_name("etl-run-1", "extract") is None


def test_dag_status_model_and_schema(dag_crd):
    status = {
        "observedGeneration": 3,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Scheduled", "message": "",
                        "lastTransitionTime": "2026-11-01T15:00:00Z", "observedGeneration": 3}],
        "nextRunAt": "2026-11-02T16:00:00Z",
        "lastRun": {"runId": "scheduled__2026-11-01T16:00:00+00:00", "phase": "success",
                    "logicalDate": "2026-11-01T16:00:00Z"},
        "paused": False,
    }
    parsed = DAGStatus.model_validate(status)
    assert parsed.to_k8s() == status
    manifest = load((REPO / "examples/supermarket/dag.yaml").read_text())
    assert errors({**manifest, "status": parsed.to_k8s()}, dag_crd) == []
    assert errors({**manifest, "status": {**status, "paused": "no"}}, dag_crd) != []


def test_status_ignores_unknown_fields_but_checks_known_ones():
    assert DAGStatus.model_validate({"paused": True, "fromANewerController": 1}).paused is True
    with pytest.raises(pydantic.ValidationError):
        DAGStatus.model_validate({"conditions": [{"type": "Ready", "status": "Maybe", "reason": "X",
                                                  "lastTransitionTime": "2026-11-01T00:00:00Z"}]})
    with pytest.raises(pydantic.ValidationError):  # status times must be instants
        DAGStatus.model_validate({"nextRunAt": "2026-11-01T16:00:00"})

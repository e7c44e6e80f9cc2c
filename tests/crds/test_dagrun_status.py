"""The DAGRun status the controller writes: its shape, that the CRD keeps all of it, and its size for a
5,000-task run against etcd's 1.5 MiB object limit (the design is in kubedag.core.spec.dagrun's docstring)."""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone
from typing import Any

import pytest

from kubedag.core.spec.dagrun import Condition, DAGRunStatus, TaskCounts, TaskEntry, reason_length
from kubedag.core.states import DagRunState, TaskInstanceState as S
from tests.crds.k8s_schema import errors

ETCD_LIMIT = 1536 * 1024  # etcd's default --max-request-bytes, 1.5 MiB
TASKS = 5000
RUN_NAME = "supermarket-promotions-scheduled-20261101t160000-x7k2q"
VERBS = ["extract", "transform", "load", "validate", "aggregate", "publish", "copy_to_raw", "process"]
ENTITIES = ["customer_orders", "supermarket_deliveries", "inventory_snapshots", "payment_events", "store_footfall"]
SUFFIX = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' generateName alphabet (no vowels, no 0/1/3)


def realistic_ids() -> list[str]:
    """Task ids like ``copy_to_raw_supermarket_deliveries_0042``: 24 to 39 characters, 30.5 on average."""
    return [f"{VERBS[i % 8]}_{ENTITIES[i // 8 % 5]}_{i:04d}" for i in range(TASKS)]


def longest_ids() -> list[str]:
    """The worst case: every id at the 63-character limit."""
    return [f"{'x' * 58}_{i:04d}" for i in range(TASKS)]


def finished_run(ids: list[str], max_try: int = 3) -> DAGRunStatus:
    """A failed run at its end: 90% success at the first try, 5% after a retry, 2% failed after
    ``max_try`` tries, 3% upstream_failed (never tried, no pod)."""
    rng = random.Random(7)
    tasks: dict[str, TaskEntry] = {}
    for task_id in ids:
        r = rng.random()
        pod = "".join(rng.choices(SUFFIX, k=5))
        if r < 0.90:
            tasks[task_id] = TaskEntry(s=S.SUCCESS, t=1, p=pod)
        elif r < 0.95:
            tasks[task_id] = TaskEntry(s=S.SUCCESS, t=2, p=pod)
        elif r < 0.97:
            tasks[task_id] = TaskEntry(s=S.FAILED, t=max_try, p=pod)
        else:
            tasks[task_id] = TaskEntry(s=S.UPSTREAM_FAILED, t=0)
    counts: dict[str, int] = {}
    for entry in tasks.values():
        counts[entry.s.value] = counts.get(entry.s.value, 0) + 1
    at = datetime(2026, 11, 2, 16, 0, 5, tzinfo=timezone.utc)
    return DAGRunStatus(
        phase=DagRunState.FAILED,
        startedAt=datetime(2026, 11, 2, 16, 0, 1, tzinfo=timezone.utc),
        finishedAt=datetime(2026, 11, 2, 19, 42, 17, tzinfo=timezone.utc),
        observedGeneration=1,
        conditions=[Condition(type="Succeeded", status="False", reason="TasksFailed", lastTransitionTime=at,
                              message=f"{counts['failed']} tasks failed", observedGeneration=1)],
        counts=TaskCounts.model_validate(counts),
        tasks=tasks,
    )


def whole_object(status: DAGRunStatus) -> dict[str, Any]:
    """The DAGRun as etcd stores it: metadata (managedFields with the atomic ``tasks``), spec, status."""
    return {
        "apiVersion": "kubedag.io/v1alpha1", "kind": "DAGRun",
        "metadata": {
            "name": RUN_NAME, "namespace": "data-pipelines", "uid": "8f7d1c2e-5b4a-4e0f-9a3b-2c1d0e9f8a7b",
            "resourceVersion": "123456789", "generation": 1, "creationTimestamp": "2026-11-02T16:00:00Z",
            "labels": {"kubedag.io/dag": "supermarket-promotions"},
            "ownerReferences": [{"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "name": "supermarket-promotions",
                                 "uid": "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9", "controller": True}],
            "managedFields": [{
                "manager": "kubedag-controller", "operation": "Update", "subresource": "status",
                "apiVersion": "kubedag.io/v1alpha1", "time": "2026-11-02T19:42:17Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": {".": {}, **{f"f:{k}": {} for k in status.to_k8s()}}},
            }],
        },
        "spec": {"dagName": "supermarket-promotions", "runType": "scheduled",
                 "runId": "scheduled__2026-11-02T16:00:00+00:00", "logicalDate": "2026-11-02T16:00:00Z",
                 "dataIntervalStart": "2026-11-02T16:00:00Z", "dataIntervalEnd": "2026-11-03T16:00:00Z", "conf": {}},
        "status": status.to_k8s(),
    }


def size(obj: Any) -> int:
    """Bytes of compact JSON, the encoding the API server stores custom resources in."""
    return len(json.dumps(obj, separators=(",", ":")).encode())


@pytest.fixture(scope="module")
def realistic() -> DAGRunStatus:
    return finished_run(realistic_ids())


def test_status_size_of_a_5000_task_run(realistic, record_property):
    ids = realistic_ids()
    assert len(set(ids)) == TASKS and 29 <= sum(map(len, ids)) / TASKS <= 31
    status_bytes = size(realistic.to_k8s())
    object_bytes = size(whole_object(realistic))
    record_property("status_bytes", status_bytes)
    print(f"\n5,000-task DAGRun status: {status_bytes:,} bytes; whole object {object_bytes:,} bytes "
          f"({object_bytes / ETCD_LIMIT:.1%} of etcd's 1.5 MiB)")
    assert 300_000 < status_bytes < 340_000  # ~67 bytes a task: 337,525 when written
    assert object_bytes < ETCD_LIMIT / 4


def test_status_size_worst_case_names():
    """63-character ids and two-digit try numbers everywhere still leave most of etcd's limit."""
    status = finished_run(longest_ids(), max_try=10)
    status_bytes = size(status.to_k8s())
    print(f"\n5,000 tasks with 63-character ids: {status_bytes:,} bytes")
    assert size(whole_object(status)) < ETCD_LIMIT / 3


def test_status_size_every_task_failed_with_a_reason(dagrun_crd):
    """The worst case for reasons: 5,000 failed tasks with 63-character ids, each with a long reason (cut to its
    share of the reasons budget, 64 characters): 855,462 bytes when written; the CRD keeps ``r``."""
    length = reason_length(TASKS)
    tasks = {task_id: TaskEntry(s=S.FAILED, t=10, p="x7k2q", r="r" * length) for task_id in longest_ids()}
    status = finished_run(longest_ids(), max_try=10).model_copy(update={"tasks": tasks})
    status_bytes = size(status.to_k8s())
    print(f"\n5,000 failed tasks, 63-character ids, {length}-character reasons: {status_bytes:,} bytes")
    assert errors(whole_object(status), dagrun_crd) == []
    assert size(whole_object(status)) < ETCD_LIMIT * 0.6

def test_status_survives_the_crd_and_round_trips(realistic, dagrun_crd):
    """Strict validation: every field the controller writes is in the schema, so none is pruned."""
    status = realistic.to_k8s()
    assert errors(whole_object(realistic), dagrun_crd) == []
    assert DAGRunStatus.model_validate(status) == realistic
    first = next(iter(status["tasks"].values()))
    assert set(first) == {"s", "t", "p"}
    assert set(status) == {"phase", "startedAt", "finishedAt", "observedGeneration", "conditions", "counts", "tasks"}
    assert status["startedAt"] == "2026-11-02T16:00:01Z"


def test_entry_shape():
    assert TaskEntry(s=S.QUEUED, t=1).to_k8s() == {"s": "queued", "t": 1}
    assert TaskEntry(s=S.RUNNING, t=1, p="x7k2q").to_k8s() == {"s": "running", "t": 1, "p": "x7k2q"}
    assert TaskEntry.model_validate({"s": "up_for_retry", "t": 2}).s is S.UP_FOR_RETRY


def test_counts_are_keyed_by_every_state():
    assert [f.alias for f in TaskCounts.model_fields.values()] == [s.value for s in S]
    assert TaskCounts(up_for_retry=2).to_k8s()["up_for_retry"] == 2


@pytest.mark.parametrize("bad", [
    {"tasks": {"a": {"s": "succeeded"}}},
    {"tasks": {"a": {"s": "success", "t": -1}}},
    {"tasks": {"a": {"s": "success", "p": "toolong"}}},
    {"tasks": {"a": {"s": "failed", "t": 1, "r": "x" * 201}}},
    {"counts": {"success": -1}},
    {"phase": "done"},
])
def test_bad_status_rejected_by_model_and_crd(bad, dagrun_crd):
    obj = {"apiVersion": "kubedag.io/v1alpha1", "kind": "DAGRun", "metadata": {"name": "r"},
           "spec": {"dagName": "etl"}, "status": bad}
    assert errors(obj, dagrun_crd) != []
    with pytest.raises(ValueError):
        DAGRunStatus.model_validate(bad)

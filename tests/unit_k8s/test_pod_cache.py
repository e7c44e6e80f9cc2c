"""The pod cache keeps every kubedag pod that exists (finished ones too, for ``podRetention``): it keeps only what
the controller reads of a pod, so that 10,000 kept pods do not hold 10,000 pod specs (issue 13: flat memory)."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from kubedag.core import naming as names
from kubedag.k8s import observe
from kubedag.k8s.informers import Cache
from kubedag.k8s.runguards import owned_by
from tests.unit_k8s.podkit import NS, RUN_NAME, T0, pod, running, terminated, waiting

PULL = timedelta(minutes=5)
START, END = T0 + timedelta(seconds=4), T0 + timedelta(seconds=64)


def heavy(p: dict) -> dict:
    """``p`` as a real cluster serves it: a big spec (env, volumes) and ``managedFields``."""
    p = copy.deepcopy(p)
    p["metadata"]["ownerReferences"] = [{"apiVersion": "kubedag.io/v1alpha1", "kind": "DAGRun", "name": RUN_NAME,
                                         "uid": "run-uid", "controller": True}]
    p["metadata"]["managedFields"] = [{"manager": "kubedag", "operation": "Update", "fieldsV1": {"f:spec": {}}}] * 5
    p["metadata"]["annotations"] = {"kubedag.io/rendered": "x" * 2000}
    p["spec"]["containers"][0]["env"] = [{"name": f"VAR_{i}", "value": "v" * 50} for i in range(40)]
    p["spec"]["volumes"] = [{"name": "xcom", "emptyDir": {}}]
    p["spec"]["tolerations"] = [{"key": "k", "operator": "Exists"}]
    return p


PODS = [
    pod("extract", 1, "Pending", None, node=None),
    pod("extract", 1, "Pending", waiting("ImagePullBackOff")),
    pod("extract", 1, "Pending", waiting("InvalidImageName")),
    pod("extract", 1, "Running", running(START)),
    pod("extract", 1, "Succeeded", terminated(0, START, END, message='{"rows": 3}')),
    pod("extract", 2, "Failed", terminated(137, START, END, reason="OOMKilled")),
    pod("extract", 1, "Failed", None, reason="Evicted", message="The node was low on resource: memory."),
    pod("extract", 1, "Failed", terminated(137, START, END), reason="DeadlineExceeded", active_deadline=60),
    pod("extract", 1, "Running", running(START), deletion=END),
]


def test_the_pod_cache_keeps_no_spec_env_volumes_or_managed_fields():
    cache = Cache()
    key = cache.store_pod("ADDED", heavy(pod("extract", 1, "Succeeded", terminated(0, START, END))))
    assert key == (NS, RUN_NAME)
    (cached,) = cache.pods[key].values()
    assert "containers" not in cached["spec"] and "volumes" not in cached["spec"]
    assert "managedFields" not in cached["metadata"] and "annotations" not in cached["metadata"]
    assert cached["spec"] == {"nodeName": "worker-1"}
    assert len(repr(cached)) < len(repr(heavy(pod("extract", 1, "Succeeded", terminated(0, START, END))))) / 4


@pytest.mark.parametrize("full", [heavy(p) for p in PODS], ids=lambda p: f"{p['status']['phase']}-{p['status'].get('reason')}")
def test_a_cached_pod_reads_as_the_pod_the_api_served(full):
    cache = Cache()
    key = cache.store_pod("MODIFIED", full)
    cached = cache.pods[key][full["metadata"]["name"]]
    for now in (T0, END, END + PULL + timedelta(minutes=1)):
        assert observe.observe_pod(cached, now, PULL) == observe.observe_pod(full, now, PULL)
    assert observe.pending_deadline(cached, PULL) == observe.pending_deadline(full, PULL)
    assert observe.finished_pod_deletions({("extract", 1): cached}, {}, {("extract", 1)}, END, timedelta(0)) == \
        observe.finished_pod_deletions({("extract", 1): full}, {}, {("extract", 1)}, END, timedelta(0))
    for uid in ("run-uid", "another-run", None):
        assert owned_by(cached, uid) == owned_by(full, uid)
    assert cached["metadata"]["labels"] == {k: v for k, v in full["metadata"]["labels"].items() if k.startswith("kubedag.io/")}
    assert cached["metadata"]["labels"][names.LABEL_RUN] == RUN_NAME


def test_a_newer_pod_replaces_the_cached_one_and_an_older_one_does_not():
    cache = Cache()
    first = heavy(pod("extract", 1, "Running", running(START)))
    key = cache.store_pod("ADDED", first)
    later = heavy(pod("extract", 1, "Succeeded", terminated(0, START, END)))
    later["metadata"]["resourceVersion"] = "1300"
    cache.store_pod("MODIFIED", later)
    cache.store_pod("MODIFIED", first)  # a stale event (resourceVersion 1234)
    assert cache.pods[key][first["metadata"]["name"]]["status"]["phase"] == "Succeeded"
    cache.store_pod("DELETED", later)
    assert key not in cache.pods

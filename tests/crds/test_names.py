"""Deterministic object names: what a user sees in ``kubectl get dagruns,pods`` and what a restarted
controller relies on to find, not duplicate, its objects."""

from kubedag.core import naming as names
from kubedag.core.spec.dagrun import DAGRunStatus, TaskEntry
from kubedag.core.spec.models import DNS1123_LABEL
from kubedag.core.states import TaskInstanceState


def test_run_name_is_readable_stable_and_a_label():
    name = names.run_name("supermarket-promotions", "scheduled__2026-11-01T00:00:00+00:00")
    assert name.startswith("supermarket-promotions-scheduled-20261101t000000-")
    assert name == names.run_name("supermarket-promotions", "scheduled__2026-11-01T00:00:00+00:00")
    assert len(name) <= 63 and DNS1123_LABEL.match(name)


def test_run_names_differ_for_ids_that_slug_alike_or_are_cut():
    assert names.run_name("etl", "a_b") != names.run_name("etl", "a.b")
    long_dag = "d" * 60
    a, b = names.run_name(long_dag, "manual__x"), names.run_name(long_dag, "manual__y")
    assert a != b and len(a) == len(b) == 63 and DNS1123_LABEL.match(a)


def test_pod_name_is_deterministic_per_try_and_rebuilt_from_status():
    run = names.run_name("etl", "manual__2026-11-01T00:00:00+00:00")
    first, again, second = (names.pod_name("etl", run, "Load_X", t) for t in (1, 1, 2))
    assert first == again != second
    assert first.startswith("etl-load-x-1-") and DNS1123_LABEL.match(first)
    entry = TaskEntry(s=TaskInstanceState.RUNNING, t=1, p=names.pod_suffix(run, "Load_X", 1))
    assert entry.pod_name("etl", "Load_X") == first
    other_run = names.run_name("etl", "manual__2026-11-02T00:00:00+00:00")
    assert names.pod_name("etl", other_run, "Load_X", 1) != first


def test_pod_name_fits_for_the_longest_dag_and_task_names():
    name = names.pod_name("d" * 63, "t" * 63, "T" * 63, 123)
    assert len(name) <= 63 and DNS1123_LABEL.match(name) and "-123-" in name


def test_status_keeps_pod_suffix_only():
    run = names.run_name("etl", "manual__x")
    status = DAGRunStatus(tasks={"a": TaskEntry(s=TaskInstanceState.QUEUED, t=1, p=names.pod_suffix(run, "a", 1))})
    assert status.to_k8s()["tasks"]["a"] == {"s": "queued", "t": 1, "p": names.pod_suffix(run, "a", 1)}


def test_pod_labels_carry_the_keys_kubedag_selects_on():
    labels = names.pod_labels("etl", "etl-manual-x-abcde", "load", 2)
    assert labels[names.LABEL_RUN] == "etl-manual-x-abcde" and labels[names.LABEL_TRY] == "2"
    assert labels["app.kubernetes.io/managed-by"] == "kubedag"

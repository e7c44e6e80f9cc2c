"""observe_pod and pending_deadline: how a pod, as the kubelet reports it, reads as the state of its try."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kubedag.core.runpass import TryObservation
from kubedag.k8s.observe import ended_by, observe_pod, parse_time, pending_deadline
from tests.unit_k8s.podkit import T0, UTC, pod, running, terminated, waiting

PULL = timedelta(minutes=5)
START = T0 + timedelta(seconds=4)
END = T0 + timedelta(seconds=64)


def test_parse_time_reads_rfc3339_z_as_utc():
    assert parse_time("2026-03-10T05:30:00Z") == T0
    assert parse_time("2026-03-10T05:30:00Z").utcoffset() == timedelta(0)
    assert parse_time(None) is None
    assert parse_time("") is None


def test_pending_pod_being_created_is_pending():
    obs = observe_pod(pod("extract", 1, "Pending", waiting("ContainerCreating"), node="worker-1"), T0, PULL)
    assert obs == TryObservation("pending", node="worker-1")
    assert not obs.finished


def test_pending_pod_not_yet_scheduled_without_container_statuses_is_pending():
    obs = observe_pod(pod("extract", 1, "Pending", None, node=None), T0 + timedelta(hours=1), PULL)
    assert obs.phase == "pending"
    assert obs.node is None


def test_a_pod_without_status_reads_as_pending():
    assert observe_pod({"metadata": {"name": "x"}}, T0, PULL).phase == "pending"


def test_running_pod_reads_running_from_the_container_started_at():
    now = T0 + timedelta(seconds=30)
    obs = observe_pod(pod("extract", 1, "Running", running(START)), now, PULL)
    assert obs.phase == "running"
    assert obs.started_at == START  # not `now`
    assert obs.finished_at is None
    assert obs.node == "worker-1"
    assert not obs.finished


def test_succeeded_pod():
    now = END + timedelta(seconds=5)
    obs = observe_pod(pod("extract", 1, "Succeeded", terminated(0, START, END)), now, PULL)
    assert obs.phase == "succeeded"
    assert obs.finished
    assert (obs.started_at, obs.finished_at, obs.exit_code, obs.reason) == (START, END, 0, None)


def test_failed_pod_with_exit_code_1():
    obs = observe_pod(pod("extract", 1, "Failed", terminated(1, START, END)), END, PULL)
    assert obs.phase == "failed"
    assert obs.finished
    assert obs.exit_code == 1
    assert obs.reason == "exit code 1"
    assert (obs.started_at, obs.finished_at) == (START, END)


def test_a_finished_pod_ended_by_finished_at_plus_a_second_at_most():
    """finishedAt is whole seconds: the container ended before finishedAt + 1 s, and not after it was seen."""
    late = observe_pod(pod("extract", 1, "Failed", terminated(1, START, END)), END + timedelta(minutes=5), PULL)
    assert (late.finished_at, late.ended_by) == (END, END + timedelta(seconds=1))
    soon = END + timedelta(milliseconds=300)
    ok = observe_pod(pod("extract", 1, "Succeeded", terminated(0, START, END)), soon, PULL)
    assert (ok.finished_at, ok.ended_by) == (END, soon)
    assert ended_by("2026-03-10T05:31:04.250000Z", soon) is None  # a fraction of a second: exact
    assert ended_by("2026-03-10T05:31:04Z", END - timedelta(seconds=3)) == END  # a clock behind: never before it
    assert ended_by(None, soon) is None


def test_failed_pod_with_exit_code_2_names_that_code():
    obs = observe_pod(pod("extract", 1, "Failed", terminated(2, START, END)), END, PULL)
    assert obs.reason == "exit code 2"


def test_oom_killed_pod():
    obs = observe_pod(pod("extract", 1, "Failed", terminated(137, START, END, reason="OOMKilled")), END, PULL)
    assert obs.phase == "failed"
    assert obs.exit_code == 137
    assert obs.reason.startswith("OOMKilled")
    assert "memory limit" in obs.reason
    assert "137" in obs.reason


def test_evicted_pod_reports_the_kubelet_message():
    message = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Mi."
    p = pod("extract", 1, "Failed", terminated(137, START, END), reason="Evicted", message=message)
    obs = observe_pod(p, END, PULL)
    assert obs.phase == "failed"
    assert obs.reason == f"evicted: {message}"


def test_evicted_pod_without_message():
    p = pod("extract", 1, "Failed", None, reason="Evicted")
    obs = observe_pod(p, END, PULL)
    assert obs.phase == "failed"
    assert obs.reason.startswith("evicted")
    assert obs.finished_at == END  # no container end: `now`


def test_deadline_exceeded_names_active_deadline_seconds():
    p = pod("extract", 1, "Failed", terminated(137, START, END), reason="DeadlineExceeded",
            message="Pod was active on the node longer than the specified deadline", active_deadline=60)
    obs = observe_pod(p, END, PULL)
    assert obs.phase == "failed"
    assert "activeDeadlineSeconds" in obs.reason
    assert "60s" in obs.reason
    assert "timeout" in obs.reason


def test_failed_pod_without_container_status_gives_the_pod_reason():
    p = pod("extract", 1, "Failed", None, reason="OutOfcpu",
            message="Pod Node didn't have enough resource: cpu, requested: 4000, used: 0, capacity: 2000")
    obs = observe_pod(p, END, PULL)
    assert obs.phase == "failed"
    assert "OutOfcpu" in obs.reason and "enough resource: cpu" in obs.reason
    assert obs.started_at is None


def test_image_pull_backoff_before_the_timeout_is_still_pending():
    p = pod("extract", 1, "Pending", waiting("ImagePullBackOff", 'Back-off pulling image "busybox:nope"'), created=T0)
    assert observe_pod(p, T0 + PULL - timedelta(seconds=1), PULL).phase == "pending"


def test_image_pull_backoff_after_the_timeout_fails_the_try():
    p = pod("extract", 1, "Pending", waiting("ImagePullBackOff", 'Back-off pulling image "busybox:nope"'), created=T0)
    now = T0 + PULL
    obs = observe_pod(p, now, PULL)
    assert obs.phase == "failed"
    assert obs.started_at is None
    assert obs.finished_at == now
    assert "ImagePullBackOff" in obs.reason
    assert 'Back-off pulling image "busybox:nope"' in obs.reason


def test_err_image_pull_after_the_timeout_fails_the_try():
    p = pod("extract", 1, "Pending", waiting("ErrImagePull", "rpc error: not found"), created=T0)
    assert observe_pod(p, T0 + timedelta(minutes=1), timedelta(seconds=30)).phase == "failed"


def test_invalid_image_name_fails_at_once():
    p = pod("extract", 1, "Pending", waiting("InvalidImageName", 'couldn\'t parse image name "Busybox:UPPER"'),
            created=T0)
    obs = observe_pod(p, T0, PULL)  # not a second later
    assert obs.phase == "failed"
    assert "InvalidImageName" in obs.reason
    assert 'Busybox:UPPER' in obs.reason


def test_pending_pod_with_deletion_timestamp_is_failed_as_deleted():
    p = pod("extract", 1, "Pending", waiting(), deletion=T0 + timedelta(seconds=5))
    obs = observe_pod(p, T0 + timedelta(seconds=6), PULL)
    assert obs.phase == "failed"
    assert "deleted" in obs.reason
    assert p["metadata"]["name"] in obs.reason


def test_running_pod_with_deletion_timestamp_is_failed_as_deleted():
    now = T0 + timedelta(seconds=20)
    p = pod("extract", 1, "Running", running(START), deletion=T0 + timedelta(seconds=10))
    obs = observe_pod(p, now, PULL)
    assert obs.phase == "failed"
    assert "deleted" in obs.reason
    assert obs.started_at == START
    assert obs.finished_at == now


def test_a_finished_pod_being_deleted_keeps_its_outcome():
    p = pod("extract", 1, "Succeeded", terminated(0, START, END), deletion=END + timedelta(minutes=10))
    assert observe_pod(p, END + timedelta(minutes=11), PULL).phase == "succeeded"


def test_the_base_container_is_read_even_when_a_sidecar_is_listed_first():
    p = pod("extract", 1, "Running", running(START))
    sidecar = {"name": "log-shipper", "state": {"waiting": {"reason": "ContainerCreating"}}}
    p["status"]["containerStatuses"].insert(0, sidecar)
    obs = observe_pod(p, END, PULL)
    assert obs.phase == "running"
    assert obs.started_at == START


# -------------------------------------------------------------------------------- pending_deadline
def test_pending_deadline_of_a_pod_waiting_on_an_image():
    p = pod("extract", 1, "Pending", waiting("ImagePullBackOff"), created=T0)
    assert pending_deadline(p, PULL) == T0 + PULL


@pytest.mark.parametrize("state", [waiting("ContainerCreating"), running(START), None])
def test_no_pending_deadline_otherwise(state):
    phase = "Running" if state and "running" in state else "Pending"
    assert pending_deadline(pod("extract", 1, phase, state), PULL) is None


def test_the_pending_deadline_is_where_observe_pod_starts_failing():
    p = pod("extract", 1, "Pending", waiting("ErrImagePull"), created=T0)
    deadline = pending_deadline(p, PULL)
    assert observe_pod(p, deadline - timedelta(microseconds=1), PULL).phase == "pending"
    assert observe_pod(p, deadline, PULL).phase == "failed"
    assert deadline.tzinfo is not None and deadline.utcoffset() == UTC.utcoffset(None)

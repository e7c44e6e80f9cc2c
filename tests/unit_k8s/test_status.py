"""build_status / tis_from_status (the DAGRun status) and finished_pod_deletions (pod housekeeping)."""

from __future__ import annotations

from datetime import timedelta

from kubedag.core import engine
from kubedag.core import naming as names
from kubedag.k8s.observe import build_status, finished_pod_deletions, run_from_object, tis_from_status
from kubedag.core.spec.dagrun import DAGRunStatus
from kubedag.core.states import DagRunState, TaskInstanceState as S
from tests.unit_k8s.podkit import RUN_NAME, T0, dag_of, pod, run_body, running, terminated, waiting

TI = engine.TaskInstance
DAG = dag_of([{"name": n, "command": ["true"]} for n in ("a", "b", "c", "d", "e", "f")])
RUN = run_from_object(DAG, run_body())
STARTED = T0 + timedelta(seconds=2)


def suffix(task_id: str, try_number: int) -> str:
    return names.pod_suffix(RUN_NAME, task_id, try_number)


def sample_tis() -> dict[str, engine.TaskInstance]:
    return {
        "a": TI("a", S.SUCCESS, 1, T0, T0 + timedelta(seconds=9)),
        "b": TI("b", S.RUNNING, 1, T0),
        "c": TI("c", S.NONE, 0),
        "d": TI("d", S.UP_FOR_RETRY, 1, T0, T0 + timedelta(seconds=5), T0 + timedelta(minutes=5)),
        "e": TI("e", S.QUEUED, 2),
        "f": TI("f", S.NONE, 0),
    }


def status(**kw) -> DAGRunStatus:
    run = engine.DagRun(**{**RUN.__dict__, "state": DagRunState.RUNNING, "start_date": STARTED})
    created = {"a": 1, "b": 1, "e": 1}  # e's try 2 pod not created yet
    return build_status(run, sample_tis(), created, suffix, observed_generation=3, **kw)


def test_tasks_in_state_none_with_try_0_are_left_out():
    st = status()
    assert set(st.tasks) == {"a", "b", "d", "e"}


def test_entries_hold_state_and_try():
    st = status()
    assert {k: (str(e.s), e.t) for k, e in st.tasks.items()} == {
        "a": ("success", 1), "b": ("running", 1), "d": ("up_for_retry", 1), "e": ("queued", 2),
    }


def test_p_is_set_only_for_tries_whose_pod_was_created():
    st = status()
    assert st.tasks["a"].p == suffix("a", 1)
    assert st.tasks["b"].p == suffix("b", 1)
    assert st.tasks["d"].p is None  # not in created
    assert st.tasks["e"].p is None  # created holds an older try
    # p rebuilds the pod's full name
    assert st.tasks["b"].pod_name("etl", "b") == names.pod_name("etl", RUN_NAME, "b", 1)


def test_counts_per_state_include_the_tasks_left_out():
    st = status()
    counts = st.counts.to_k8s()
    assert counts == {"none": 2, "scheduled": 0, "queued": 1, "running": 1, "success": 1, "failed": 0,
                      "up_for_retry": 1, "up_for_reschedule": 0, "upstream_failed": 0, "skipped": 0, "removed": 0}
    assert sum(counts.values()) == len(sample_tis())


def test_run_fields_in_the_status():
    st = status()
    assert st.phase == DagRunState.RUNNING
    assert st.started_at == STARTED
    assert st.finished_at is None
    assert st.observed_generation == 3
    doc = st.to_k8s()
    assert doc["phase"] == "running"
    assert doc["startedAt"].startswith("2026-03-10T05:30:02")
    assert "finishedAt" not in doc
    assert doc["observedGeneration"] == 3
    assert doc["tasks"]["a"] == {"s": "success", "t": 1, "p": suffix("a", 1)}
    assert doc["tasks"]["d"] == {"s": "up_for_retry", "t": 1}


def test_a_task_reset_to_none_after_a_try_stays_listed():
    tis = {"a": TI("a", S.NONE, 2)}
    st = build_status(RUN, tis, {"a": 2}, suffix, observed_generation=None)
    assert st.tasks["a"].t == 2 and st.tasks["a"].p == suffix("a", 2)


def test_tis_from_status_round_trip():
    doc = status().to_k8s()
    tis = tis_from_status(doc)
    assert tis == {
        "a": TI("a", S.SUCCESS, 1), "b": TI("b", S.RUNNING, 1), "d": TI("d", S.UP_FOR_RETRY, 1), "e": TI("e", S.QUEUED, 2),
    }
    # and back: the same entries (states and tries; p comes from `created`)
    again = build_status(RUN, tis, {"a": 1, "b": 1}, suffix, observed_generation=3).to_k8s()
    assert again["tasks"] == {k: v for k, v in doc["tasks"].items()}


def test_tis_from_an_empty_status():
    assert tis_from_status(None) == {}
    assert tis_from_status({}) == {}
    assert tis_from_status({"phase": "queued"}) == {}


def test_a_failed_try_carries_its_reason_masked_and_cut_and_reads_back():
    """``r``: the reason of failed and up_for_retry entries only, secrets masked before it is cut to 200 characters;
    the status read back gives it to the task instances (what history convergence records after a kill)."""
    why = "template error: 'undefined_0' is undefined (token s3cr3t-token-value) " + "x" * 300
    tis = {"a": TI("a", S.FAILED, 1, reason=why), "b": TI("b", S.UP_FOR_RETRY, 1, reason="exit code 2"),
           "c": TI("c", S.UPSTREAM_FAILED, 0, reason="upstream_failed: a failed"), "d": TI("d", S.SUCCESS, 1, reason="ok"),
           "e": TI("e", S.FAILED, 1)}
    doc = build_status(RUN, tis, {}, suffix, observed_generation=None,
                       mask=lambda text: text.replace("s3cr3t-token-value", "***")).to_k8s()
    assert {k: e.get("r") for k, e in doc["tasks"].items()} == {
        "a": why.replace("s3cr3t-token-value", "***")[:199] + "…", "b": "exit code 2", "c": None, "d": None, "e": None}
    assert DAGRunStatus.model_validate(doc).to_k8s() == doc
    assert {k: ti.reason for k, ti in tis_from_status(doc).items()} == {
        "a": doc["tasks"]["a"]["r"], "b": "exit code 2", "c": None, "d": None, "e": None}


def test_many_failed_tries_share_the_reasons_budget():
    """Failed tries share 320,000 characters of reasons: 200 each for 1,000, 64 each for 5,000; past 5,000 the
    entries after the budget carry none."""
    def lengths(n: int) -> list[int]:
        tis = {f"t{i}": TI(f"t{i}", S.FAILED, 1, reason="y" * 500) for i in range(n)}
        return [len(e.get("r", "")) for e in build_status(RUN, tis, {}, suffix, observed_generation=None).to_k8s()["tasks"].values()]

    assert set(lengths(1000)) == {200}
    assert set(lengths(5000)) == {64}
    many = lengths(6000)
    assert many[:5000] == [64] * 5000 and set(many[5000:]) == {0}


# ---------------------------------------------------------------------------- finished_pod_deletions
RETENTION = timedelta(minutes=10)
END = T0 + timedelta(minutes=1)


def done_pod(task_id, try_number, finished=END, **kw):
    return pod(task_id, try_number, "Succeeded", terminated(0, T0, finished), dag_id="etl", **kw)


def test_only_archived_finished_tries_past_retention_are_deleted():
    pods = {
        ("a", 1): done_pod("a", 1),                                         # finished, archived
        ("b", 1): done_pod("b", 1),                                         # finished, log not archived yet
        ("c", 1): pod("c", 1, "Running", running(T0), dag_id="etl"),        # active
    }
    tis = {"a": TI("a", S.SUCCESS, 1, T0, END), "b": TI("b", S.SUCCESS, 1, T0, END), "c": TI("c", S.RUNNING, 1, T0)}
    archived = {("a", 1), ("b", 1), ("c", 1)} - {("b", 1)}
    now = END + RETENTION
    due, next_at = finished_pod_deletions(pods, tis, archived, now, RETENTION)
    assert due == [("a", 1)]
    assert next_at is None


def test_before_retention_next_at_says_when():
    pods = {("a", 1): done_pod("a", 1), ("b", 1): done_pod("b", 1, finished=END + timedelta(minutes=3))}
    tis = {"a": TI("a", S.SUCCESS, 1, T0, END), "b": TI("b", S.SUCCESS, 1, T0, END + timedelta(minutes=3))}
    archived = {("a", 1), ("b", 1)}
    due, next_at = finished_pod_deletions(pods, tis, archived, END + timedelta(minutes=5), RETENTION)
    assert due == []
    assert next_at == END + RETENTION
    due, next_at = finished_pod_deletions(pods, tis, archived, END + RETENTION, RETENTION)
    assert due == [("a", 1)]
    assert next_at == END + timedelta(minutes=3) + RETENTION


def test_active_tries_are_never_deleted():
    long_ago = T0 - timedelta(days=3)
    pods = {
        ("a", 1): pod("a", 1, "Running", running(long_ago), dag_id="etl", created=long_ago),
        ("b", 2): pod("b", 2, "Pending", waiting(), dag_id="etl", created=long_ago),
    }
    tis = {"a": TI("a", S.RUNNING, 1, long_ago), "b": TI("b", S.QUEUED, 2)}
    due, next_at = finished_pod_deletions(pods, tis, {("a", 1), ("b", 2)}, T0 + timedelta(days=30), RETENTION)
    assert due == [] and next_at is None


def test_an_earlier_try_is_finished_once_the_task_moved_on():
    pods = {
        ("a", 1): pod("a", 1, "Failed", terminated(1, T0, END), dag_id="etl"),
        ("a", 2): pod("a", 2, "Running", running(END + timedelta(minutes=5)), dag_id="etl"),
    }
    tis = {"a": TI("a", S.RUNNING, 2, END + timedelta(minutes=5))}
    due, _ = finished_pod_deletions(pods, tis, {("a", 1), ("a", 2)}, END + RETENTION, RETENTION)
    assert due == [("a", 1)]


def test_a_try_up_for_retry_is_finished():
    pods = {("a", 1): pod("a", 1, "Failed", terminated(1, T0, END), dag_id="etl")}
    tis = {"a": TI("a", S.UP_FOR_RETRY, 1, T0, END, END + timedelta(hours=1))}
    due, _ = finished_pod_deletions(pods, tis, {("a", 1)}, END + RETENTION, RETENTION)
    assert due == [("a", 1)]


def test_the_task_end_date_is_used_when_the_pod_has_no_finished_at():
    failed = pod("a", 1, "Failed", None, reason="OutOfcpu", dag_id="etl")
    tis = {"a": TI("a", S.FAILED, 1, T0, END)}
    due, next_at = finished_pod_deletions({("a", 1): failed}, tis, {("a", 1)}, END + timedelta(minutes=1), RETENTION)
    assert due == [] and next_at == END + RETENTION
    due, _ = finished_pod_deletions({("a", 1): failed}, tis, {("a", 1)}, END + RETENTION, RETENTION)
    assert due == [("a", 1)]


def test_pods_already_being_deleted_are_skipped():
    p = done_pod("a", 1, deletion=END + RETENTION)
    tis = {"a": TI("a", S.SUCCESS, 1, T0, END)}
    assert finished_pod_deletions({("a", 1): p}, tis, {("a", 1)}, END + 2 * RETENTION, RETENTION) == ([], None)


def test_a_pod_of_a_task_no_longer_known_follows_its_own_end():
    pods = {("gone", 1): done_pod("gone", 1)}
    due, _ = finished_pod_deletions(pods, {}, {("gone", 1)}, END + RETENTION, RETENTION)
    assert due == [("gone", 1)]

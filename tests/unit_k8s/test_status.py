"""build_status / tis_from_status (the DAGRun status)."""

from __future__ import annotations

from datetime import timedelta

from kubedag.core import engine
from kubedag.core import naming as names
from kubedag.k8s.observe import build_status, run_from_object, tis_from_status
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

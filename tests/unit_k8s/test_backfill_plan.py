"""The Backfill reconciler's pure planning (:func:`kubedag.k8s.backfill.plan_backfill`)."""
from __future__ import annotations

from datetime import datetime, timezone

from kubedag.core import naming as names
from kubedag.k8s.backfill import ExistingRun, existing_from_object, plan_backfill, reset_action_id
from kubedag.core.spec.loader import parse_dag

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
DAG = parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "daily", "namespace": "ns"},
                 "spec": {"schedule": "@daily", "startDate": "2026-01-01", "maxActiveRuns": 2,
                          "tasks": [{"name": "a", "command": ["true"]}]}})


def day(n: int) -> datetime:
    return datetime(2026, 1, n, tzinfo=timezone.utc)


def backfill(**spec):
    return {"metadata": {"name": "jan", "namespace": "ns", "uid": "u1", "generation": 1},
            "spec": {"dagName": "daily", "startDate": "2026-01-01", "endDate": "2026-01-05", **spec}}


def run(n: int, phase, **kw) -> ExistingRun:
    run_id = f"backfill__{day(n).isoformat()}"
    return ExistingRun(run_id, day(n), phase, name=names.run_name("daily", run_id), **{"backfill": "jan", **kw})


def test_creates_runs_oldest_first_up_to_the_dags_max_active_runs():
    plan = plan_backfill(backfill(), DAG, [], NOW)
    assert [b["spec"]["runId"] for b in plan.create] == ["backfill__2026-01-01T00:00:00+00:00",
                                                         "backfill__2026-01-02T00:00:00+00:00"]
    body = plan.create[0]
    assert body["metadata"]["name"] == names.run_name("daily", "backfill__2026-01-01T00:00:00+00:00")
    assert body["metadata"]["labels"]["kubedag.io/backfill"] == "jan"
    assert body["metadata"]["ownerReferences"] == [{"apiVersion": "kubedag.io/v1alpha1", "kind": "Backfill",
                                                    "name": "jan", "uid": "u1", "controller": True,
                                                    "blockOwnerDeletion": True}]
    assert body["spec"] == {"dagName": "daily", "runId": "backfill__2026-01-01T00:00:00+00:00", "runType": "backfill",
                            "logicalDate": "2026-01-01T00:00:00+00:00",
                            "dataIntervalStart": "2026-01-01T00:00:00+00:00",
                            "dataIntervalEnd": "2026-01-02T00:00:00+00:00", "conf": {}}
    s = plan.status
    assert (s["phase"], s["total"], s["created"], s["queued"], s["running"]) == ("running", 5, 2, 2, 0)
    assert s["startedAt"] == "2026-03-01T00:00:00+00:00" and "finishedAt" not in s


def test_the_backfills_max_active_runs_counts_unfinished_runs():
    existing = [run(1, "success"), run(2, "running"), run(3, None)]
    plan = plan_backfill(backfill(maxActiveRuns=3), DAG, existing, NOW)
    assert [b["spec"]["logicalDate"][:10] for b in plan.create] == ["2026-01-04"]
    s = plan.status
    assert (s["created"], s["queued"], s["running"], s["succeeded"]) == (4, 2, 1, 1)


def test_an_existing_run_is_left_alone_or_reset_with_a_clear_action():
    other = ExistingRun("scheduled__2026-01-01T00:00:00+00:00", day(1), "failed", name="sched-1")
    alone = plan_backfill(backfill(endDate="2026-01-01"), DAG, [other], NOW)
    assert (alone.create, alone.reset, alone.status["phase"], alone.status["failed"]) == ([], [], "failed", 1)

    reset = plan_backfill(backfill(endDate="2026-01-01", resetDagRuns=True), DAG, [other], NOW)
    action_id = reset_action_id("ns", "jan", "u1")
    assert reset.reset == [("sched-1", {"id": action_id, "type": "clear", "tasks": []})]
    assert reset.status["phase"] == "running" and reset.status["queued"] == 1

    pending = ExistingRun(other.run_id, day(1), "failed", name="sched-1", actions=(action_id,))
    waiting = plan_backfill(backfill(endDate="2026-01-01", resetDagRuns=True), DAG, [pending], NOW)
    assert waiting.reset == [] and waiting.status["queued"] == 1  # the controller has not applied it yet

    applied = ExistingRun(other.run_id, day(1), "success", name="sched-1", actions=(action_id,), applied=(action_id,))
    done = plan_backfill(backfill(endDate="2026-01-01", resetDagRuns=True), DAG, [applied], NOW)
    assert done.reset == [] and done.status["phase"] == "success"


def test_all_runs_finished_gives_success_or_failed_with_finished_at():
    ok = plan_backfill(backfill(), DAG, [run(n, "success") for n in range(1, 6)], NOW)
    assert (ok.status["phase"], ok.status["succeeded"], ok.status["finishedAt"]) == ("success", 5, NOW.isoformat())
    assert ok.status["conditions"][0]["reason"] == "Completed"
    bad = plan_backfill(backfill(), DAG, [run(n, "success" if n != 3 else "failed") for n in range(1, 6)], NOW)
    assert (bad.status["phase"], bad.status["failed"]) == ("failed", 1)


def test_a_run_only_in_the_db_is_never_created_again():
    db_only = ExistingRun("backfill__2026-01-01T00:00:00+00:00", day(1), "success")
    plan = plan_backfill(backfill(endDate="2026-01-01"), DAG, [db_only], NOW)
    assert plan.create == [] and plan.status["phase"] == "success"


def test_an_unknown_dag_keeps_the_backfill_pending_with_a_condition():
    plan = plan_backfill(backfill(), None, [], NOW, dag_problem="DAG daily does not exist")
    assert plan.create == []
    assert plan.status["phase"] == "pending"
    condition = plan.status["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("False", "DAGNotReady")
    assert condition["message"] == "DAG daily does not exist; the backfill waits for it"


def test_an_invalid_spec_fails_the_backfill_naming_the_field():
    plan = plan_backfill(backfill(startDate="2026-02-01"), DAG, [], NOW)
    assert plan.status["phase"] == "failed"
    assert "endDate" in plan.status["conditions"][0]["message"]
    missing = plan_backfill({"metadata": {"name": "x"}, "spec": {"dagName": "daily"}}, DAG, [], NOW)
    assert "spec.startDate" in missing.status["conditions"][0]["message"]


def test_naive_dates_are_read_in_the_dags_timezone():
    tz_dag = parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "daily"},
                        "spec": {"schedule": "@daily", "startDate": "2026-01-01", "timezone": "Europe/Paris",
                                 "tasks": [{"name": "a", "command": ["true"]}]}})
    plan = plan_backfill(backfill(startDate="2026-01-02", endDate="2026-01-02"), tz_dag, [], NOW)
    assert [b["spec"]["logicalDate"] for b in plan.create] == ["2026-01-01T23:00:00+00:00"]


def test_existing_from_object_reads_the_dagrun():
    obj = {"metadata": {"name": "r1", "labels": {"kubedag.io/backfill": "jan"}},
           "spec": {"dagName": "daily", "runId": "x", "logicalDate": "2026-01-01T00:00:00Z",
                    "actions": [{"id": "c1", "type": "clear"}]},
           "status": {"phase": "running", "appliedActions": ["c1"]}}
    assert existing_from_object(obj, DAG) == ExistingRun("x", day(1), "running", name="r1", backfill="jan",
                                                         actions=("c1",), applied=("c1",))
    assert existing_from_object({"metadata": {"name": "r2"}, "spec": {"dagName": "daily"}}, DAG) is None

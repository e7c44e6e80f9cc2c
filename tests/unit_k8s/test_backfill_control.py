"""A Backfill's Airflow 3 controls in the pure plan (:func:`kubedag.k8s.backfill.plan_backfill`):
``reprocessBehavior``, ``paused`` and ``cancelled``."""
from __future__ import annotations

from kubedag.k8s.backfill import ExistingRun, plan_backfill, reset_action_id
from tests.unit_k8s.test_backfill_plan import DAG, NOW, backfill, day, run


def other(n: int, phase: str | None) -> ExistingRun:
    """A run of the DAG at day ``n`` that is not the backfill's (e.g. a scheduled one)."""
    return ExistingRun(f"scheduled__{day(n).isoformat()}", day(n), phase, name=f"sched-{n}")


def reset_names(plan) -> list[str]:
    return [name for name, _ in plan.reset]


def test_reprocess_behavior_none_leaves_every_existing_run_alone():
    existing = [other(1, "failed"), other(2, "success")]
    plan = plan_backfill(backfill(endDate="2026-01-02", reprocessBehavior="none"), DAG, existing, NOW)
    assert (plan.create, plan.reset) == ([], [])
    assert (plan.status["phase"], plan.status["failed"], plan.status["succeeded"]) == ("failed", 1, 1)


def test_reprocess_behavior_failed_clears_only_failed_runs():
    existing = [other(1, "failed"), other(2, "success")]
    plan = plan_backfill(backfill(endDate="2026-01-02", reprocessBehavior="failed"), DAG, existing, NOW)
    assert reset_names(plan) == ["sched-1"]
    assert plan.reset[0][1] == {"id": reset_action_id("ns", "jan", "u1"), "type": "clear", "tasks": []}
    assert (plan.status["queued"], plan.status["succeeded"], plan.status["phase"]) == (1, 1, "running")


def test_reprocess_behavior_completed_clears_finished_runs_but_not_one_in_flight():
    existing = [other(1, "failed"), other(2, "success"), other(3, "running")]
    plan = plan_backfill(backfill(endDate="2026-01-03", reprocessBehavior="completed", maxActiveRuns=5), DAG,
                         existing, NOW)
    assert reset_names(plan) == ["sched-1", "sched-2"]
    assert plan.status["running"] == 1 and plan.status["queued"] == 2


def test_a_paused_backfill_starts_nothing_and_says_so():
    plan = plan_backfill(backfill(paused=True), DAG, [run(1, "running")], NOW)
    assert (plan.create, plan.reset, plan.delete) == ([], [], [])
    status = plan.status
    assert (status["phase"], status["created"], status["running"]) == ("running", 1, 1)
    ready = status["conditions"][0]
    assert ready["reason"] == "Paused" and "no new run starts until unpaused" in ready["message"]

    resumed = plan_backfill(backfill(paused=False), DAG, [run(1, "running")], NOW)
    assert [b["spec"]["logicalDate"][:10] for b in resumed.create] == ["2026-01-02"]


def test_a_cancelled_backfill_deletes_its_queued_runs_and_completes_at_once():
    existing = [run(1, "success"), run(2, "running"), run(3, "queued"), run(4, None), other(5, "queued")]
    plan = plan_backfill(backfill(cancelled=True, maxActiveRuns=5), DAG, existing, NOW)
    assert plan.create == [] and plan.reset == []
    assert plan.delete == [run(3, None).name, run(4, None).name]  # its own queued runs; not the scheduled one
    status = plan.status
    assert (status["phase"], status["running"], status["succeeded"]) == ("cancelled", 1, 1)
    assert status["finishedAt"] == "2026-03-01T00:00:00+00:00"
    assert status["conditions"][0]["reason"] == "Completed"
    assert status["conditions"][0]["message"].startswith("cancelled:")

"""plan / apply_outcome / mark_running: whole runs and single decisions, against Airflow 2.10's scheduler."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from enginekit import LOGICAL, T0, applied, drive, make_dag, make_run, states, task

from kubedag.core.engine import DagRun, KillTry, StartTry, TaskInstance, apply_outcome, mark_running, plan
from kubedag.core.states import DagRunState as R
from kubedag.core.states import TaskInstanceState as S
from kubedag.core.states import TriggerRule as TR

SEC = timedelta(seconds=1)


def ti(task_id: str, state: S = S.NONE, try_number: int = 0, **kw) -> TaskInstance:
    if state in (S.SUCCESS, S.FAILED, S.SKIPPED, S.UP_FOR_RETRY) and "end_date" not in kw:
        kw["end_date"] = T0
    if state in (S.RUNNING, S.SUCCESS, S.FAILED) and "start_date" not in kw:
        kw["start_date"] = T0 - 10 * SEC
    return TaskInstance(task_id, state, try_number or (1 if state not in (S.NONE,) else 0), **kw)


def running_run(dag) -> DagRun:
    return make_run(dag, state=R.RUNNING, start_date=T0 - timedelta(minutes=1))


# --------------------------------------------------------------------------- first plan, chain, fan


def test_first_plan_creates_tis_starts_roots_and_runs_the_run():
    dag = make_dag(task("a"), task("b", "a"), task("c", "b"))
    p = plan(dag, make_run(dag), {}, T0)
    assert p.starts == (StartTry("a", 1),)
    assert p.updates["a"] == TaskInstance("a", S.QUEUED, 1)
    assert p.updates["b"] == TaskInstance("b") and p.updates["c"] == TaskInstance("c")
    assert p.run.state == R.RUNNING and p.run.start_date == T0 and p.run.end_date is None
    assert p.kills == () and p.wake_at is None
    assert set(p.waiting) == {"b", "c"}
    assert p.waiting["b"][0].startswith("trigger rule all_success requires all upstream tasks to have succeeded")


def test_chain_runs_in_order_to_success():
    dag = make_dag(task("a"), task("b", "a"), task("c", "b"))
    res = drive(dag)
    assert [(s[1], s[2]) for s in res.starts] == [("a", 1), ("b", 1), ("c", 1)]
    assert [s[0] for s in res.starts] == [T0, T0 + 10 * SEC, T0 + 20 * SEC]
    assert res.run.state == R.SUCCESS and res.run.end_date == T0 + 30 * SEC
    assert res.run.reason.startswith("success")
    assert all(t.state == S.SUCCESS and t.try_number == 1 for t in res.tis.values())


def test_fan_out_fan_in():
    dag = make_dag(task("a"), task("b", "a"), task("c", "a"), task("d", "a"), task("e", "b", "c", "d"))
    tis = {"a": ti("a", S.SUCCESS), **{k: ti(k) for k in "bcde"}}
    p = plan(dag, running_run(dag), tis, T0)
    assert p.starts == (StartTry("b", 1), StartTry("c", 1), StartTry("d", 1))
    assert "e" in p.waiting
    res = drive(dag, {"c": [True]})
    assert [s[1] for s in res.starts] == ["a", "b", "c", "d", "e"]
    assert res.starts[-1][0] == T0 + 20 * SEC  # e starts once b, c and d are all done
    assert res.run.state == R.SUCCESS


# --------------------------------------------------------------------------- cascades


def test_failure_cascades_upstream_failed_down_a_chain_in_one_call():
    dag = make_dag(task("a"), task("b", "a"), task("c", "b"), task("d", "c"))
    tis = {"a": ti("a", S.FAILED), **{k: ti(k) for k in "bcd"}}
    p = plan(dag, running_run(dag), tis, T0)
    assert {k: v.state for k, v in p.updates.items()} == dict.fromkeys("bcd", S.UPSTREAM_FAILED)
    assert p.updates["b"].reason.startswith("upstream_failed: trigger rule all_success requires")
    assert p.updates["b"].start_date == T0 and p.updates["b"].end_date == T0  # TaskInstance.set_state
    assert p.starts == ()
    assert p.run.state == R.FAILED and p.run.end_date == T0
    assert p.run.reason == "task_failure: leaf task d (upstream_failed)"


def test_all_success_fails_fast_while_siblings_still_run():
    # Airflow marks upstream_failed as soon as one upstream failed; the run waits for the rest.
    dag = make_dag(task("a"), task("b"), task("c", "a", "b"))
    tis = {"a": ti("a", S.FAILED), "b": ti("b", S.RUNNING), "c": ti("c")}
    p = plan(dag, running_run(dag), tis, T0)
    assert p.updates["c"].state == S.UPSTREAM_FAILED
    assert p.run.state == R.RUNNING
    done = applied(tis, p) | {"b": ti("b", S.SUCCESS)}
    assert plan(dag, p.run, done, T0).run.state == R.FAILED


def test_skip_propagates_and_skipped_leaves_count_as_success():
    dag = make_dag(task("a"), task("b", "a"), task("c", "b"))
    tis = {"a": ti("a", S.SKIPPED), "b": ti("b"), "c": ti("c")}
    p = plan(dag, running_run(dag), tis, T0)
    assert {k: v.state for k, v in p.updates.items()} == {"b": S.SKIPPED, "c": S.SKIPPED}
    assert p.run.state == R.SUCCESS  # State.success_states = {success, skipped}


def test_join_after_skipped_branch_with_none_failed_min_one_success():
    dag = make_dag(
        task("a"), task("b"), task("join", "a", "b", trigger_rule=TR.NONE_FAILED_MIN_ONE_SUCCESS), task("after", "join")
    )
    tis = {"a": ti("a", S.SUCCESS), "b": ti("b", S.SKIPPED)}
    p = plan(dag, running_run(dag), tis, T0)
    assert p.starts == (StartTry("join", 1),)
    assert p.updates["after"] == TaskInstance("after")


def test_one_failed_handler_runs_and_decides_with_the_leaves():
    dag = make_dag(task("work"), task("alert", "work", trigger_rule=TR.ONE_FAILED), task("next", "work"))
    res = drive(dag, {"work": [False]})
    assert res.tis["alert"].state == S.SUCCESS and res.tis["next"].state == S.UPSTREAM_FAILED
    assert res.run.state == R.FAILED  # the leaf `next` is upstream_failed
    ok = drive(dag)
    assert ok.tis["alert"].state == S.SKIPPED and ok.run.state == R.SUCCESS


# --------------------------------------------------------------------------- run state


def test_failed_non_leaf_with_all_done_leaf_that_succeeds_is_a_successful_run():
    # DagRun.update_state looks at the leaves only: a failed upstream does not fail the run.
    dag = make_dag(task("a"), task("cleanup", "a", trigger_rule=TR.ALL_DONE))
    res = drive(dag, {"a": [False]})
    assert res.tis["a"].state == S.FAILED and res.tis["cleanup"].state == S.SUCCESS
    assert res.run.state == R.SUCCESS


def test_any_failed_leaf_fails_the_run_once_all_are_finished():
    dag = make_dag(task("a"), task("b"))
    tis = {"a": ti("a", S.FAILED), "b": ti("b", S.RUNNING)}
    assert plan(dag, running_run(dag), tis, T0).run.state == R.RUNNING
    tis["b"] = ti("b", S.SUCCESS)
    p = plan(dag, running_run(dag), tis, T0)
    assert p.run.state == R.FAILED and p.run.reason == "task_failure: leaf task a (failed)"


def test_deadlock_fails_the_run():
    # A removed TI of a task still in the DAG stays removed (restoring is verify_integrity's job);
    # its all_success downstream waits forever: no unfinished task can run -> all_tasks_deadlocked.
    dag = make_dag(task("a"), task("b", "a"))
    tis = {"a": ti("a", S.REMOVED), "b": ti("b")}
    p = plan(dag, running_run(dag), tis, T0)
    assert p.starts == () and p.updates == {}
    assert p.run.state == R.FAILED and p.run.end_date == T0
    assert p.run.reason.startswith("all_tasks_deadlocked: no unfinished task can ever run (b: trigger rule")


def test_not_a_deadlock_while_a_retry_is_pending_or_a_try_runs():
    dag = make_dag(task("a", retries=1), task("b", "a"))
    due = T0 + timedelta(minutes=5)
    tis = {"a": ti("a", S.UP_FOR_RETRY, next_retry_at=due), "b": ti("b")}
    assert plan(dag, running_run(dag), tis, T0).run.state == R.RUNNING
    tis = {"a": ti("a", S.RUNNING), "b": ti("b")}
    assert plan(dag, running_run(dag), tis, T0).run.state == R.RUNNING


def test_finished_run_plans_nothing():
    dag = make_dag(task("a"))
    run = replace(running_run(dag), state=R.SUCCESS, end_date=T0)
    p = plan(dag, run, {}, T0 + SEC)
    assert p.idle and p.run is run and p.waiting == {} and p.wake_at is None


def test_empty_dag_succeeds():
    dag = make_dag()
    assert plan(dag, make_run(dag), {}, T0).run.state == R.SUCCESS


# --------------------------------------------------------------------------- retries and timeouts


def test_retry_waits_until_due_then_starts_next_try():
    dag = make_dag(task("a", retries=2, retry_delay=timedelta(minutes=5)), task("b", "a"))
    run = running_run(dag)
    failed = apply_outcome(dag, run, ti("a", S.RUNNING), succeeded=False, now=T0, exit_code=1)
    assert failed.state == S.UP_FOR_RETRY and failed.try_number == 1
    assert failed.next_retry_at == T0 + timedelta(minutes=5) and failed.end_date == T0
    assert failed.reason == "exit code 1" and failed.exit_code == 1
    tis = {"a": failed, "b": ti("b")}

    early = plan(dag, run, tis, T0 + timedelta(minutes=4))
    assert early.idle and early.run == run
    assert early.waiting["a"] == ("retry at 2026-01-01T00:05:00Z",)
    assert early.wake_at == T0 + timedelta(minutes=5)

    due = plan(dag, run, tis, T0 + timedelta(minutes=5))  # next_retry_at <= now
    assert due.starts == (StartTry("a", 2),)
    assert due.updates["a"] == TaskInstance("a", S.QUEUED, 2)


def test_retries_exhausted_fail_the_task_and_the_run():
    dag = make_dag(task("a", retries=2, retry_delay=timedelta(minutes=5)), task("b", "a"))
    res = drive(dag, {"a": [False, False, False]})
    # try 1 at 0, fails at 10 s, due at 5m10s; try 2 fails at 5m20s, due at 10m20s; try 3 fails
    assert [(s[1], s[2], s[0] - T0) for s in res.starts] == [
        ("a", 1, timedelta(0)),
        ("a", 2, timedelta(minutes=5, seconds=10)),
        ("a", 3, timedelta(minutes=10, seconds=20)),
    ]
    assert res.tis["a"].state == S.FAILED and res.tis["a"].try_number == 3
    assert res.tis["b"].state == S.UPSTREAM_FAILED
    assert res.run.state == R.FAILED


def test_retry_then_success():
    dag = make_dag(task("a", retries=1, retry_delay=timedelta(seconds=30)), task("b", "a"))
    res = drive(dag, {"a": [False, True]})
    assert res.tis["a"].state == S.SUCCESS and res.tis["a"].try_number == 2
    assert res.run.state == R.SUCCESS


def test_execution_timeout_kills_and_retries():
    dag = make_dag(task("a", retries=1, retry_delay=timedelta(seconds=60), execution_timeout=timedelta(seconds=30)))
    res = drive(dag, {"a": ["hang", True]})
    assert res.kills == [(T0 + 30 * SEC, "a", 1, "execution timeout after 30s")]
    assert [(s[1], s[2], s[0]) for s in res.starts] == [("a", 1, T0), ("a", 2, T0 + 90 * SEC)]
    assert res.run.state == R.SUCCESS


def test_execution_timeout_single_plan():
    dag = make_dag(task("a", execution_timeout=timedelta(seconds=30)), task("b", "a"))
    run = running_run(dag)
    tis = {"a": ti("a", S.RUNNING, start_date=T0), "b": ti("b")}
    before = plan(dag, run, tis, T0 + 29 * SEC)
    assert before.idle and before.wake_at == T0 + 30 * SEC
    p = plan(dag, run, tis, T0 + 30 * SEC)  # now - start_date >= execution_timeout
    assert p.kills == (KillTry("a", 1, "execution timeout after 30s"),)
    assert p.updates["a"].state == S.FAILED and p.updates["a"].reason == "execution timeout after 30s"
    assert p.updates["b"].state == S.UPSTREAM_FAILED  # cascades in the same call
    assert p.run.state == R.FAILED


def test_up_for_reschedule_keeps_its_try_number():
    # DagRun.schedule_tis: try_number + 1 unless the TI is up_for_reschedule
    dag = make_dag(task("sensor"))
    tis = {"sensor": ti("sensor", S.UP_FOR_RESCHEDULE, 1, next_retry_at=T0)}
    p = plan(dag, running_run(dag), tis, T0)
    assert p.starts == (StartTry("sensor", 1),)
    later = {"sensor": ti("sensor", S.UP_FOR_RESCHEDULE, 1, next_retry_at=T0 + SEC)}
    assert plan(dag, running_run(dag), later, T0).waiting["sensor"] == ("reschedule at 2026-01-01T00:00:01Z",)


# --------------------------------------------------------------------------- limits


def test_max_active_tasks_counts_running_and_planned():
    dag = make_dag(*(task(k) for k in "abcde"), max_active_tasks=2)
    p = plan(dag, make_run(dag), {}, T0)
    assert p.starts == (StartTry("a", 1), StartTry("b", 1))
    assert p.waiting["c"] == ("max_active_tasks 2 reached",)
    tis = applied({}, p) | {"a": ti("a", S.SUCCESS), "b": ti("b", S.RUNNING)}
    p2 = plan(dag, p.run, tis, T0)
    assert p2.starts == (StartTry("c", 1),)
    res = drive(dag)
    assert max(sum(1 for s in res.starts if s[0] == t) for t in {s[0] for s in res.starts}) == 2
    assert res.run.state == R.SUCCESS


def test_free_slots_limit_new_starts():
    dag = make_dag(*(task(k) for k in "abcde"))
    p = plan(dag, make_run(dag), {}, T0, free_slots=3)
    assert [s.task_id for s in p.starts] == ["a", "b", "c"]
    assert p.waiting["d"] == ("no free executor slot (3 free at planning)",)
    none = plan(dag, make_run(dag), {}, T0, free_slots=0)
    assert none.starts == () and none.run.state == R.RUNNING  # a concurrency limit is not a deadlock
    res = drive(dag, free_slots=2)
    assert [s[0] - T0 for s in res.starts] == [timedelta(0)] * 2 + [10 * SEC] * 2 + [20 * SEC]


# --------------------------------------------------------------------------- removed tasks


def test_task_not_in_dag_becomes_removed_and_is_killed_if_running():
    dag = make_dag(task("a"))
    tis = {"gone": ti("gone", S.RUNNING), "old": ti("old", S.SUCCESS), "a": ti("a", S.SUCCESS)}
    p = plan(dag, running_run(dag), tis, T0)
    assert p.updates["gone"].state == S.REMOVED and p.updates["old"].state == S.REMOVED
    assert p.updates["gone"].reason == "task removed from the DAG"
    assert p.kills == (KillTry("gone", 1, "task removed from the DAG"),)
    assert p.run.state == R.SUCCESS  # removed TIs are not leaves of the run
    assert plan(dag, running_run(dag), applied(tis, p), T0).idle


def test_removed_leaf_is_ignored_for_the_run_state():
    # _tis_for_dagrun_state drops leaves whose TI is removed
    dag = make_dag(task("a"), task("b"))
    tis = {"a": ti("a", S.SUCCESS), "b": ti("b", S.REMOVED)}
    assert plan(dag, running_run(dag), tis, T0).run.state == R.SUCCESS


# --------------------------------------------------------------------------- fixed point and wake_at


def test_plan_is_idempotent_after_applying():
    dag = make_dag(
        task("a"), task("b", "a"), task("c", "a", trigger_rule=TR.ALL_DONE), task("d", "c", retries=1), task("e"),
        max_active_tasks=3,
    )
    tis = {
        "a": ti("a", S.FAILED),
        "d": ti("d", S.UP_FOR_RETRY, next_retry_at=T0 + SEC),
        "zombie": ti("zombie", S.QUEUED),
    }
    run = make_run(dag)
    p = plan(dag, run, tis, T0)
    assert p.updates and p.starts
    again = plan(dag, p.run, applied(tis, p), T0)
    assert again.idle and again.run == p.run
    assert again.waiting == p.waiting and again.wake_at == p.wake_at == T0 + SEC


def test_wake_at_is_the_earliest_time_based_change():
    dag = make_dag(task("a", execution_timeout=timedelta(minutes=10)), task("b", retries=1), task("c"))
    tis = {
        "a": ti("a", S.RUNNING, start_date=T0),
        "b": ti("b", S.UP_FOR_RETRY, next_retry_at=T0 + timedelta(minutes=3)),
        "c": ti("c", S.RUNNING, start_date=T0),
    }
    run = running_run(dag)
    assert plan(dag, run, tis, T0).wake_at == T0 + timedelta(minutes=3)
    assert plan(dag, run, tis | {"b": ti("b", S.RUNNING)}, T0).wake_at == T0 + timedelta(minutes=10)
    assert plan(dag, run, tis | {"a": ti("a", S.SUCCESS), "b": ti("b", S.SUCCESS)}, T0).wake_at is None


# --------------------------------------------------------------------------- outcome steps


def test_mark_running_and_apply_outcome_success():
    dag = make_dag(task("a"))
    run = running_run(dag)
    queued = TaskInstance("a", S.QUEUED, 1)
    running = mark_running(queued, T0)
    assert running == TaskInstance("a", S.RUNNING, 1, start_date=T0)
    assert mark_running(running, T0 + SEC) is running
    done = apply_outcome(dag, run, running, succeeded=True, now=T0 + 5 * SEC, exit_code=0)
    assert done == TaskInstance("a", S.SUCCESS, 1, start_date=T0, end_date=T0 + 5 * SEC, exit_code=0)


def test_no_retries_fails_at_once():
    dag = make_dag(task("a"))
    out = apply_outcome(dag, running_run(dag), ti("a", S.RUNNING), succeeded=False, now=T0, reason="OOMKilled")
    assert out.state == S.FAILED and out.reason == "OOMKilled" and out.next_retry_at is None


def test_stale_reports_are_rejected():
    dag = make_dag(task("a"))
    with pytest.raises(ValueError, match="not queued"):
        mark_running(ti("a", S.SUCCESS), T0)
    with pytest.raises(ValueError, match="stale outcome"):
        apply_outcome(dag, running_run(dag), ti("a", S.UP_FOR_RETRY), succeeded=False, now=T0)
    with pytest.raises(ValueError, match="not in DAG"):
        apply_outcome(dag, running_run(dag), ti("x", S.RUNNING), succeeded=True, now=T0)


def test_naive_datetimes_are_rejected():
    dag = make_dag(task("a"))
    with pytest.raises(ValueError, match="timezone-aware"):
        plan(dag, make_run(dag), {}, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        TaskInstance("a", start_date=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        make_run(dag, start_date=datetime(2026, 1, 1))


def test_mismatched_ti_key_is_rejected():
    dag = make_dag(task("a"))
    with pytest.raises(ValueError, match="holds task instance"):
        plan(dag, make_run(dag), {"a": TaskInstance("b")}, T0)


def test_exponential_retry_uses_run_logical_date_in_the_hash():
    dag = make_dag(task("t", retries=3, retry_delay=timedelta(seconds=300), retry_exponential_backoff=True))
    run = replace(running_run(dag), logical_date=LOGICAL)
    out = apply_outcome(dag, run, ti("t", S.RUNNING, 2), succeeded=False, now=T0)
    # d#t#2025-12-31 00:00:00+00:00#2: min_backoff 600, sha1 % 600 = 432 -> 1032 s
    assert out.next_retry_at == T0 + timedelta(seconds=1032)
    assert states({"t": out}) == {"t": "up_for_retry"}

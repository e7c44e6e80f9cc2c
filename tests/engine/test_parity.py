"""The engine's Airflow-parity steps: sensors (reschedule, timeout, softFail), branching, priority weights,
pools, dagrunTimeout, clear and mark."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from enginekit import T0, make_dag, make_run, task

from kubedag.core.engine import (
    KillTry,
    StartTry,
    TaskInstance,
    apply_branch,
    apply_outcome,
    branch_follow,
    clear,
    mark,
    mark_running,
    plan,
    select_tasks,
    sensor_not_met,
)
from kubedag.core.spec.models import SensorSpec
from kubedag.core.states import DagRunState as R
from kubedag.core.states import TaskInstanceState as S
from kubedag.core.states import TriggerRule as TR

SEC = timedelta(seconds=1)
MIN = timedelta(minutes=1)


def running(dag):
    return make_run(dag, state=R.RUNNING, start_date=T0 - MIN)


def sensor(mode="reschedule", **kw) -> SensorSpec:
    return SensorSpec.model_validate({"mode": mode, "pokeInterval": "30s", "timeout": "10m", **kw})


# ------------------------------------------------------------------------------------------------ sensors
def test_reschedule_sensor_frees_its_slot_and_keeps_its_try_number_and_first_poke():
    dag = make_dag(task("wait", sensor=sensor()), task("after", "wait"))
    run = running(dag)
    p = plan(dag, run, {}, T0)
    assert p.starts == (StartTry("wait", 1),)
    ti = mark_running(p.updates["wait"], T0)
    ti = sensor_not_met(dag, run, ti, T0 + 2 * SEC)
    assert ti.state == S.UP_FOR_RESCHEDULE and ti.try_number == 1
    assert ti.next_retry_at == T0 + 32 * SEC and ti.start_date == T0
    tis = {"wait": ti, "after": TaskInstance("after")}
    p = plan(dag, run, tis, T0 + 10 * SEC)
    assert p.starts == () and p.wake_at == T0 + 32 * SEC
    assert p.waiting["wait"] == ("reschedule at 2026-01-01T00:00:32Z",)
    p = plan(dag, run, tis, T0 + 32 * SEC)
    assert p.starts == (StartTry("wait", 1),)  # same try, Airflow 2.10's schedule_tis
    again = mark_running(p.updates["wait"], T0 + 33 * SEC)
    assert again.start_date == T0  # the first poke's start: the timeout's base
    done = apply_outcome(dag, run, again, succeeded=True, now=T0 + 34 * SEC)
    assert done.state == S.SUCCESS and done.try_number == 1


@pytest.mark.parametrize("soft_fail, state", [(False, S.FAILED), (True, S.SKIPPED)])
def test_sensor_timeout_fails_without_retry_or_skips_with_soft_fail(soft_fail, state):
    dag = make_dag(task("wait", sensor=sensor(softFail=soft_fail), retries=3), task("after", "wait"))
    run = running(dag)
    ti = TaskInstance("wait", S.RUNNING, 1, start_date=T0)
    out = sensor_not_met(dag, run, ti, T0 + 10 * MIN)
    assert out.state == state and "sensor timeout" in out.reason and "10m" in out.reason
    p = plan(dag, run, {"wait": out, "after": TaskInstance("after")}, T0 + 10 * MIN)
    assert p.updates["after"].state == (S.SKIPPED if soft_fail else S.UPSTREAM_FAILED)
    assert p.run.state == (R.SUCCESS if soft_fail else R.FAILED)


def test_poke_mode_not_met_means_the_process_timed_out():
    dag = make_dag(task("wait", sensor=sensor("poke")))
    out = sensor_not_met(dag, running(dag), TaskInstance("wait", S.RUNNING, 1, start_date=T0), T0 + 10 * MIN)
    assert out.state == S.FAILED and out.reason.startswith("sensor timeout")


def test_sensor_not_met_rejects_tasks_that_are_not_sensors():
    dag = make_dag(task("a"))
    with pytest.raises(ValueError, match="not a sensor"):
        sensor_not_met(dag, running(dag), TaskInstance("a", S.RUNNING, 1, start_date=T0), T0)


def test_a_sensor_is_not_killed_by_execution_timeout_while_poking():
    dag = make_dag(task("wait", sensor=sensor("poke"), execution_timeout=5 * SEC))
    tis = {"wait": TaskInstance("wait", S.RUNNING, 1, start_date=T0)}
    p = plan(dag, running(dag), tis, T0 + MIN)
    assert p.kills == () and "wait" not in p.updates


def test_four_reschedule_sensors_share_two_slots_without_deadlock():
    """The seeds' sensor deadlock: with poke sensors holding both slots nothing else runs; with
    reschedule sensors a slot is free between pokes, so every sensor gets its turn."""
    dag = make_dag(*(task(f"s{i}", sensor=sensor()) for i in range(4)), max_active_tasks=2)
    run = running(dag)
    tis: dict[str, TaskInstance] = {}
    now = T0
    poked: set[str] = set()
    for _ in range(6):  # each pass: start what may start; each poke ends 1s later, not met; plan again then
        p = plan(dag, run, tis, now)
        tis.update(p.updates)
        for start in p.starts:
            poked.add(start.task_id)
            tis[start.task_id] = sensor_not_met(dag, run, mark_running(tis[start.task_id], now), now + SEC)
        now += SEC
    assert poked == {"s0", "s1", "s2", "s3"}
    assert all(ti.state == S.UP_FOR_RESCHEDULE for ti in tis.values())


# ------------------------------------------------------------------------------------------------ branch
def branch_dag():
    return make_dag(
        task("pick", branch=True), task("left", "pick"), task("right", "pick"), task("after_right", "right"),
        task("join", "left", "after_right", trigger_rule=TR.NONE_FAILED_MIN_ONE_SUCCESS),
    )


def test_branch_skips_the_other_path_and_the_join_still_runs():
    dag = branch_dag()
    run = running(dag)
    tis = {t: TaskInstance(t) for t in dag.tasks}
    tis["pick"] = TaskInstance("pick", S.SUCCESS, 1, start_date=T0, end_date=T0)
    follow = branch_follow(dag, "pick", "left")
    tis.update(apply_branch(dag, tis, "pick", follow, T0))
    assert tis["right"].state == S.SKIPPED and "branch pick followed left" in tis["right"].reason
    p = plan(dag, run, tis, T0)
    assert p.updates["after_right"].state == S.SKIPPED
    assert p.starts == (StartTry("left", 1),)
    tis.update(p.updates)
    tis["left"] = TaskInstance("left", S.SUCCESS, 1, start_date=T0, end_date=T0)
    p = plan(dag, run, tis, T0)
    assert p.starts == (StartTry("join", 1),)


@pytest.mark.parametrize("value, follow", [(["left", "right"], ("left", "right")), (None, ()), ([], ())])
def test_branch_values(value, follow):
    assert branch_follow(branch_dag(), "pick", value) == follow


@pytest.mark.parametrize("value, message", [("join", "'join', not among its downstream tasks (left, right)"),
                                            (3, "a task name or a list of task names")])
def test_branch_rejects_invalid_values(value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        branch_follow(branch_dag(), "pick", value)


# ------------------------------------------------------------------------------------- priority and pools
def test_ready_tasks_start_by_priority_weight_with_downstream_rule():
    dag = make_dag(task("light"), task("heavy"), task("h1", "heavy"), task("h2", "h1"), max_active_tasks=1)
    assert dag.priority_weights == {"light": 1, "heavy": 3, "h1": 2, "h2": 1}
    p = plan(dag, running(dag), {}, T0)
    assert p.starts == (StartTry("heavy", 1),)
    assert p.waiting["light"] == ("max_active_tasks 1 reached",)


def test_absolute_and_upstream_weight_rules():
    dag = make_dag(task("a", priority_weight=5, weight_rule="absolute"), task("b", "a", weight_rule="upstream"),
                   task("c", "b", priority_weight=10, weight_rule="upstream"))
    assert dag.priority_weights == {"a": 5, "b": 6, "c": 16}


def test_pool_slots_cap_starts_and_say_why():
    dag = make_dag(task("a", pool="db", pool_slots=2), task("b", pool="db"), task("c", pool="db"), task("d", pool="gone"))
    p = plan(dag, running(dag), {}, T0, pool_free={"db": 3})
    assert p.starts == (StartTry("a", 1), StartTry("b", 1))
    assert p.waiting["c"] == ("pool db: 0 open slots, 1 needed",)
    assert p.waiting["d"] == ("pool gone does not exist",)


def test_up_for_reschedule_holds_no_pool_slot():
    dag = make_dag(task("wait", sensor=sensor(), pool="p"), task("work", pool="p"))
    tis = {"wait": TaskInstance("wait", S.UP_FOR_RESCHEDULE, 1, start_date=T0, next_retry_at=T0 + MIN),
           "work": TaskInstance("work")}
    p = plan(dag, running(dag), tis, T0, pool_free={"p": 1})
    assert p.starts == (StartTry("work", 1),)


# --------------------------------------------------------------------------------------------- timeouts
def test_dagrun_timeout_skips_unfinished_tasks_kills_tries_and_fails_the_run():
    dag = make_dag(task("a"), task("b", "a"), dagrun_timeout=timedelta(minutes=30))
    run = make_run(dag, state=R.RUNNING, start_date=T0)
    tis = {"a": TaskInstance("a", S.RUNNING, 1, start_date=T0), "b": TaskInstance("b")}
    p = plan(dag, run, tis, T0 + 10 * MIN)
    assert p.run.state == R.RUNNING and p.wake_at == T0 + 30 * MIN
    p = plan(dag, run, tis, T0 + 30 * MIN)
    assert p.run.state == R.FAILED and p.run.reason.startswith("timed_out")
    assert {t: u.state for t, u in p.updates.items()} == {"a": S.SKIPPED, "b": S.SKIPPED}
    assert p.kills == (KillTry("a", 1, p.run.reason),)


# ------------------------------------------------------------------------------------------ clear, mark
def finished_chain():
    dag = make_dag(task("a", retries=1), task("b", "a", retries=1), task("c", "b"), task("other"))
    run = make_run(dag, state=R.FAILED, start_date=T0, end_date=T0 + MIN)
    tis = {
        "a": TaskInstance("a", S.SUCCESS, 1, start_date=T0, end_date=T0),
        "b": TaskInstance("b", S.FAILED, 2, start_date=T0, end_date=T0),
        "c": TaskInstance("c", S.UPSTREAM_FAILED, 0, start_date=T0, end_date=T0),
        "other": TaskInstance("other", S.SUCCESS, 1, start_date=T0, end_date=T0),
    }
    return dag, run, tis


def test_clear_with_downstream_reopens_the_run_and_reruns_exactly_those_tasks():
    dag, run, tis = finished_chain()
    result = clear(dag, run, tis, ["b"], downstream=True, now=T0 + 2 * MIN)
    assert result.task_ids == ("b", "c")
    assert result.run.state == R.QUEUED and result.run.end_date is None and result.run.start_date is None
    assert result.updates["b"].state == S.NONE and result.updates["b"].try_number == 2
    assert result.updates["b"].max_tries == 3  # try 2 + retries 1: the retries come back
    tis = {**tis, **result.updates}
    p = plan(dag, result.run, tis, T0 + 2 * MIN)
    assert p.starts == (StartTry("b", 3),)
    failed = apply_outcome(dag, p.run, mark_running(p.updates["b"], T0 + 3 * MIN), succeeded=False, now=T0 + 4 * MIN)
    assert failed.state == S.UP_FOR_RETRY  # try 3 <= max_tries 3


def test_clear_only_failed_and_upstream_selection():
    dag, run, tis = finished_chain()
    assert select_tasks(dag, ["c"], upstream=True) == ("a", "b", "c")
    result = clear(dag, run, tis, ["c"], upstream=True, only_failed=True, now=T0)
    assert result.task_ids == ("b", "c")


def test_clear_stops_a_running_try_and_names_unknown_tasks():
    dag, run, tis = finished_chain()
    tis["other"] = TaskInstance("other", S.RUNNING, 1, start_date=T0)
    result = clear(dag, replace(run, state=R.RUNNING, end_date=None), tis, ["other"], now=T0)
    assert result.kills == (KillTry("other", 1, "cleared"),)
    with pytest.raises(ValueError, match="no task 'nope' in DAG d"):
        clear(dag, run, tis, ["nope"], now=T0)


def test_mark_success_lets_the_run_finish():
    dag, run, tis = finished_chain()
    result = mark(dag, run, tis, ["b"], S.SUCCESS, now=T0 + 2 * MIN)
    assert result.run.state == R.RUNNING
    tis = {**tis, **result.updates, "c": TaskInstance("c")}
    p = plan(dag, result.run, tis, T0 + 2 * MIN)
    assert p.starts == (StartTry("c", 1),)
    with pytest.raises(ValueError, match="success, failed or skipped"):
        mark(dag, run, tis, ["b"], S.RUNNING, now=T0)

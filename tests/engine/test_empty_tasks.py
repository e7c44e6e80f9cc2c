"""``kind: empty`` tasks (Airflow's EmptyOperator): the engine sets them ``success`` when their trigger rule passes,
as Airflow 2.10's ``DagRun.schedule_tis``, so no executor ever starts them."""

from __future__ import annotations

from datetime import timedelta

from enginekit import T0, drive, make_dag, make_run, task

from kubedag.core.engine import StartTry, TaskInstance, plan
from kubedag.core.spec.dag import Task
from kubedag.core.states import DagRunState as R
from kubedag.core.states import TaskInstanceState as S
from kubedag.core.states import TriggerRule as TR

SEC = timedelta(seconds=1)


def empty(task_id: str, *upstream: str, **kw) -> Task:
    return Task(task_id=task_id, command=(), upstream=upstream, empty=True, **kw)


def test_an_empty_root_succeeds_in_the_first_plan_and_its_downstream_starts_at_once():
    dag = make_dag(empty("start"), task("work", "start"), empty("end", "work"))
    p = plan(dag, make_run(dag), {}, T0)
    assert p.updates["start"].state == S.SUCCESS
    assert (p.updates["start"].try_number, p.updates["start"].start_date, p.updates["start"].end_date) == (1, T0, T0)
    assert p.starts == (StartTry("work", 1),)  # in the same call: no pass is lost on the empty task


def test_a_run_of_empty_tasks_and_commands_starts_only_the_commands():
    dag = make_dag(empty("start"), task("a", "start"), task("b", "start"), empty("join", "a", "b"), task("c", "join"))
    res = drive(dag)
    assert sorted((s[1], s[2]) for s in res.starts) == [("a", 1), ("b", 1), ("c", 1)]
    assert res.run.state == R.SUCCESS and res.run.end_date == T0 + 20 * SEC
    assert {t: (ti.state, ti.try_number) for t, ti in res.tis.items() if t in ("start", "join")} == {
        "start": (S.SUCCESS, 1), "join": (S.SUCCESS, 1)}


def test_an_empty_task_follows_its_trigger_rule():
    dag = make_dag(task("a"), empty("on_failure", "a", trigger_rule=TR.ONE_FAILED), empty("after", "a"))
    res = drive(dag, {"a": [False]})
    assert res.tis["on_failure"].state == S.SUCCESS
    assert res.tis["after"].state == S.UPSTREAM_FAILED
    assert [s[1] for s in res.starts] == ["a"]


def test_an_empty_task_takes_no_slot_of_max_active_tasks_nor_of_the_executor():
    dag = make_dag(task("busy"), empty("e"), max_active_tasks=1)
    p = plan(dag, make_run(dag), {}, T0, free_slots=1)
    assert p.updates["e"].state == S.SUCCESS and p.starts == (StartTry("busy", 1),)


def test_a_cleared_empty_task_succeeds_again_with_the_next_try_number():
    dag = make_dag(empty("e"))
    p = plan(dag, make_run(dag), {"e": TaskInstance("e", S.NONE, 1, reason="cleared")}, T0)
    assert (p.updates["e"].state, p.updates["e"].try_number) == (S.SUCCESS, 2)
    assert p.run.state == R.SUCCESS

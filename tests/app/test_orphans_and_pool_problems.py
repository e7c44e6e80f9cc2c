"""Pure rules of issue 13: how a run whose DAG was deleted ends, and why a task waits on a pool forever."""
from __future__ import annotations

from datetime import datetime, timezone

from kubedag.app.memory import RunMemory
from kubedag.app.orphans import end_orphaned_run
from kubedag.core import engine, runpass
from kubedag.core.spec import parse_dag
from kubedag.core.states import DagRunState, RunType
from kubedag.core.states import TaskInstanceState as S

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
NOW = datetime(2026, 11, 1, 0, 5, tzinfo=timezone.utc)
DAG = parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "etl"}, "spec": {"tasks": [
    {"name": "done", "command": ["true"]},
    {"name": "busy", "command": ["true"], "pool": "gpus"},
    {"name": "later", "command": ["true"], "dependsOn": ["busy"], "pool": "small", "poolSlots": 5}]}})
RUN = engine.DagRun(dag_id="etl", run_id="r", run_type=RunType.MANUAL, logical_date=T0, data_interval_start=T0,
                    data_interval_end=T0, state=DagRunState.RUNNING, start_date=T0)


def test_a_run_whose_dag_was_deleted_fails_its_unfinished_task_instances_removed_and_its_running_try_stopped():
    memory = RunMemory(run=RUN, tis={"done": engine.TaskInstance("done", S.SUCCESS, 1),
                                     "busy": engine.TaskInstance("busy", S.RUNNING, 2, start_date=T0),
                                     "later": engine.TaskInstance("later")})
    end = end_orphaned_run("etl", memory, NOW)
    why = "dag_deleted: DAG etl was deleted"
    assert (end.memory.run.state, end.memory.run.end_date, end.memory.run.reason) == (DagRunState.FAILED, NOW, why)
    assert {t: (ti.state, ti.reason) for t, ti in end.memory.tis.items()} == {
        "done": (S.SUCCESS, None), "busy": (S.REMOVED, f"removed: {why}"), "later": (S.REMOVED, f"removed: {why}")}
    assert end.stops == (("busy", 2, 0),)
    assert [(r.task_id, r.try_number, r.state, r.reason) for r in end.write.tries] == [("busy", 2, S.FAILED, why)]
    assert sorted(ti.task_id for ti in end.write.tis) == ["busy", "later"]
    assert end_orphaned_run("etl", end.memory, NOW).write.tis == ()  # a finished run is left as it is


def test_pool_problems_name_the_missing_pool_and_the_slots_needed():
    assert runpass.pool_problem(DAG.tasks["busy"], {"default-pool": 128}) == "pool gpus does not exist"
    assert runpass.pool_problem(DAG.tasks["later"], {"small": 3}) == "needs 5 slots, pool small has 3"
    assert runpass.pool_problem(DAG.tasks["later"], {"small": 5}) is None
    assert runpass.is_pool_problem("needs 5 slots, pool small has 3")
    assert not runpass.is_pool_problem("pool small: 0 open slots, 5 needed")  # waiting for slots: not a problem


def test_a_task_waiting_on_a_missing_pool_gets_the_reason_and_loses_it_once_the_pool_exists():
    tis = {t: engine.TaskInstance(t) for t in DAG.tasks}
    first = runpass.run_pass(DAG, RUN, tis, {}, {}, NOW, pool_free={"default-pool": 128, "small": 5},
                             pool_slots={"default-pool": 128, "small": 5})
    assert first.tis["busy"].reason == "pool gpus does not exist" and first.tis["busy"].state in (S.NONE, S.SCHEDULED)
    assert first.tis["later"].reason is None  # waits on its upstream, not on its pool
    second = runpass.run_pass(DAG, first.run, first.tis, {}, {}, NOW, pool_free={"default-pool": 128, "gpus": 1},
                              pool_slots={"default-pool": 128, "gpus": 1, "small": 5})
    assert second.tis["busy"].state == S.QUEUED and second.tis["busy"].reason is None

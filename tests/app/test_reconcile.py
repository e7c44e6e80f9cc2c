"""app.reconcile: the run reconcile as a pure function from observed state to a plan (no I/O, immutable memory)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kubedag.app.ports import StoredRun
from kubedag.app.reconcile import RunMemory, after_launches, free_task_slots, open_memory, reconcile_run
from kubedag.core import engine
from kubedag.core.runpass import TryObservation
from kubedag.core.spec.loader import parse_dag
from kubedag.core.states import DagRunState, RunType
from kubedag.core.states import TaskInstanceState as S

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def chain(**spec):
    return parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "etl"},
                      "spec": {"tasks": [{"name": "a", "command": ["true"]},
                                         {"name": "b", "command": ["echo", "{{ ti.xcom_pull('a') }}"], "dependsOn": ["a"]}],
                               **spec}})


def fresh(dag) -> RunMemory:
    run = engine.DagRun(dag.dag_id, "manual__1", RunType.MANUAL, T0, T0, T0, state=DagRunState.QUEUED)
    return open_memory(run, StoredRun(), {}, launched={}, pokes={}, applied=[])


def pod_name(task_id, try_number, poke):
    return f"etl-{task_id}-{try_number}-{poke}"


def test_a_pass_plans_launches_and_one_write_and_leaves_its_input_unchanged():
    dag = chain()
    memory = fresh(dag)
    plan = reconcile_run(dag, memory, {}, T0, pod_name=pod_name)
    assert [launch.request.task_id for launch in plan.launches] == ["a"]
    assert plan.memory.run.state == DagRunState.RUNNING and plan.phase_changed
    assert [e.reason for e in plan.events] == ["Started"]
    assert {ti.task_id: ti.state for ti in plan.write.tis} == {"a": S.QUEUED, "b": S.NONE}
    assert memory.tis == {} and memory.run.state == DagRunState.QUEUED  # the memory is a value
    # the launch is confirmed only by after_launches; the same inputs again plan the same launch
    assert reconcile_run(dag, memory, {}, T0, pod_name=pod_name).launches == plan.launches
    launched = after_launches(plan.memory, [("a", 1)], {})
    assert launched.launched == {"a": 1}
    assert reconcile_run(dag, launched, {}, T0, pod_name=pod_name).launches == ()


def test_a_finished_try_is_written_with_its_xcom_and_its_successor_sees_it():
    dag = chain()
    memory = after_launches(reconcile_run(dag, fresh(dag), {}, T0, pod_name=pod_name).memory, [("a", 1)], {})
    done = TryObservation("succeeded", T0, T0 + timedelta(seconds=1), 0, message='"hello"')
    plan = reconcile_run(dag, memory, {("a", 1): done}, T0 + timedelta(seconds=2), pod_name=pod_name)
    assert plan.finished == (("a", 1, 0),)
    assert plan.write.xcoms == {("a", 1): {"return_value": "hello"}}
    assert [(r.task_id, r.state) for r in plan.write.tries] == [("a", S.SUCCESS)]
    assert [launch.request.args or launch.request.command for launch in plan.launches] == [["echo", "hello"]]


def test_a_pass_whose_write_failed_is_computed_again_from_the_same_memory():
    """No dirty flags: a failed write keeps the old memory, and the retry plans the same write."""
    dag = chain()
    memory = after_launches(reconcile_run(dag, fresh(dag), {}, T0, pod_name=pod_name).memory, [("a", 1)], {})
    seen = {("a", 1): TryObservation("failed", T0, T0 + timedelta(seconds=1), 3, reason="exit code 3")}
    first = reconcile_run(dag, memory, seen, T0 + timedelta(seconds=2), pod_name=pod_name)
    again = reconcile_run(dag, memory, seen, T0 + timedelta(seconds=2), pod_name=pod_name)
    assert first.write.tis == again.write.tis and first.write.run.state == DagRunState.FAILED
    assert [r.reason for r in again.write.tries] == ["exit code 3"]


def test_actions_apply_once_and_a_bad_one_is_reported():
    dag = chain()
    memory = after_launches(reconcile_run(dag, fresh(dag), {}, T0, pod_name=pod_name).memory, [("a", 1)], {})
    actions = [{"id": "m1", "type": "mark", "tasks": ["a"], "state": "success"},
               {"id": "bad", "type": "clear", "tasks": ["nope"]}]
    plan = reconcile_run(dag, memory, {}, T0, pod_name=pod_name, actions=actions)
    assert plan.memory.applied == ("m1", "bad")
    assert plan.memory.tis["a"].state == S.SUCCESS
    assert [s.task_id for s in plan.stops] == ["a"]  # the running try of a marked task is stopped
    assert [e.reason for e in plan.events][:2] == ["Marked", "ActionFailed"]
    again = reconcile_run(dag, plan.memory, {}, T0, pod_name=pod_name, actions=actions)
    assert not [e for e in again.events if e.reason in ("Marked", "ActionFailed")]


def test_logs_read_for_finished_tries_join_the_next_write_and_count_as_archived():
    dag = chain()
    plan = reconcile_run(dag, fresh(dag), {}, T0, pod_name=pod_name, logs={("a", 1): "line\n", ("b", 1): None})
    assert plan.write.logs == {("a", 1): "line\n"}
    assert plan.memory.archived == {("a", 1), ("b", 1)}


def test_secret_values_are_masked_in_reasons_written_to_the_db():
    dag = chain()
    memory = after_launches(reconcile_run(dag, fresh(dag), {}, T0, pod_name=pod_name).memory, [("a", 1)], {})
    seen = {("a", 1): TryObservation("failed", T0, T0, 1, reason="password s3cr3t refused")}
    plan = reconcile_run(dag, memory, seen, T0, pod_name=pod_name, mask=lambda text: text.replace("s3cr3t", "***"))
    assert all("s3cr3t" not in (r.reason or "") for r in plan.write.tries)
    assert all("s3cr3t" not in (ti.reason or "") for ti in plan.write.tis)


def test_max_active_tasks_is_shared_by_the_runs_of_a_dag():
    dag = chain(maxActiveTasks=3)
    running = {"a": engine.TaskInstance("a", S.RUNNING, 1), "b": engine.TaskInstance("b", S.QUEUED, 1)}
    assert free_task_slots(dag, [running, {"a": engine.TaskInstance("a", S.SUCCESS, 1)}]) == 1
    assert free_task_slots(dag, [running, running]) == 0


def test_a_try_failed_and_retried_in_one_pass_still_notifies_on_retry():
    """retryDelay 0s: failed -> up_for_retry -> queued (try 2) within one pass; the failed try 1 is still an
    onRetry notice (sent with the log of try 1's pod), as the local runner notifies it."""
    dag = chain(defaults={"retries": 1, "retryDelay": "0s", "onRetry": [{"webhook": {"url": "http://hooks.example/r"}}]})
    memory = after_launches(reconcile_run(dag, fresh(dag), {}, T0, pod_name=pod_name).memory, [("a", 1)], {})
    failed = TryObservation("failed", T0, T0 + timedelta(seconds=1), 1)
    plan = reconcile_run(dag, memory, {("a", 1): failed}, T0 + timedelta(seconds=2), pod_name=pod_name)
    assert plan.memory.tis["a"].state == S.QUEUED and plan.memory.tis["a"].try_number == 2
    assert [(old.state, ti.state, ti.try_number) for old, ti in plan.failure_notices] == [(S.QUEUED, S.UP_FOR_RETRY, 1)]


def test_a_try_that_fails_to_render_has_a_log_saying_why():
    """No pod runs for a template error; the pass archives a one-line log for that try (what `kubedag logs`
    shows), as the local runner writes the error into the try's log file. Masked like the reason."""
    dag = parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "etl"},
                     "spec": {"tasks": [{"name": "bad", "command": ["echo", "{{ no_such_name }} hunter2"]}]}})
    plan = reconcile_run(dag, fresh(dag), {}, T0, pod_name=pod_name, mask=lambda s: s.replace("no_such", "***"))
    assert plan.launches == ()
    [(key, text)] = plan.write.logs.items()
    assert key == ("bad", 1)
    assert text.startswith(f"[{T0.isoformat()}] kubedag: ERROR template error in ")
    assert "***_name" in text and "no_such" not in text
    assert ("bad", 1) in plan.memory.archived


def test_a_reopened_sensor_past_its_first_poke_still_has_its_current_pokes_log_to_archive():
    """After a restart partway through a rescheduled sensor, the DB has a log for its try (an earlier poke's): the
    reopened memory must not take the try as archived, or the current poke's log would never be read (the try's
    log would stay the earlier poke's). A finished try, and a sensor on its first poke, stay as the DB has them."""
    run = engine.DagRun("etl", "manual__1", RunType.MANUAL, T0, T0, T0, state=DagRunState.RUNNING)
    stored = StoredRun(tis={"wait": engine.TaskInstance("wait", S.RUNNING, 1),
                            "later": engine.TaskInstance("later", S.UP_FOR_RESCHEDULE, 1),
                            "first": engine.TaskInstance("first", S.RUNNING, 1),
                            "a": engine.TaskInstance("a", S.SUCCESS, 1)},
                       archived=frozenset({("wait", 1), ("later", 1), ("first", 1), ("a", 1)}))
    memory = open_memory(run, stored, {}, launched={"wait": 1, "later": 1, "first": 1}, pokes={"wait": 2, "later": 3},
                         applied=[])
    assert memory.archived == {("first", 1), ("a", 1)}

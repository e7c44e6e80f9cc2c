"""run_pass driven step by step with synthetic pods: what the controller would create, kill and record.

Every test drives a :class:`~tests.unit_k8s.podkit.Cluster`: a pass, its result applied as the
controller applies it (pods created Pending, killed pods deleted), and in most steps the fixed point
checked (the same inputs again give an idle result).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from kubedag.core import engine
from kubedag.core import naming as names
from kubedag.core import runpass
from kubedag.core.runpass import TryKill, run_pass
from kubedag.k8s.observe import run_from_object
from kubedag.core.states import DagRunState, TaskInstanceState as S
from tests.unit_k8s.podkit import (
    RUN_NAME, T0, Cluster, dag_of, pod, run_body, running, terminated, waiting,
)

NOW = T0 + timedelta(seconds=1)


def cluster(tasks, **spec) -> Cluster:
    dag = dag_of(tasks, **spec)
    return Cluster(dag, run_from_object(dag, run_body(created=T0)))


def etl(**extract) -> Cluster:
    """extract -> transform -> load, plus a root `audit`; templated command and env."""
    return cluster([
        {"name": "extract", "command": ["python", "-m", "etl.extract", "--day={{ ds }}"],
         "args": ["--try={{ ti.try_number }}"], "env": {"OUT": "/data/{{ ds_nodash }}", "PLAIN": "x"}, **extract},
        {"name": "transform", "command": ["python", "-m", "etl.transform"], "dependsOn": ["extract"]},
        {"name": "load", "command": ["python", "-m", "etl.load"], "dependsOn": ["transform"]},
        {"name": "audit", "command": ["echo", "{{ run_id }}"]},
    ])


def states(c: Cluster) -> dict[str, str]:
    return {k: str(v.state) for k, v in c.tis.items()}


# ----------------------------------------------------------------------------------- first pass
def test_first_pass_creates_pods_for_the_roots_only():
    c = etl()
    r = c.settle(NOW)
    assert sorted(req.task_id for req in r.create) == ["audit", "extract"]
    assert {req.try_number for req in r.create} == {1}
    assert states(c) == {"extract": "queued", "transform": "none", "load": "none", "audit": "queued"}
    assert r.run.state == DagRunState.RUNNING
    assert r.run.start_date == NOW
    assert r.tries == [] and r.kill == [] and r.finished == []
    assert r.wake_at is None


def test_pod_requests_carry_rendered_fields_and_the_context_env():
    c = etl()
    r = c.step(NOW)
    req = next(q for q in r.create if q.task_id == "extract")
    assert req.command == ["python", "-m", "etl.extract", "--day=2026-03-10"]
    assert req.args == ["--try=1"]
    assert req.env["OUT"] == "/data/20260310"
    assert req.env["PLAIN"] == "x"
    assert req.env["KUBEDAG_TRY_NUMBER"] == "1"
    assert req.env["KUBEDAG_TASK_ID"] == "extract"
    assert req.env["KUBEDAG_DAG_ID"] == "etl"
    assert req.env["KUBEDAG_RUN_ID"] == "manual__2026-03-10T05:30:00+00:00"
    assert req.env["KUBEDAG_LOGICAL_DATE"] == "2026-03-10T05:30:00+00:00"
    audit = next(q for q in r.create if q.task_id == "audit")
    assert audit.command == ["echo", "manual__2026-03-10T05:30:00+00:00"]


def test_changed_lists_the_task_instances_to_write():
    c = etl()
    r = c.step(NOW)
    assert set(r.changed) == {"extract", "transform", "load", "audit"}  # all new
    assert r.tis["extract"].state == S.QUEUED and r.tis["extract"].try_number == 1


def test_a_pending_pod_leaves_its_try_queued():
    c = etl()
    c.settle(NOW)
    c.set_pod("extract", 1, "Pending", waiting("ContainerCreating"))
    r = c.step(NOW + timedelta(seconds=3))
    assert r.idle
    assert c.tis["extract"].state == S.QUEUED


# --------------------------------------------------------------------------------------- running
def test_running_pod_marks_the_task_running_from_started_at():
    c = etl()
    c.settle(NOW)
    started = NOW + timedelta(seconds=4)
    c.set_pod("extract", 1, "Running", running(started))
    r = c.settle(started + timedelta(seconds=2))
    ti = c.tis["extract"]
    assert ti.state == S.RUNNING
    assert ti.start_date == started
    assert set(r.changed) == {"extract"}
    assert len(r.tries) == 1
    rec = r.tries[0]
    assert (rec.task_id, rec.try_number, rec.state, rec.start_date) == ("extract", 1, S.RUNNING, started)
    assert rec.hostname == "worker-1"
    assert rec.pod_name == names.pod_name("etl", RUN_NAME, "extract", 1)
    assert r.create == [] and r.finished == []


# ---------------------------------------------------------------------------------------- success
def test_success_creates_the_successors_pods_in_the_same_pass():
    c = etl()
    c.settle(NOW)
    started, ended = NOW + timedelta(seconds=4), NOW + timedelta(seconds=64)
    c.set_pod("extract", 1, "Running", running(started))
    c.settle(started)
    c.set_pod("extract", 1, "Succeeded", terminated(0, started, ended))
    r = c.settle(ended + timedelta(seconds=1))
    ti = c.tis["extract"]
    assert ti.state == S.SUCCESS
    assert (ti.start_date, ti.end_date, ti.exit_code) == (started, ended, 0)
    assert [(q.task_id, q.try_number) for q in r.create] == [("transform", 1)]
    assert c.tis["transform"].state == S.QUEUED
    assert r.finished == [("extract", 1)]
    [rec] = r.tries
    assert (rec.state, rec.start_date, rec.end_date, rec.exit_code, rec.reason) == (S.SUCCESS, started, ended, 0, None)


def test_a_pod_that_finished_before_it_was_seen_running():
    c = etl()
    c.settle(NOW)
    started, ended = NOW + timedelta(seconds=2), NOW + timedelta(seconds=3)
    c.set_pod("extract", 1, "Succeeded", terminated(0, started, ended))
    r = c.settle(ended + timedelta(seconds=1))
    assert c.tis["extract"].state == S.SUCCESS
    assert c.tis["extract"].start_date == started
    assert [t.state for t in r.tries] == [S.SUCCESS]  # no separate running record
    assert r.kill == []  # a finished pod is kept (its log is archived first)


def test_the_run_succeeds_when_every_task_succeeded():
    c = cluster([{"name": "a", "command": ["true"]}, {"name": "b", "command": ["true"], "dependsOn": ["a"]}])
    now = NOW
    c.settle(now)
    for task in ("a", "b"):
        started, ended = now + timedelta(seconds=1), now + timedelta(seconds=10)
        c.set_pod(task, 1, "Succeeded", terminated(0, started, ended))
        now = ended + timedelta(seconds=1)
        r = c.settle(now)
    assert r.run.state == DagRunState.SUCCESS
    assert r.run.end_date == now
    assert "success" in r.run.reason
    # a finished run: nothing more, whatever the pods say
    assert c.step(now + timedelta(hours=1)).idle


# ---------------------------------------------------------------------------------------- retries
def test_failure_with_retries_waits_for_the_retry_delay_then_creates_try_2():
    c = etl(retries=1, retryDelay="30s")
    c.settle(NOW)
    started, ended = NOW + timedelta(seconds=4), NOW + timedelta(seconds=10)
    c.set_pod("extract", 1, "Failed", terminated(1, started, ended))
    r = c.settle(ended + timedelta(seconds=1))
    ti = c.tis["extract"]
    # finishedAt is whole seconds: the try may have ended up to 1 s after `ended` (it was seen at ended + 1 s), so
    # the retry is due 30 s after that latest possible end; the recorded end date stays the pod's finishedAt
    retry_at = ended + timedelta(seconds=1) + timedelta(seconds=30)
    assert ti.end_date == ended
    assert ti.state == S.UP_FOR_RETRY
    assert ti.try_number == 1
    assert ti.reason == "exit code 1"
    assert ti.exit_code == 1
    assert ti.next_retry_at == retry_at
    assert r.wake_at == retry_at
    assert r.create == []
    assert r.finished == [("extract", 1)]
    [rec] = r.tries
    assert (rec.state, rec.exit_code, rec.reason, rec.end_date) == (S.FAILED, 1, "exit code 1", ended)
    assert r.run.state == DagRunState.RUNNING

    # before the retry time: nothing, and the same wake-up
    early = c.step(retry_at - timedelta(seconds=1))
    assert early.idle and early.create == []
    assert early.wake_at == retry_at

    # at the retry time: try 2's pod, with its try number in the env
    r2 = c.settle(retry_at)
    assert [(q.task_id, q.try_number) for q in r2.create] == [("extract", 2)]
    assert r2.create[0].env["KUBEDAG_TRY_NUMBER"] == "2"
    assert r2.create[0].args == ["--try=2"]
    assert c.tis["extract"].state == S.QUEUED and c.tis["extract"].try_number == 2
    assert c.created["extract"] == 2


def test_a_retry_counts_from_the_latest_possible_end_of_a_whole_second_finished_at():
    """Kubernetes truncates finishedAt to whole seconds: a try that ended at 05:30:10.8 reads 05:30:10. Seen at
    05:30:10.9 the try ended by then, so retryDelay counts from 05:30:10.9 (not 05:30:10, which would start the
    next try 0.9 s early); seen later, from finishedAt + 1 s at most."""
    c = etl(retries=2, retryDelay="1s")
    c.settle(NOW)
    ended = NOW + timedelta(seconds=10)
    c.set_pod("extract", 1, "Failed", terminated(1, NOW, ended))
    seen = ended + timedelta(milliseconds=900)
    c.settle(seen)
    assert c.tis["extract"].end_date == ended
    assert c.tis["extract"].next_retry_at == seen + timedelta(seconds=1)


def test_the_last_try_failing_fails_the_run():
    c = etl(retries=1, retryDelay="30s")
    c.settle(NOW)
    c.set_pod("extract", 1, "Failed", terminated(1, NOW, NOW + timedelta(seconds=5)))
    c.settle(NOW + timedelta(seconds=6))
    now = NOW + timedelta(seconds=40)
    c.settle(now)
    # audit succeeds meanwhile; extract's try 2 fails for good
    c.set_pod("audit", 1, "Succeeded", terminated(0, NOW, NOW + timedelta(seconds=2)))
    c.set_pod("extract", 2, "Failed", terminated(3, now + timedelta(seconds=1), now + timedelta(seconds=5)))
    r = c.settle(now + timedelta(seconds=6))
    assert states(c) == {"extract": "failed", "transform": "upstream_failed", "load": "upstream_failed",
                         "audit": "success"}
    assert c.tis["extract"].reason == "exit code 3"
    assert r.run.state == DagRunState.FAILED
    assert "load" in r.run.reason
    assert r.create == []


# ------------------------------------------------------------------------------------ lost pods
def test_a_created_pod_that_is_missing_fails_the_try_as_deleted():
    c = etl()
    c.settle(NOW)
    started = NOW + timedelta(seconds=3)
    c.set_pod("extract", 1, "Running", running(started))
    c.settle(started)
    del c.pods[("extract", 1)]  # someone ran kubectl delete pod, and the pod is gone
    now = started + timedelta(seconds=20)
    r = c.settle(now)
    ti = c.tis["extract"]
    assert ti.state == S.FAILED
    assert "deleted" in ti.reason
    assert names.pod_name("etl", RUN_NAME, "extract", 1) in ti.reason
    assert ti.end_date == now
    assert r.create == []  # not re-created: the try is over
    [rec] = r.tries
    assert rec.state == S.FAILED and rec.start_date == started and "deleted" in rec.reason
    assert states(c)["transform"] == "upstream_failed"


def test_a_created_pod_that_is_missing_with_retries_goes_up_for_retry():
    c = etl(retries=2, retryDelay="1m")
    c.settle(NOW)
    c.pods.clear()  # created, then deleted before the informer saw it running
    r = c.settle(NOW + timedelta(seconds=5))
    assert c.tis["extract"].state == S.UP_FOR_RETRY
    assert r.wake_at == NOW + timedelta(seconds=5) + timedelta(minutes=1)


def test_a_queued_try_whose_creation_was_never_confirmed_is_requested_again():
    """After a crash between the DB write and the pod creation: TI queued, no pod, `created` unset."""
    dag = dag_of([{"name": "a", "command": ["echo", "{{ ds }}"]}])
    run = run_from_object(dag, run_body())
    tis = {"a": engine.TaskInstance("a", S.QUEUED, 1)}
    running_run = engine.DagRun(**{**run.__dict__, "state": DagRunState.RUNNING, "start_date": T0})
    r = run_pass(dag, running_run, tis, {}, {}, NOW)
    assert [(q.task_id, q.try_number, q.command) for q in r.create] == [("a", 1, ["echo", "2026-03-10"])]
    assert r.changed == {}  # the task instance itself does not change
    assert r.tries == []
    # once the pod exists, nothing more
    c = Cluster(dag, running_run, dict(tis))
    c.apply(r, NOW)
    assert c.step(NOW).idle


def test_an_existing_pod_not_marked_created_is_not_requested_again():
    c = etl()
    c.settle(NOW)
    c.created.clear()  # the status write was lost, the pods are there
    assert c.step(NOW).idle


def test_a_pod_deleted_while_running_is_a_failed_try():
    c = etl()
    c.settle(NOW)
    started = NOW + timedelta(seconds=3)
    c.set_pod("extract", 1, "Running", running(started), deletion=NOW + timedelta(seconds=30))
    r = c.step(NOW + timedelta(seconds=31))
    assert r.tis["extract"].state == S.FAILED
    assert "deleted" in r.tis["extract"].reason
    assert r.kill == []  # it is already going


# --------------------------------------------------------------------------------- image errors
def test_an_image_that_never_pulls_fails_the_try_and_kills_its_pod():
    c = etl()
    c.settle(NOW)
    c.set_pod("extract", 1, "Pending", waiting("ImagePullBackOff", 'Back-off pulling image "etl:nope"'), created=NOW)
    assert c.step(NOW + timedelta(minutes=4)).idle
    now = NOW + timedelta(minutes=5)
    r = c.settle(now, image_pull_timeout=timedelta(minutes=5))
    ti = c.tis["extract"]
    assert ti.state == S.FAILED
    assert "ImagePullBackOff" in ti.reason
    assert r.kill == [TryKill("extract", 1, ti.reason)]
    assert r.finished == [("extract", 1)]


# ------------------------------------------------------------------------------ may_start, slots
def test_may_start_false_keeps_a_queued_run_queued():
    c = etl()
    r = c.step(NOW, may_start=False)
    assert r.idle
    assert r.create == []
    assert r.run.state == DagRunState.QUEUED
    assert r.run == c.run
    assert r.tis == {}


def test_may_start_false_does_not_stop_a_running_run():
    c = etl()
    c.settle(NOW)
    c.set_pod("extract", 1, "Succeeded", terminated(0, NOW, NOW + timedelta(seconds=5)))
    r = c.step(NOW + timedelta(seconds=6), may_start=False)
    assert [q.task_id for q in r.create] == ["transform"]


def test_free_slots_limits_the_pods_requested():
    c = cluster([{"name": n, "command": ["true"]} for n in ("a", "b", "c")])
    r = c.settle(NOW, free_slots=2)
    assert [q.task_id for q in r.create] == ["a", "b"]
    assert states(c) == {"a": "queued", "b": "queued", "c": "none"}
    assert c.step(NOW, free_slots=0).idle
    r = c.settle(NOW + timedelta(seconds=1), free_slots=1)
    assert [q.task_id for q in r.create] == ["c"]


def test_max_active_tasks_limits_the_pods_requested():
    c = cluster([{"name": n, "command": ["true"]} for n in ("a", "b", "c")], maxActiveTasks=1)
    r = c.settle(NOW)
    assert [q.task_id for q in r.create] == ["a"]


# ------------------------------------------------------------------------------- template errors
def test_a_template_error_fails_the_try_naming_the_field_and_creates_no_pod():
    c = cluster([
        {"name": "a", "command": ["sh", "{{ dag_run.conf.target }}"]},
        {"name": "b", "command": ["true"], "dependsOn": ["a"]},
    ])
    r = c.step(NOW)
    assert r.create == []
    ti = r.tis["a"]
    assert ti.state == S.FAILED
    assert ti.try_number == 1
    assert "command[1]" in ti.reason
    assert "template" in ti.reason
    assert "target" in ti.reason
    [rec] = r.tries
    assert rec.state == S.FAILED and rec.reason == ti.reason
    assert r.wake_at == NOW  # the run's state follows in the next pass
    c.apply(r, NOW)
    r2 = c.settle(NOW)
    assert r2.run.state == DagRunState.FAILED
    assert states(c) == {"a": "failed", "b": "upstream_failed"}


def test_a_template_error_in_env_names_the_variable():
    c = cluster([{"name": "a", "command": ["true"], "env": {"TARGET": "{{ params.target }}"}}])
    r = c.step(NOW)
    assert r.create == []
    assert "env.TARGET" in r.tis["a"].reason


def test_a_template_error_with_retries_is_retried():
    c = cluster([{"name": "a", "command": ["sh", "{{ nope }}"], "retries": 1, "retryDelay": "10s"}])
    r = c.step(NOW)
    assert r.tis["a"].state == S.UP_FOR_RETRY
    assert r.tis["a"].next_retry_at == NOW + timedelta(seconds=10)


def test_conf_fixes_the_template():
    dag = dag_of([{"name": "a", "command": ["sh", "{{ dag_run.conf.target }}"]}])
    run = run_from_object(dag, run_body(spec={"conf": {"target": "/data/x"}}))
    r = run_pass(dag, run, {}, {}, {}, NOW)
    assert r.create[0].command == ["sh", "/data/x"]


# ----------------------------------------------------------------------------- execution timeout
def test_execution_timeout_kills_the_pod():
    c = etl(executionTimeout="30s")
    c.settle(NOW)
    started = NOW + timedelta(seconds=2)
    c.set_pod("extract", 1, "Running", running(started))
    r = c.settle(started + timedelta(seconds=10))
    assert r.wake_at == started + timedelta(seconds=30)
    now = started + timedelta(seconds=30)
    r = c.step(now)
    assert r.kill == [TryKill("extract", 1, "execution timeout after 30s")]
    ti = r.tis["extract"]
    assert ti.state == S.FAILED
    assert ti.reason == "execution timeout after 30s"
    assert ti.end_date == now
    assert r.finished == [("extract", 1)]
    [rec] = r.tries
    assert (rec.state, rec.start_date, rec.end_date, rec.reason) == (S.FAILED, started, now, "execution timeout after 30s")
    assert rec.pod_name == names.pod_name("etl", RUN_NAME, "extract", 1)
    c.apply(r, now)
    again = c.step(now)
    assert again.idle


def test_a_task_removed_from_the_dag_has_its_pod_killed():
    c = etl()
    c.settle(NOW)
    c.set_pod("audit", 1, "Running", running(NOW))
    c.settle(NOW + timedelta(seconds=1))
    c.dag = dag_of([t for t in [
        {"name": "extract", "command": ["true"]},
        {"name": "transform", "command": ["true"], "dependsOn": ["extract"]},
        {"name": "load", "command": ["true"], "dependsOn": ["transform"]},
    ]])
    r = c.step(NOW + timedelta(seconds=2))
    assert r.kill == [TryKill("audit", 1, "task removed from the DAG")]
    assert r.tis["audit"].state == S.REMOVED


# ------------------------------------------------------------------------------------ whole runs
def test_a_whole_run_to_success_pass_by_pass():
    c = etl()
    now = NOW
    c.settle(now)
    order = []
    while not c.run.finished:
        active = [(t, ti.try_number) for t, ti in c.tis.items() if ti.state in (S.QUEUED, S.RUNNING)]
        assert active, states(c)
        for task, try_number in active:
            c.set_pod(task, try_number, "Succeeded", terminated(0, now, now + timedelta(seconds=5)))
            order.append(task)
        now += timedelta(seconds=6)
        c.settle(now)
    assert c.run.state == DagRunState.SUCCESS
    assert order == ["extract", "audit", "transform", "load"]
    assert set(states(c).values()) == {"success"}


@pytest.mark.parametrize("free_slots", [None, 1, 5])
def test_the_idle_result_asks_for_nothing(free_slots):
    c = etl()
    r = c.settle(NOW, free_slots=free_slots)  # settle asserts the fixed point
    left = None if free_slots is None else max(0, free_slots - len(r.create))
    again = c.step(NOW, free_slots=left)
    assert again.changed == {} and again.tries == [] and again.create == [] and again.kill == []
    assert again.idle


@pytest.mark.parametrize("phase_kw, exit_code, words", [
    ({"state": terminated(1, NOW, NOW + timedelta(seconds=9))}, 1, ["exit code 1"]),
    ({"state": terminated(137, NOW, NOW + timedelta(seconds=9), reason="OOMKilled")}, 137, ["OOMKilled", "memory"]),
    ({"state": terminated(137, NOW, NOW + timedelta(seconds=9)), "reason": "Evicted",
      "message": "The node was low on resource: ephemeral-storage."}, 137, ["evicted", "ephemeral-storage"]),
    ({"state": terminated(137, NOW, NOW + timedelta(seconds=9)), "reason": "DeadlineExceeded",
      "message": "Pod was active on the node longer than the specified deadline", "active_deadline": 30},
     137, ["activeDeadlineSeconds", "30s"]),
])
def test_a_failed_pod_records_why(phase_kw, exit_code, words):
    c = etl()
    c.settle(NOW)
    c.set_pod("extract", 1, "Failed", phase_kw.pop("state"), **phase_kw)
    r = c.settle(NOW + timedelta(seconds=10))
    ti = c.tis["extract"]
    assert ti.state == S.FAILED
    assert ti.exit_code == exit_code
    assert ti.end_date == NOW + timedelta(seconds=9)
    for word in words:
        assert word in ti.reason
    [rec] = r.tries
    assert rec.reason == ti.reason and rec.exit_code == exit_code and rec.hostname == "worker-1"
    assert r.kill == []  # the pod ran: it is kept for its log


def test_a_met_controller_check_stores_each_xcom_under_its_own_key():
    """A trigger task's verdict carries the triggered run's id as ``return_value`` (as the local trigger task
    writes it), not a dict of everything the controller knows; a successor's template pulls it."""
    c = cluster([
        {"name": "kick", "trigger": {"dag": "child"}},
        {"name": "after", "dependsOn": ["kick"], "command": ["echo", "{{ ti.xcom_pull('kick') }}"]},
    ])
    c.settle(NOW)
    met = {"kick": runpass.ControllerCheck("met", "triggered DAGRun child-1", xcoms={"return_value": "child-run-1"})}
    later = NOW + timedelta(seconds=1)
    r = c.step(later, checks=met)
    c.apply(r, later)
    assert c.tis["kick"].state == S.SUCCESS
    assert r.xcoms == {("kick", 1): {"return_value": "child-run-1"}}
    [after] = r.create
    assert after.task_id == "after" and after.command == ["echo", "child-run-1"]

"""app.metrics: what a pass counts (both executors call it the same way)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from prometheus_client import REGISTRY

from kubedag.app import metrics
from kubedag.core import engine
from kubedag.core.spec.dag import DAG
from kubedag.core.spec.loader import parse_dag
from kubedag.core.states import DagRunState, RunType
from kubedag.core.states import TaskInstanceState as S
from kubedag.core.tries import TryRecord

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def a_run(state: DagRunState, **kw) -> engine.DagRun:
    return engine.DagRun("unit", "manual__1", RunType.MANUAL, T0, T0, T0, state=state, **kw)


def chain() -> DAG:
    return parse_dag({
        "apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "unit-chain"},
        "spec": {"tasks": [{"name": "a", "command": ["true"]}, {"name": "b", "command": ["true"], "dependsOn": ["a"]}]}})


def test_a_try_failed_and_retried_within_one_pass_counts_up_for_retry_and_its_wait_to_run():
    run, key = a_run(DagRunState.RUNNING, start_date=T0), ("ns", "unit-retry")
    metrics.try_started("unit-retry", chain(), key, {}, "a", 1, T0, T0 + timedelta(seconds=1))
    retries = value("kubedag_task_instance_finished_total", dag_id="unit-retry", state="up_for_retry")
    waits = value("kubedag_task_instance_queued_to_running_seconds_sum", dag_id="unit-retry")
    before = {"a": engine.TaskInstance("a", S.QUEUED, 1)}
    after = {"a": engine.TaskInstance("a", S.QUEUED, 2)}  # failed, up_for_retry, queued again: retryDelay 0s
    tries = [TryRecord("a", 1, S.FAILED, T0 + timedelta(seconds=3), T0 + timedelta(seconds=4), 1, "exit code 1")]
    metrics.record_pass("unit-retry", key, run, run, before, after, tries)
    assert value("kubedag_task_instance_finished_total", dag_id="unit-retry", state="up_for_retry") == retries + 1
    assert value("kubedag_task_instance_queued_to_running_seconds_sum", dag_id="unit-retry") == waits + 3


def test_a_cleared_run_that_runs_again_counts_as_started_again_and_its_finish_once():
    started = value("kubedag_dag_run_started_total", dag_id="unit-clear", run_type="manual")
    done = value("kubedag_dag_run_finished_total", dag_id="unit-clear", run_type="manual", state="success")
    durations = value("kubedag_dag_run_duration_seconds_sum", dag_id="unit-clear", run_type="manual", state="success")
    finished = a_run(DagRunState.SUCCESS, start_date=T0, end_date=T0 + timedelta(minutes=1))
    rerun = a_run(DagRunState.RUNNING, start_date=T0 + timedelta(minutes=5))
    again = a_run(DagRunState.SUCCESS, start_date=T0 + timedelta(minutes=5), end_date=T0 + timedelta(minutes=7))
    metrics.record_pass("unit-clear", ("ns", "c"), finished, rerun, {}, {})
    metrics.record_pass("unit-clear", ("ns", "c"), rerun, rerun, {}, {})
    metrics.record_pass("unit-clear", ("ns", "c"), rerun, again, {}, {})
    assert value("kubedag_dag_run_started_total", dag_id="unit-clear", run_type="manual") == started + 1
    assert value("kubedag_dag_run_finished_total", dag_id="unit-clear", run_type="manual", state="success") == done + 1
    assert value("kubedag_dag_run_duration_seconds_sum", dag_id="unit-clear", run_type="manual",
                 state="success") == durations + 120


def test_successor_latency_is_measured_for_first_tries_whose_upstreams_ended_and_never_negative():
    dag, key = chain(), ("ns", "unit-succ")
    count = value("kubedag_task_instance_successor_latency_seconds_count", dag_id="unit-succ")
    total = value("kubedag_task_instance_successor_latency_seconds_sum", dag_id="unit-succ")
    ended = {"a": engine.TaskInstance("a", S.SUCCESS, 1, T0, T0 + timedelta(seconds=10))}
    metrics.try_started("unit-succ", dag, key, ended, "b", 1, T0, T0 + timedelta(seconds=10.25))
    metrics.try_started("unit-succ", dag, key, ended, "b", 2, T0, T0 + timedelta(seconds=99))  # a retry
    metrics.try_started("unit-succ", dag, key, ended, "b", 1, T0, T0 + timedelta(seconds=99), first_poke=False)
    metrics.try_started("unit-succ", dag, key, {}, "b", 1, T0, T0 + timedelta(seconds=99))  # upstream not ended
    metrics.try_started("unit-succ", dag, key, ended, "a", 1, T0, T0 + timedelta(seconds=99))  # no upstream
    metrics.try_started("unit-succ", dag, key, ended, "b", 1, T0, T0 + timedelta(seconds=9))  # a node's clock ahead
    assert value("kubedag_task_instance_successor_latency_seconds_count", dag_id="unit-succ") == count + 2
    assert value("kubedag_task_instance_successor_latency_seconds_sum", dag_id="unit-succ") == total + 0.25


def test_db_writes_pending_until_a_write_of_the_run_lands():
    pending = len(metrics.PENDING)
    try:
        with metrics.db_write("save_pass", ("ns", "dag", "unit-run")):
            raise OSError("connection refused")
    except OSError:
        pass
    assert len(metrics.PENDING) == pending + 1
    assert REGISTRY.get_sample_value("kubedag_db_writes_pending") == pending + 1
    with metrics.db_write("save_pass", ("ns", "dag", "unit-run")):
        pass
    assert len(metrics.PENDING) == pending

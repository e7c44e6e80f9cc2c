"""The local scheduler's store on SQLite and PostgreSQL: the single-scheduler lock and heartbeat (the ``job``
table), DAG rows with ``is_paused_upon_creation``, scheduled runs and active runs read back."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from kubedag.app.scheduler_ports import SchedulerLocked
from kubedag.core import engine
from kubedag.core.spec import parse_dag
from kubedag.core.states import RunType
from kubedag.core.tries import TryRecord
from kubedag.store.scheduler_store import SqlSchedulerStore

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def dag(paused: bool = False):  # noqa: ANN201
    return parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "etl"},
                      "spec": {"schedule": "@daily", "startDate": "2026-11-01T00:00:00Z", "paused": paused,
                               "tasks": [{"name": "a", "command": ["true"]}]}})


def test_one_scheduler_holds_the_lock_until_it_is_released_or_stale(Session):
    store = SqlSchedulerStore(Session)
    first = store.acquire("host-a", 100, T0, lambda job: False)
    with pytest.raises(SchedulerLocked, match="pid 100 on host-a, last heartbeat 2026-11-01T00:00:00"):
        store.acquire("host-b", 200, T0, lambda job: False)
    store.heartbeat(first, T0 + timedelta(seconds=5))
    assert store.running_scheduler().latest_heartbeat == T0 + timedelta(seconds=5)
    seen = []
    second = store.acquire("host-b", 200, T0 + timedelta(minutes=1), lambda job: seen.append(job) or True)
    assert [(j.id, j.pid, j.latest_heartbeat) for j in seen] == [(first, 100, T0 + timedelta(seconds=5))]
    store.release(second, T0 + timedelta(minutes=2))
    assert store.running_scheduler() is None
    third = store.acquire("host-c", 300, T0 + timedelta(minutes=3), lambda job: False)
    assert len({first, second, third}) == 3
    assert (store.running_scheduler().pid, store.running_scheduler().hostname) == (300, "host-c")


def test_dags_start_paused_as_their_spec_says_then_the_db_flag_wins(Session):
    store = SqlSchedulerStore(Session)
    assert store.sync_dag(dag(paused=True), "/dags/etl.yaml", paused_upon_creation=True) is True
    assert store.sync_dag(dag(paused=False), "/dags/etl.yaml", paused_upon_creation=False) is True
    assert store.paused() == {"etl": True}


def test_runs_created_once_read_back_active_with_task_instances_and_xcoms(Session):
    store = SqlSchedulerStore(Session)
    d = dag()
    store.sync_dag(d, "/dags/etl.yaml", False)
    run = engine.DagRun(dag_id="etl", run_id="scheduled__1", run_type=RunType.SCHEDULED, logical_date=T0,
                        data_interval_start=T0, data_interval_end=T0 + timedelta(days=1))
    assert store.create_run(run, T0) is True
    assert store.create_run(run, T0) is False
    assert store.last_scheduled_interval("etl").end == T0 + timedelta(days=1)
    ti = engine.TaskInstance(task_id="a", state="running", try_number=1, start_date=T0)
    store.save(d, replace(run, state="running", start_date=T0), [ti],
               [TryRecord("a", 1, "running", T0)], xcoms=[("a", 1, {"return_value": 7})])
    [active] = store.active_runs()
    assert (active.run.run_id, str(active.run.state)) == ("scheduled__1", "running")
    assert (str(active.tis["a"].state), active.tis["a"].try_number) == ("running", 1)
    assert active.xcoms == {("a", "return_value"): 7}

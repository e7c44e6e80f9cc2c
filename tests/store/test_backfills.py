"""Backfills of local mode in the metadata DB (SQLite and PostgreSQL), as Airflow 3's ``/api/v2/backfills`` keeps
them: created with validation and one active backfill per DAG (409), paused, cancelled (queued runs failed,
running ones left to finish); the scheduler's side creates and re-runs runs only while the backfill is open."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kubedag.app.catalog import BackfillRequest
from kubedag.app.operations.backfill import plan_backfill
from kubedag.app.operations.ports import AlreadyExists, InvalidRequest, NotFound, OperationError
from kubedag.local.folder import LocalDagFolder
from kubedag.store import repository
from kubedag.store.backfills import SqlBackfills
from kubedag.store.catalog import SqlCatalog
from kubedag.store.scheduler_store import SqlSchedulerStore

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)
NOW = T0 + 30 * DAY

DAILY = """\
apiVersion: kubedag.io/v1alpha1
kind: DAG
metadata: {name: daily}
spec:
  schedule: "@daily"
  startDate: "2026-11-01T00:00:00Z"
  maxActiveRuns: 3
  tasks:
    - {name: a, command: [echo, a]}
    - {name: b, command: [echo, b], dependsOn: [a]}
"""
MANUAL_ONLY = """\
apiVersion: kubedag.io/v1alpha1
kind: DAG
metadata: {name: manual-only}
spec:
  tasks: [{name: a, command: [echo, a]}]
"""


@pytest.fixture
def folder(tmp_path: Path) -> LocalDagFolder:
    path = tmp_path / "dags"
    path.mkdir()
    (path / "daily.yaml").write_text(DAILY)
    (path / "manual.yaml").write_text(MANUAL_ONLY)
    (path / "bad.yaml").write_text("apiVersion: kubedag.io/v1alpha1\nkind: DAG\nmetadata: {name: bad}\nspec: {}\n")
    return LocalDagFolder(path)


@pytest.fixture
def backfills(Session, folder):  # noqa: N803
    return SqlBackfills(Session, folder, clock=lambda: NOW)


def request(**kw) -> BackfillRequest:
    kw.setdefault("dag_id", "daily")
    kw.setdefault("from_date", T0)
    kw.setdefault("to_date", T0 + 4 * DAY)
    return BackfillRequest(**kw)


def test_create_validates_and_refuses_a_second_active_backfill(backfills, Session, folder):  # noqa: N803
    info = backfills.create(request(max_active_runs=2, dag_run_conf={"x": 1}, reprocess_behavior="failed"))
    assert (info.dag_id, info.from_date, info.to_date, info.max_active_runs, info.reprocess_behavior) == (
        "daily", T0, T0 + 4 * DAY, 2, "failed")
    assert (info.is_paused, info.cancelled, info.completed_at, info.created_at, dict(info.dag_run_conf)) == (
        False, False, None, NOW, {"x": 1})
    with pytest.raises(AlreadyExists, match=f"active backfill \\({info.id}\\)"):
        backfills.create(request())
    with pytest.raises(NotFound, match="`nope` was not found"):
        backfills.create(request(dag_id="nope"))
    with pytest.raises(InvalidRequest, match="dag_id: DAG 'bad' is invalid"):
        backfills.create(request(dag_id="bad"))
    with pytest.raises(InvalidRequest, match="has no schedule"):
        backfills.create(request(dag_id="manual-only"))
    with pytest.raises(InvalidRequest, match="reprocess_behavior: 'all'"):
        backfills.create(request(reprocess_behavior="all"))
    with pytest.raises(InvalidRequest, match="max_active_runs: must be >= 1"):
        backfills.create(request(max_active_runs=0))
    with pytest.raises(InvalidRequest, match="to_date .* is before from_date"):
        backfills.create(request(from_date=T0 + DAY, to_date=T0))
    with pytest.raises(InvalidRequest, match="from_date: expected a timezone-aware"):
        backfills.create(request(from_date=datetime(2026, 11, 1)))
    default = SqlCatalog(Session, folder).backfill(info.id)
    assert default == info
    assert backfills.cancel(info.id).completed_at == NOW
    second = backfills.create(request())  # the first one is completed: a new one may start
    assert second.max_active_runs == 3  # the DAG's maxActiveRuns
    assert [b.id for b in SqlCatalog(Session, folder).backfills("daily")] == [second.id, info.id]


def test_pause_unpause_and_cancel(backfills, Session, folder):  # noqa: N803
    info = backfills.create(request(max_active_runs=5))
    store = SqlSchedulerStore(Session)
    dag = folder.scan().dags["daily"][0]
    planned = plan_backfill(dag, T0, T0 + 4 * DAY, {})
    assert backfills.set_paused(info.id, True).is_paused
    assert store.start_backfill_run(int(info.id), dag, planned[0], NOW) is False  # paused: nothing starts
    assert backfills.set_paused(info.id, False).is_paused is False
    assert [store.start_backfill_run(int(info.id), dag, p, NOW) for p in planned[:3]] == [True, True, True]
    with Session.begin() as s:
        repository.set_dag_run_state(s, "daily", planned[0].run_id, "running")
    cancelled = backfills.cancel(info.id)
    assert (cancelled.cancelled, cancelled.is_paused, cancelled.completed_at) == (True, True, NOW)
    with Session() as s:
        states = {r.run_id: (r.state, r.run_type, r.backfill_id) for r in repository.list_dag_runs(s, "daily")}
    assert states == {planned[0].run_id: ("running", "backfill", int(info.id)),  # running runs finish
                      planned[1].run_id: ("failed", "backfill", int(info.id)),
                      planned[2].run_id: ("failed", "backfill", int(info.id))}
    assert store.start_backfill_run(int(info.id), dag, planned[3], NOW) is False  # cancelled: nothing more
    assert backfills.cancel(info.id) == cancelled
    with pytest.raises(OperationError, match="has completed"):
        backfills.set_paused(info.id, False)
    with pytest.raises(NotFound):
        backfills.cancel("12345")
    with pytest.raises(NotFound, match="integer"):
        backfills.set_paused("abc", True)
    assert [b.id for b in store.open_backfills()] == []


def test_a_reset_clears_an_existing_run_into_the_backfill(backfills, Session, folder):  # noqa: N803
    dag = folder.scan().dags["daily"][0]
    with Session.begin() as s:
        repository.upsert_dag(s, "daily", spec=dict(dag.spec))
        repository.create_dag_run(s, dag_id="daily", run_id="scheduled__d0", run_type="scheduled", logical_date=T0,
                                  data_interval_start=T0, data_interval_end=T0 + DAY, state="failed")
        repository.upsert_task_instance(s, "daily", "scheduled__d0", "a", state="success", try_number=1)
        repository.upsert_task_instance(s, "daily", "scheduled__d0", "b", state="failed", try_number=1)
        repository.set_xcoms(s, "daily", "scheduled__d0", "a", 1, {"k": 1})
    info = backfills.create(request(reprocess_behavior="failed"))
    store = SqlSchedulerStore(Session)
    existing = store.runs_at_dates("daily", T0, T0 + 4 * DAY)
    assert {d: (r.run_id, r.state, r.backfill_id) for d, r in existing.items()} == {
        T0: ("scheduled__d0", "failed", None)}
    planned = plan_backfill(dag, T0, T0, {T0: ("scheduled__d0", "failed")}, reset=True)
    assert store.start_backfill_run(int(info.id), dag, planned[0], NOW) is True
    with Session() as s:
        run = repository.get_dag_run(s, "daily", "scheduled__d0")
        tis = {t.task_id: (t.state, t.try_number) for t in repository.get_task_instances(s, "daily", "scheduled__d0")}
        xcoms = repository.list_xcoms(s, "daily", "scheduled__d0")
    assert (run.state, run.run_type, run.backfill_id, run.end_date) == ("queued", "backfill", int(info.id), None)
    assert tis == {"a": (None, 1), "b": (None, 1)} and xcoms == []
    assert SqlCatalog(Session, folder).run("daily", "scheduled__d0").backfill_id == info.id
    store.complete_backfill(int(info.id), NOW)
    done = SqlCatalog(Session, folder).backfill(info.id)
    assert (done.completed_at, done.cancelled, done.runs_total, done.runs_done) == (NOW, False, 1, 0)

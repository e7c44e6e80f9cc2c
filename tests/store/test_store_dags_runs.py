"""repository: dags and dag runs (both backends, via the db_url fixture)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from kubedag.store import DagNotFound, DagRunNotFound, repository as repo
from kubedag.store.models import DagRow, DagRunRow

from ._helpers import T0, UTC, make_run

H = dt.timedelta(hours=1)


# ------------------------------------------------------------------------ dags
def test_upsert_dag_inserts_then_updates(Session):
    with Session.begin() as s:
        row = repo.upsert_dag(s, "etl", {"schedule": "@daily", "tasks": [{"id": "a"}]}, namespace="ns")
        assert row.is_paused is False
        assert row.created_at.tzinfo is not None and row.created_at == row.updated_at
        created = row.created_at
    with Session.begin() as s:
        row = repo.upsert_dag(s, "etl", {"schedule": "@hourly"}, namespace="ns", fileloc="/d/etl.yaml")
        assert row.spec == {"schedule": "@hourly"}
        assert row.fileloc == "/d/etl.yaml"
        assert row.created_at == created and row.updated_at > created
    with Session() as s:
        assert [d.dag_id for d in repo.list_dags(s)] == ["etl"]
        assert repo.get_dag(s, "etl").spec == {"schedule": "@hourly"}
        assert repo.get_dag(s, "nope") is None


def test_upsert_dag_is_idempotent(Session):
    spec = {"tasks": [{"id": "a", "retries": 2}], "tags": ("x", "y")}
    with Session.begin() as s:
        repo.upsert_dag(s, "etl", spec, namespace="ns")
    with Session.begin() as s:
        before = repo.get_dag(s, "etl").updated_at
        row = repo.upsert_dag(s, "etl", spec, namespace="ns")  # same again (tuple == JSON list)
        assert row.updated_at == before
        assert not s.dirty


def test_upsert_dag_copies_spec_and_keeps_pause_flag(session):
    spec = {"a": 1}
    row = repo.upsert_dag(session, "etl", spec, is_paused=True)
    spec["a"] = 2  # caller mutating its dict later must not leak into the row
    assert row.spec == {"a": 1}
    assert repo.upsert_dag(session, "etl", {"a": 1}).is_paused is True
    assert repo.set_dag_paused(session, "etl", False).is_paused is False
    with pytest.raises(DagNotFound):
        repo.set_dag_paused(session, "nope", True)
    with pytest.raises(TypeError):
        repo.upsert_dag(session, "bad", {"x": object()})


# -------------------------------------------------------------------- dag runs
def test_create_dag_run_defaults_and_round_trip(Session):
    with Session.begin() as s:
        run = make_run(
            s, run_id="scheduled__2026-01-01", data_interval_start=T0 - 24 * H,
            data_interval_end=T0, conf={"k": [1, 2]},
        )
        assert run.id is not None
        assert run.state == "queued" and run.run_type == "scheduled"
        assert run.queued_at is not None and run.queued_at.tzinfo == UTC
        assert run.start_date is None and run.end_date is None
    with Session() as s:
        run = repo.get_dag_run(s, "etl", "scheduled__2026-01-01")
        assert run.logical_date == T0 and run.logical_date.tzinfo == UTC
        assert run.data_interval_start == T0 - 24 * H and run.data_interval_end == T0
        assert run.conf == {"k": [1, 2]}
        assert repo.get_dag_run(s, "etl", "other") is None


def test_create_dag_run_is_idempotent(Session):
    with Session.begin() as s:
        first = make_run(s, run_id="manual__1", run_type="manual", conf={"a": 1})
        again = make_run(s, run_id="manual__1", run_type="manual", conf={"a": 1})
        assert again is first
    with Session.begin() as s:
        # Existing run: returned unchanged, other arguments ignored.
        again = repo.create_dag_run(
            s, dag_id="etl", run_id="manual__1", run_type="backfill",
            logical_date=T0 + H, conf={"b": 2}, state="running",
        )
        assert (again.id, again.run_type, again.conf, again.state) == (first.id, "manual", {"a": 1}, "queued")
        assert s.scalar(sa.select(sa.func.count()).select_from(DagRunRow)) == 1


def test_create_dag_run_errors(session):
    with pytest.raises(DagNotFound):
        repo.create_dag_run(session, dag_id="nope", run_id="r", run_type="manual", logical_date=T0)
    repo.upsert_dag(session, "etl", {})
    with pytest.raises(ValueError, match="run_type"):
        repo.create_dag_run(session, dag_id="etl", run_id="r", run_type="cron", logical_date=T0)
    with pytest.raises(ValueError, match="state"):
        repo.create_dag_run(session, dag_id="etl", run_id="r", run_type="manual", logical_date=T0, state="up")
    with pytest.raises(ValueError, match="naive"):
        repo.create_dag_run(session, dag_id="etl", run_id="r", run_type="manual",
                            logical_date=dt.datetime(2026, 1, 1))
    assert repo.list_dag_runs(session) == []


def test_unique_dag_id_logical_date(session):
    make_run(session, run_id="a", logical_date=T0)
    make_run(session, dag_id="other", run_id="a", logical_date=T0)  # other DAG: fine
    with pytest.raises(IntegrityError):
        make_run(session, run_id="b", logical_date=T0)


def test_unique_dag_id_run_id_in_schema(session):
    make_run(session, run_id="a", logical_date=T0)
    session.add(DagRunRow(dag_id="etl", run_id="a", run_type="manual", state="queued", logical_date=T0 + H))
    with pytest.raises(IntegrityError):
        session.flush()


def test_dag_run_needs_its_dag_in_schema(session):
    session.add(DagRunRow(dag_id="ghost", run_id="a", run_type="manual", state="queued", logical_date=T0))
    with pytest.raises(IntegrityError):
        session.flush()


def test_list_dag_runs_newest_logical_date_first(session):
    for i, ld in enumerate([T0 + 2 * H, T0, T0 + 5 * H, T0 + H]):
        make_run(session, run_id=f"r{i}", logical_date=ld)
    make_run(session, dag_id="b", run_id="x", logical_date=T0 + 3 * H)
    repo.set_dag_run_state(session, "etl", "r2", "running")

    assert [r.run_id for r in repo.list_dag_runs(session, "etl")] == ["r2", "r0", "r3", "r1"]
    assert [r.run_id for r in repo.list_dag_runs(session)] == ["r2", "x", "r0", "r3", "r1"]
    assert [r.run_id for r in repo.list_dag_runs(session, "etl", limit=2)] == ["r2", "r0"]
    assert [r.run_id for r in repo.list_dag_runs(session, limit=None)][-1] == "r1"
    assert [r.run_id for r in repo.list_dag_runs(session, state="running")] == ["r2"]
    assert len(repo.list_dag_runs(session, "etl", state=["queued", "running"])) == 4
    assert repo.list_dag_runs(session, "nope") == []


def test_set_dag_run_state(session):
    make_run(session)
    start, end = T0 + H, T0 + 2 * H
    run = repo.set_dag_run_state(session, "etl", "r1", "running", start_date=start)
    assert (run.state, run.start_date, run.end_date) == ("running", start, None)
    run = repo.set_dag_run_state(session, "etl", "r1", "success", end_date=end)
    assert (run.state, run.start_date, run.end_date) == ("success", start, end)
    # Idempotent: same call again changes nothing.
    repo.set_dag_run_state(session, "etl", "r1", "success", end_date=end)
    assert not session.dirty
    # Re-queue (Airflow "clear"): queued_at moves.
    old = run.queued_at
    assert repo.set_dag_run_state(session, "etl", "r1", "queued").queued_at > old
    with pytest.raises(DagRunNotFound):
        repo.set_dag_run_state(session, "etl", "nope", "running")
    with pytest.raises(ValueError):
        repo.set_dag_run_state(session, "etl", "r1", "paused")


def test_deleting_a_dag_cascades(Session):
    with Session.begin() as s:
        make_run(s)
        repo.upsert_task_instance(s, "etl", "r1", "a", state="running", try_number=1)
        repo.record_try(s, "etl", "r1", "a", 1, state="running")
    with Session.begin() as s:
        s.execute(sa.delete(DagRow).where(DagRow.dag_id == "etl"))
    with Session() as s:
        assert repo.list_dag_runs(s) == []
        assert repo.get_task_instances(s, "etl", "r1") == []
        assert repo.get_tries(s, "etl", "r1", "a") == []


def test_concurrent_create_dag_run_same_key(Session):
    """Two transactions creating the same run: both get the one row, neither fails."""
    with Session.begin() as s:
        repo.upsert_dag(s, "etl", {})
    results: dict[str, object] = {}

    def second_writer() -> None:
        try:
            with Session.begin() as s2:
                results["row"] = (make_run(s2, run_id="same").id, "ok")
        except Exception as exc:  # noqa: BLE001
            results["row"] = (None, repr(exc))

    with Session.begin() as s1:
        first = make_run(s1, run_id="same")
        thread = threading.Thread(target=second_writer)
        thread.start()
        thread.join(0.5)  # the second writer waits on our lock / uncommitted row
        assert thread.is_alive()
        first_id = first.id
    thread.join(20)
    assert results["row"] == (first_id, "ok")

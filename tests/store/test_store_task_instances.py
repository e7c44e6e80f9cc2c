"""repository: task instances, tries (history), time zones, caller-owned transactions."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from kubedag.store import DagRunNotFound, TaskInstanceNotFound, repository as repo
from kubedag.store.models import DagRunRow, TaskInstanceHistoryRow

from ._helpers import T0, UTC, make_run

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


# -------------------------------------------------------------- task instances
def test_upsert_task_instance_insert_defaults(Session):
    with Session.begin() as s:
        make_run(s)
        ti = repo.upsert_task_instance(s, "etl", "r1", "extract")
        assert (ti.state, ti.try_number, ti.max_tries) == (None, 0, 0)
    with Session() as s:
        ti = repo.get_task_instance(s, "etl", "r1", "extract")
        assert (ti.state, ti.try_number, ti.max_tries, ti.exit_code) == (None, 0, 0, None)
        assert ti.updated_at.tzinfo == UTC


def test_upsert_task_instance_updates_only_given_fields(Session):
    start, end = T0 + dt.timedelta(minutes=1), T0 + dt.timedelta(minutes=2, seconds=30)
    with Session.begin() as s:
        make_run(s)
        repo.upsert_task_instance(s, "etl", "r1", "t", state="scheduled", max_tries=3)
    with Session.begin() as s:
        repo.upsert_task_instance(
            s, "etl", "r1", "t", state="running", try_number=1, start_date=start,
            hostname="node-1", pod_name="etl-r1-t-1",
        )
    with Session.begin() as s:
        repo.upsert_task_instance(s, "etl", "r1", "t", state="success", end_date=end, duration=90, exit_code=0)
    with Session() as s:
        ti = repo.get_task_instance(s, "etl", "r1", "t")
        assert (ti.state, ti.try_number, ti.max_tries) == ("success", 1, 3)
        assert (ti.start_date, ti.end_date, ti.duration, ti.exit_code) == (start, end, 90.0, 0)
        assert (ti.hostname, ti.pod_name, ti.next_retry_at) == ("node-1", "etl-r1-t-1", None)


def test_upsert_task_instance_is_idempotent(Session):
    fields = dict(state="up_for_retry", try_number=1, max_tries=2, duration=1.25,
                  next_retry_at=T0 + dt.timedelta(seconds=30), exit_code=137)
    with Session.begin() as s:
        make_run(s)
        repo.upsert_task_instance(s, "etl", "r1", "t", **fields)
    with Session.begin() as s:
        before = repo.get_task_instance(s, "etl", "r1", "t").updated_at
        statements: list[str] = []

        def record(conn, cursor, statement, *args):
            statements.append(statement)

        event.listen(s.get_bind(), "before_cursor_execute", record)
        try:
            ti = repo.upsert_task_instance(s, "etl", "r1", "t", **fields)
        finally:
            event.remove(s.get_bind(), "before_cursor_execute", record)
        assert ti.updated_at == before
        assert not [q for q in statements if q.lstrip().upper().startswith(("UPDATE", "INSERT"))]


def test_upsert_task_instance_states_and_errors(session):
    make_run(session)
    assert repo.upsert_task_instance(session, "etl", "r1", "t", state="queued").state == "queued"
    assert repo.upsert_task_instance(session, "etl", "r1", "t", state="none").state is None
    with pytest.raises(ValueError, match="state"):
        repo.upsert_task_instance(session, "etl", "r1", "t", state="done")
    with pytest.raises(TypeError, match="unknown field"):
        repo.upsert_task_instance(session, "etl", "r1", "t", colour="red")
    with pytest.raises(ValueError):
        repo.upsert_task_instance(session, "etl", "r1", "t", try_number=-1)
    with pytest.raises(ValueError, match="naive"):
        repo.upsert_task_instance(session, "etl", "r1", "t", start_date=dt.datetime(2026, 1, 1))
    with pytest.raises(DagRunNotFound):
        repo.upsert_task_instance(session, "etl", "nope", "t")


def test_get_task_instances_ordered_by_task_id(session):
    make_run(session)
    make_run(session, run_id="r2", logical_date=T0 + dt.timedelta(days=1))
    for task in ["load", "extract", "transform"]:
        repo.upsert_task_instance(session, "etl", "r1", task)
    repo.upsert_task_instance(session, "etl", "r2", "other")
    assert [t.task_id for t in repo.get_task_instances(session, "etl", "r1")] == ["extract", "load", "transform"]
    assert repo.get_task_instances(session, "etl", "r3") == []
    assert repo.get_task_instance(session, "etl", "r1", "nope") is None


# ----------------------------------------------------------------------- tries
def test_record_try_insert_update_idempotent(Session):
    start = T0 + dt.timedelta(seconds=5)
    with Session.begin() as s:
        make_run(s)
        repo.upsert_task_instance(s, "etl", "r1", "t", state="running", try_number=1)
        h = repo.record_try(s, "etl", "r1", "t", 1, state="running", start_date=start, pod_name="p1")
        assert (h.try_number, h.state, h.end_date) == (1, "running", None)
    with Session.begin() as s:
        log = "line\n" * 20_000  # archived logs can be large (Text)
        fields = dict(state="failed", end_date=start + dt.timedelta(seconds=30), duration=30.0,
                      exit_code=137, reason="OOMKilled", log_location="/logs/etl/r1/t/1.log", log=log)
        repo.record_try(s, "etl", "r1", "t", 1, **fields)
        s.flush()
        assert not s.dirty
        h = repo.record_try(s, "etl", "r1", "t", 1, **fields)  # identical: nothing to write
        assert not s.dirty
    with Session() as s:
        (h,) = repo.get_tries(s, "etl", "r1", "t")
        assert (h.state, h.start_date, h.duration, h.exit_code, h.reason) == ("failed", start, 30.0, 137, "OOMKilled")
        assert h.pod_name == "p1" and h.log == log and h.log_location.endswith("1.log")
        assert s.scalar(sa.select(sa.func.count()).select_from(TaskInstanceHistoryRow)) == 1


def test_tries_ordering_and_latest(session):
    make_run(session)
    repo.upsert_task_instance(session, "etl", "r1", "t", try_number=3)
    for n in (2, 3, 1):
        repo.record_try(session, "etl", "r1", "t", n, state="failed" if n < 3 else "success")
    assert [h.try_number for h in repo.get_tries(session, "etl", "r1", "t")] == [1, 2, 3]
    assert repo.get_try(session, "etl", "r1", "t").try_number == 3
    assert repo.get_try(session, "etl", "r1", "t", try_number=2).state == "failed"
    assert repo.get_try(session, "etl", "r1", "t", try_number=9) is None
    assert repo.get_try(session, "etl", "r1", "other") is None
    assert repo.get_tries(session, "etl", "r1", "other") == []


def test_record_try_errors(session):
    make_run(session)
    with pytest.raises(TaskInstanceNotFound):
        repo.record_try(session, "etl", "r1", "ghost", 1, state="running")
    repo.upsert_task_instance(session, "etl", "r1", "t")
    with pytest.raises(ValueError, match="try_number"):
        repo.record_try(session, "etl", "r1", "t", 0)
    with pytest.raises(TypeError, match="unknown field"):
        repo.record_try(session, "etl", "r1", "t", 1, max_tries=3)


def test_unique_try_in_schema(session):
    make_run(session)
    repo.upsert_task_instance(session, "etl", "r1", "t")
    repo.record_try(session, "etl", "r1", "t", 1)
    session.expunge_all()
    session.add(TaskInstanceHistoryRow(dag_id="etl", run_id="r1", task_id="t", try_number=1))
    with pytest.raises(IntegrityError):
        session.flush()


# ------------------------------------------------------------ time zones
def test_datetimes_round_trip_as_aware_utc(Session):
    local = dt.datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=IST)
    with Session.begin() as s:
        make_run(s, logical_date=local)
        ti = repo.upsert_task_instance(s, "etl", "r1", "t", start_date=local)
        assert ti.start_date.tzinfo == UTC  # normalised before it is even stored
    with Session() as s:
        run = repo.get_dag_run(s, "etl", "r1")
        ti = repo.get_task_instance(s, "etl", "r1", "t")
        for value in (run.logical_date, ti.start_date):
            assert value.tzinfo == UTC
            assert value == local  # same instant
            assert value.replace(tzinfo=None) == dt.datetime(2026, 3, 28, 20, 0, 15, 123456)
        # Filtering with an aware value in another zone finds the row.
        same_instant = local.astimezone(dt.timezone(dt.timedelta(hours=-7)))
        assert repo.list_dag_runs(s)[0].logical_date == same_instant
        stmt = sa.select(sa.func.count()).select_from(DagRunRow).where(DagRunRow.logical_date == same_instant)
        assert s.scalar(stmt) == 1


# ------------------------------------------------- caller-owned transactions
def test_repository_never_commits(session):
    commits: list[object] = []
    event.listen(session, "before_commit", lambda s: commits.append(s))
    make_run(session)
    repo.set_dag_run_state(session, "etl", "r1", "running")
    repo.upsert_task_instance(session, "etl", "r1", "t", state="running", try_number=1)
    repo.record_try(session, "etl", "r1", "t", 1, state="running")
    repo.set_dag_paused(session, "etl", True)
    assert commits == []


def test_rollback_after_repository_calls_leaves_nothing(Session):
    with Session() as s:
        make_run(s)
        repo.upsert_task_instance(s, "etl", "r1", "t", state="running")
        repo.record_try(s, "etl", "r1", "t", 1)
        s.rollback()
    with Session() as s:
        assert repo.list_dags(s) == []
        assert repo.list_dag_runs(s) == []
        assert repo.get_task_instances(s, "etl", "r1") == []
        assert repo.get_tries(s, "etl", "r1", "t") == []


def test_uncommitted_writes_are_invisible_to_other_sessions(Session):
    """PostgreSQL: a concurrent reader does not see uncommitted rows.
    SQLite (BEGIN IMMEDIATE): the reader waits for the writer, then sees them."""
    seen: list[object] = []

    def reader() -> None:
        with Session() as r:
            seen.append(repo.get_dag(r, "etl"))

    with Session() as writer:
        make_run(writer)
        thread = threading.Thread(target=reader)
        thread.start()
        thread.join(0.5)
        if writer.bind.dialect.name == "sqlite":
            assert thread.is_alive() and seen == []
        else:
            assert not thread.is_alive() and seen == [None]
        writer.commit()
    thread.join(20)
    if writer.bind.dialect.name == "sqlite":
        assert seen[0].dag_id == "etl"
    with Session() as r:
        assert repo.get_dag_run(r, "etl", "r1") is not None

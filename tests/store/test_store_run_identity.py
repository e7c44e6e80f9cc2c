"""Issue 13: a run's identity is (namespace, DAG, run id), held by one DAGRun object, on SQLite and PostgreSQL.

The unique constraint on ``dag_run (dag_id, run_id)`` enforces one run per id; the run store refuses to open a run
for a second object, and keeps a deleted object's history under an archived run id when its run id is used again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from kubedag.app.ports import PassWrite, RunConflictError, RunIdTakenError, RunObject
from kubedag.core import engine
from kubedag.core.spec import parse_dag
from kubedag.core.states import RunType
from kubedag.core.states import TaskInstanceState as S
from kubedag.core.tries import TryRecord
from kubedag.store import repository
from kubedag.store.history import SqlRunStore

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 1, 5, tzinfo=UTC)
DAG = parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "etl"},
                 "spec": {"tasks": [{"name": "load", "command": ["true"]}]}})
RUN = engine.DagRun(dag_id="etl", run_id="nightly", run_type=RunType.MANUAL, logical_date=T0,
                    data_interval_start=T0, data_interval_end=T0)
FIRST, SECOND = RunObject("etl-nightly", "1111aaaa-0000-0000-0000-000000000000"), \
    RunObject("etl-nightly-again", "2222bbbb-0000-0000-0000-000000000000")


def _rows(Session, sql):  # noqa: N803 - the session factory
    with Session() as session:
        return [tuple(r) for r in session.execute(sa.text(sql))]


def test_the_db_holds_one_run_per_dag_and_run_id(Session):  # noqa: N803
    with Session.begin() as session:
        repository.upsert_dag(session, "default/etl", {}, "default")
        repository.create_dag_run(session, dag_id="default/etl", run_id="nightly", run_type="manual", logical_date=T0)
    with pytest.raises(IntegrityError), Session.begin() as session:
        session.execute(sa.text("insert into dag_run (dag_id, run_id, run_type, state, logical_date, conf) values "
                                "('default/etl', 'nightly', 'manual', 'queued', :d, '{}')"), {"d": T0 + dt.timedelta(1)})


def test_a_second_object_cannot_open_a_run_id_another_holds(Session):  # noqa: N803
    store = SqlRunStore(Session)
    store.open_run("default", DAG, RUN, FIRST)
    store.save_pass("default", DAG, PassWrite(run=RUN, tis=(engine.TaskInstance("load", S.RUNNING, 1),)))
    with pytest.raises(RunIdTakenError) as caught:
        store.open_run("default", DAG, replace(RUN, logical_date=T0 + dt.timedelta(hours=1)), SECOND)
    assert caught.value.holder == FIRST
    assert str(caught.value) == f"run id nightly belongs to DAGRun etl-nightly (uid {FIRST.uid})"
    # the holder reopens it (a restart) and finds its task instance; another namespace is another identity
    assert store.open_run("default", DAG, RUN, FIRST).tis["load"].state == S.RUNNING
    assert store.open_run("other", DAG, RUN, SECOND).tis == {}
    assert _rows(Session, "select dag_id, run_id, object_name from dag_run order by dag_id") == [
        ("default/etl", "nightly", "etl-nightly"), ("other/etl", "nightly", "etl-nightly-again")]


def test_a_run_recorded_before_owners_were_kept_is_claimed_by_the_first_object(Session):  # noqa: N803
    store = SqlRunStore(Session)
    store.open_run("default", DAG, RUN)  # no owner: as migration 0005 finds older runs
    store.open_run("default", DAG, RUN, FIRST)
    with pytest.raises(RunIdTakenError):
        store.open_run("default", DAG, RUN, SECOND)


def test_a_deleted_objects_history_is_kept_under_an_archived_run_id_and_the_run_id_starts_afresh(Session):  # noqa: N803
    store = SqlRunStore(Session)
    store.open_run("default", DAG, RUN, FIRST)
    done = engine.TaskInstance("load", S.SUCCESS, 1, start_date=T0, end_date=T0)
    store.save_pass("default", DAG, PassWrite(
        run=replace(RUN, state="success"), tis=(done,),
        tries=(TryRecord("load", 1, S.SUCCESS, T0, T0, exit_code=0, pod_name="etl-load-1-abcde"),),
        xcoms={("load", 1): {"return_value": 42}}, logs={("load", 1): "loaded\n"}))

    assert store.archive_run("default", "etl", "nightly", FIRST.uid) == "nightly~deleted-1111aaaa"
    assert store.archive_run("default", "etl", "nightly", FIRST.uid) is None  # done already
    again = replace(RUN, logical_date=T0 + dt.timedelta(days=1))
    assert store.open_run("default", DAG, again, SECOND).tis == {}  # a fresh run, not the old success
    assert _rows(Session, "select run_id, state, object_name from dag_run order by run_id") == [
        ("nightly", "queued", "etl-nightly-again"), ("nightly~deleted-1111aaaa", "success", "etl-nightly")]
    assert _rows(Session, "select run_id, state from task_instance") == [("nightly~deleted-1111aaaa", "success")]
    assert _rows(Session, "select run_id, log from task_instance_history") == [("nightly~deleted-1111aaaa", "loaded\n")]
    assert _rows(Session, "select run_id, value from xcom") == [("nightly~deleted-1111aaaa", "42")]
    with Session() as session:
        kept = repository.get_dag_run(session, "default/etl", "nightly~deleted-1111aaaa")
        assert kept.logical_date == T0


def test_the_same_logical_date_as_an_archived_run_is_refused_naming_it(Session):  # noqa: N803
    store = SqlRunStore(Session)
    store.open_run("default", DAG, RUN, FIRST)
    store.archive_run("default", "etl", "nightly", FIRST.uid)
    with pytest.raises(RunConflictError) as caught:
        store.open_run("default", DAG, RUN, SECOND)
    assert str(caught.value) == ("DAG etl has another run at logical date 2026-01-05T00:00:00+00:00 "
                                 "(run nightly~deleted-1111aaaa)")

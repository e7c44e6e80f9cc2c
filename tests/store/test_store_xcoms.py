"""repository: XComs per run, task and try (both backends, via the db_url fixture)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event

from kubedag.store import TaskInstanceNotFound, repository as repo
from kubedag.core.xcom import NO_XCOM, RETURN_KEY, parse_xcom

from ._helpers import T0, make_run


def _run_with_tasks(s, run_id="r1", logical_date=T0, tasks=("extract", "load")):
    make_run(s, run_id=run_id, logical_date=logical_date)
    for task_id in tasks:
        repo.upsert_task_instance(s, "etl", run_id, task_id, state="running", try_number=1)


def test_set_and_get_round_trips_json_values(Session):
    values = {RETURN_KEY: {"rows": [1, 2.5, None], "ok": True, "name": "Ünïcode"}, "n": 3, "nothing": None}
    with Session.begin() as s:
        _run_with_tasks(s)
        repo.set_xcoms(s, "etl", "r1", "extract", 1, values)
    with Session() as s:
        assert repo.get_xcom(s, "etl", "r1", "extract") == values[RETURN_KEY]
        assert repo.get_xcom(s, "etl", "r1", "extract", "n") == 3
        # a stored null differs from no XCom when asked with NO_XCOM
        assert repo.get_xcom(s, "etl", "r1", "extract", "nothing", default=NO_XCOM) is None
        assert repo.get_xcom(s, "etl", "r1", "extract", "absent", default=NO_XCOM) is NO_XCOM
        assert repo.get_xcom(s, "etl", "r1", "extract", "absent") is None
        assert repo.get_xcom(s, "etl", "r1", "load", default="dflt") == "dflt"
        rows = repo.list_xcoms(s, "etl", "r1")
        assert [(r.task_id, r.try_number, r.key) for r in rows] == [
            ("extract", 1, "n"), ("extract", 1, "nothing"), ("extract", 1, RETURN_KEY)
        ]
        assert all(r.timestamp.tzinfo is not None for r in rows)


def test_parse_xcom_output_stores_under_each_key(Session):
    # what an executor does with a try's XCom file when the task has multipleOutputs
    with Session.begin() as s:
        _run_with_tasks(s)
        repo.set_xcoms(s, "etl", "r1", "extract", 1, parse_xcom(b'{"rows": 10, "path": "s3://b/k"}', multiple_outputs=True))
    with Session() as s:
        assert repo.get_xcom(s, "etl", "r1", "extract", "rows") == 10
        assert repo.get_xcom(s, "etl", "r1", "extract") == {"rows": 10, "path": "s3://b/k"}


def test_set_xcoms_replaces_only_that_try(Session):
    with Session.begin() as s:
        _run_with_tasks(s)
        repo.set_xcoms(s, "etl", "r1", "extract", 1, {RETURN_KEY: "a", "old": 1})
        repo.set_xcoms(s, "etl", "r1", "extract", 2, {RETURN_KEY: "b", "x": 1})
    with Session.begin() as s:
        repo.set_xcoms(s, "etl", "r1", "extract", 2, {RETURN_KEY: "c"})
    with Session() as s:
        assert [(r.try_number, r.key) for r in repo.list_xcoms(s, "etl", "r1", "extract")] == [
            (1, "old"), (1, RETURN_KEY), (2, RETURN_KEY)
        ]
        assert repo.get_xcom(s, "etl", "r1", "extract") == "c"  # newest try with the key
        assert repo.get_xcom(s, "etl", "r1", "extract", "old") == 1  # only try 1 has it
        assert repo.get_xcom(s, "etl", "r1", "extract", "x") is None  # try 2's was replaced
        assert [r.key for r in repo.list_xcoms(s, "etl", "r1", "extract", try_number=1)] == ["old", RETURN_KEY]
    with Session.begin() as s:
        repo.set_xcoms(s, "etl", "r1", "extract", 2, {})  # try 2 pushed nothing after all
    with Session() as s:
        assert repo.get_xcom(s, "etl", "r1", "extract") == "a"


def test_set_xcoms_is_idempotent(Session, engine):
    with Session.begin() as s:
        _run_with_tasks(s)
        repo.set_xcoms(s, "etl", "r1", "extract", 1, {RETURN_KEY: [1, 2]})
    with Session() as s:
        first = repo.list_xcoms(s, "etl", "r1")[0].timestamp
    writes: list[str] = []

    def record(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with Session.begin() as s:
            repo.set_xcoms(s, "etl", "r1", "extract", 1, {RETURN_KEY: [1, 2]})
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert writes == []
    with Session() as s:
        assert repo.list_xcoms(s, "etl", "r1")[0].timestamp == first


def test_latest_xcoms_reads_a_run_in_one_go(Session):
    with Session.begin() as s:
        _run_with_tasks(s)
        _run_with_tasks(s, run_id="r2", logical_date=T0 + dt.timedelta(days=1))
        repo.set_xcoms(s, "etl", "r1", "extract", 1, {RETURN_KEY: 1, "k": "v1"})
        repo.set_xcoms(s, "etl", "r1", "extract", 2, {RETURN_KEY: 2})
        repo.set_xcoms(s, "etl", "r1", "load", 1, {RETURN_KEY: "l"})
        repo.set_xcoms(s, "etl", "r2", "extract", 1, {RETURN_KEY: "other run"})
    with Session() as s:
        assert repo.latest_xcoms(s, "etl", "r1") == {
            ("extract", RETURN_KEY): 2, ("extract", "k"): "v1", ("load", RETURN_KEY): "l"
        }
        assert repo.latest_xcoms(s, "etl", "r1", ["load"]) == {("load", RETURN_KEY): "l"}
        assert repo.latest_xcoms(s, "etl", "r3") == {}


def test_clear_xcoms_deletes_every_try_of_the_tasks(Session):
    with Session.begin() as s:
        _run_with_tasks(s)
        repo.set_xcoms(s, "etl", "r1", "extract", 1, {RETURN_KEY: 1})
        repo.set_xcoms(s, "etl", "r1", "extract", 2, {RETURN_KEY: 2, "k": 3})
        repo.set_xcoms(s, "etl", "r1", "load", 1, {RETURN_KEY: "keep"})
    with Session.begin() as s:
        assert repo.clear_xcoms(s, "etl", "r1", ["extract"]) == 3
        assert repo.clear_xcoms(s, "etl", "r1", []) == 0
    with Session() as s:
        assert repo.get_xcom(s, "etl", "r1", "extract") is None
        assert repo.get_xcom(s, "etl", "r1", "load") == "keep"


def test_xcoms_go_with_their_dag_run(Session):
    with Session.begin() as s:
        _run_with_tasks(s)
        _run_with_tasks(s, run_id="r2", logical_date=T0 + dt.timedelta(days=1))
        repo.set_xcoms(s, "etl", "r1", "extract", 1, {RETURN_KEY: 1})
        repo.set_xcoms(s, "etl", "r2", "extract", 1, {RETURN_KEY: 2})
    with Session.begin() as s:
        assert repo.delete_dag_run(s, "etl", "r1") == 1
    with Session() as s:
        assert repo.list_xcoms(s, "etl", "r1") == []
        assert repo.get_xcom(s, "etl", "r2", "extract") == 2
    # a new run with the same id starts without XComs
    with Session.begin() as s:
        _run_with_tasks(s)
    with Session() as s:
        assert repo.get_xcom(s, "etl", "r1", "extract") is None


def test_set_xcoms_errors(Session):
    with Session.begin() as s:
        _run_with_tasks(s, tasks=("extract",))
    with Session() as s:
        with pytest.raises(TaskInstanceNotFound, match="etl/r1/nope"):
            repo.set_xcoms(s, "etl", "r1", "nope", 1, {RETURN_KEY: 1})
        with pytest.raises(ValueError, match="try_number"):
            repo.set_xcoms(s, "etl", "r1", "extract", 0, {RETURN_KEY: 1})
        with pytest.raises(ValueError, match="key of task 'extract'"):
            repo.set_xcoms(s, "etl", "r1", "extract", 1, {"": 1})
        with pytest.raises(ValueError, match="key of task 'extract'"):
            repo.set_xcoms(s, "etl", "r1", "extract", 1, {"k" * 513: 1})
        with pytest.raises(ValueError, match="'v' of task 'extract' is not JSON"):
            repo.set_xcoms(s, "etl", "r1", "extract", 1, {"v": object()})
        with pytest.raises(ValueError, match="not JSON"):
            repo.set_xcoms(s, "etl", "r1", "extract", 1, {"v": float("nan")})
        assert repo.list_xcoms(s, "etl", "r1") == []

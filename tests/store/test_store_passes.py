"""repository.record_pass (a scheduler pass in a few statements) and delete_dag_run, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.exc import IntegrityError

from kubedag.store import repository as repo

from ._helpers import T0, make_run


def test_record_pass_inserts_then_updates_only_given_fields(Session):
    start, end = T0 + dt.timedelta(seconds=5), T0 + dt.timedelta(seconds=9)
    with Session.begin() as s:
        make_run(s)
        repo.record_pass(s, "etl", "r1", task_instances={
            "a": {"state": "queued", "try_number": 1, "max_tries": 2},
            "b": {"state": None, "try_number": 0, "max_tries": 0},
        }, tries=[("a", 1, {"state": "running", "start_date": start, "log_location": "/logs/a/1"})])
    with Session.begin() as s:
        repo.record_pass(s, "etl", "r1", task_instances={"a": {"state": "success", "end_date": end, "exit_code": 0}},
                         tries=[("a", 1, {"state": "success", "end_date": end, "exit_code": 0, "duration": 4.0})])
    with Session() as s:
        tis = {t.task_id: t for t in repo.get_task_instances(s, "etl", "r1")}
        assert (tis["a"].state, tis["a"].try_number, tis["a"].max_tries, tis["a"].exit_code) == ("success", 1, 2, 0)
        assert tis["a"].end_date == end
        assert (tis["b"].state, tis["b"].try_number) == (None, 0)
        (attempt,) = repo.get_tries(s, "etl", "r1", "a")
        # the start written by the first pass is kept when the second pass gives only the end
        assert (attempt.state, attempt.start_date, attempt.end_date, attempt.duration, attempt.log_location) == (
            "success", start, end, 4.0, "/logs/a/1")


def test_record_pass_rejects_bad_values_and_unknown_runs(Session):
    with Session.begin() as s:
        make_run(s)
        with pytest.raises(ValueError, match="task instance state"):
            repo.record_pass(s, "etl", "r1", task_instances={"a": {"state": "done"}})
        with pytest.raises(ValueError, match="try_number"):
            repo.record_pass(s, "etl", "r1", tries=[("a", 0, {"state": "running"})])
    with pytest.raises(IntegrityError):
        with Session.begin() as s:
            repo.record_pass(s, "etl", "no-such-run", task_instances={"a": {"state": "queued"}})


def test_delete_dag_run_removes_its_task_instances_and_history(Session):
    with Session.begin() as s:
        make_run(s, run_id="r1", logical_date=T0)
        make_run(s, run_id="r2", logical_date=T0 + dt.timedelta(days=1))
        for run_id in ("r1", "r2"):
            repo.record_pass(s, "etl", run_id, task_instances={"a": {"state": "running", "try_number": 1}},
                             tries=[("a", 1, {"state": "running", "start_date": T0})])
    with Session.begin() as s:
        assert repo.delete_dag_run(s, "etl", logical_date=T0) == 1
    with Session() as s:
        assert repo.get_dag_run(s, "etl", "r1") is None
        assert repo.get_task_instances(s, "etl", "r1") == [] and repo.get_tries(s, "etl", "r1", "a") == []
        assert [t.task_id for t in repo.get_task_instances(s, "etl", "r2")] == ["a"]
    with Session.begin() as s:
        assert repo.delete_dag_run(s, "etl", "r2") == 1
        assert repo.delete_dag_run(s, "etl", "r2") == 0
        with pytest.raises(ValueError):
            repo.delete_dag_run(s, "etl")

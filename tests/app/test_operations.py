"""The operations of kubedag.app.operations against an in-memory RunsRepository: what a user's request becomes,
independent of the executor."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kubedag.app import operations as ops
from kubedag.core import engine
from kubedag.core.spec import parse_dag
from kubedag.core.states import DagRunState, TaskInstanceState

UTC = timezone.utc
NOW = datetime(2026, 1, 10, 12, tzinfo=UTC)
DAG = parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "d"},
                 "spec": {"schedule": "@daily", "startDate": "2026-01-01", "tasks": [
                     {"name": "a", "command": ["true"]}, {"name": "b", "dependsOn": ["a"], "command": ["true"]}]}})


class MemoryRuns:
    def __init__(self) -> None:
        self.runs: dict[str, ops.LoadedRun] = {}
        self.changes: list[ops.RunChange] = []

    def create_run(self, dag, run):  # noqa: ANN001, ANN201
        if run.run_id in self.runs or any(r.run.logical_date == run.logical_date for r in self.runs.values()):
            raise ops.AlreadyExists(run.run_id)
        self.runs[run.run_id] = ops.LoadedRun(run, {})

    def load_run(self, dag, run_id):  # noqa: ANN001, ANN201
        if run_id not in self.runs:
            raise ops.NotFound(run_id)
        return self.runs[run_id]

    def apply(self, dag, change):  # noqa: ANN001, ANN201
        self.changes.append(change)
        old = self.runs[change.run.run_id]
        self.runs[change.run.run_id] = ops.LoadedRun(change.run, {**old.tis, **change.updates})

    def delete_run(self, dag_id, run_id):  # noqa: ANN001, ANN201
        if self.runs.pop(run_id, None) is None:
            raise ops.NotFound(run_id)

    def runs_by_logical_date(self, dag):  # noqa: ANN001, ANN201
        return {r.run.logical_date: (r.run.run_id, str(r.run.state)) for r in self.runs.values()}


def test_trigger_makes_one_queued_manual_run_and_refuses_a_second_at_that_date():
    runs = MemoryRuns()
    run = ops.trigger(runs, DAG, logical_date=datetime(2026, 1, 5, 6, tzinfo=UTC), conf={"x": 1})
    assert (run.run_id, str(run.state), dict(run.conf)) == ("manual__2026-01-05T06:00:00+00:00", "queued", {"x": 1})
    assert (run.data_interval_start, run.data_interval_end) == (datetime(2026, 1, 4, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC))
    with pytest.raises(ops.AlreadyExists):
        ops.trigger(runs, DAG, logical_date=datetime(2026, 1, 5, 6, tzinfo=UTC), run_id="other")
    with pytest.raises(ops.InvalidRequest, match="--run-id: 'bad id'"):
        ops.trigger(runs, DAG, logical_date=NOW, run_id="bad id")


def test_backfill_plan_creates_missing_runs_and_resets_existing_ones_only_when_asked():
    runs = MemoryRuns()
    ops.trigger(runs, DAG, logical_date=datetime(2026, 1, 2, tzinfo=UTC))
    plan = ops.plan_backfill(DAG, datetime(2026, 1, 1), datetime(2026, 1, 3), runs.runs_by_logical_date(DAG))
    assert [(p.run_id, p.action) for p in plan] == [
        ("backfill__2026-01-01T00:00:00+00:00", "create"), ("manual__2026-01-02T00:00:00+00:00", "exists"),
        ("backfill__2026-01-03T00:00:00+00:00", "create")]
    reset = ops.plan_backfill(DAG, datetime(2026, 1, 2), datetime(2026, 1, 2), runs.runs_by_logical_date(DAG), reset=True)
    assert [(p.action, p.state) for p in reset] == [("reset", "queued")]
    with pytest.raises(ops.InvalidRequest, match="--end-date 2026-01-01T00:00:00\\+00:00 is before --start-date"):
        ops.plan_backfill(DAG, datetime(2026, 1, 2), datetime(2026, 1, 1), {})


def test_clear_with_downstream_reopens_the_run_and_mark_settles_it():
    runs = MemoryRuns()
    run = ops.trigger(runs, DAG, logical_date=datetime(2026, 1, 2, tzinfo=UTC))
    done = engine.TaskInstance("a", TaskInstanceState.FAILED, 1)
    runs.runs[run.run_id] = ops.LoadedRun(
        engine.DagRun(**{**run.__dict__, "state": DagRunState.FAILED, "start_date": NOW, "end_date": NOW}),
        {"a": done, "b": engine.TaskInstance("b", TaskInstanceState.UPSTREAM_FAILED, 0)})
    preview = ops.clear(DAG, runs, run.run_id, ["a"], downstream=True, now=NOW)
    assert preview.rows() == [("a", "failed", 1), ("b", "upstream_failed", 0)]
    change = runs.changes[-1]
    assert (change.kind, change.task_ids, change.downstream, str(change.run.state)) == ("clear", ("a",), True, "queued")
    final, changed = ops.mark(DAG, runs, run.run_id, ["a", "b"], "success", now=NOW)
    assert changed == ("a", "b") and str(final.state) == "success"
    with pytest.raises(ops.InvalidRequest, match="no task 'zz'"):
        ops.mark(DAG, runs, run.run_id, ["zz"], "success", now=NOW)
    ops.delete(runs, "d", run.run_id)
    with pytest.raises(ops.NotFound):
        ops.clear(DAG, runs, run.run_id, [], now=NOW)

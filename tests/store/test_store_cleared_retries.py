"""A cleared task instance's renewed retries (Airflow's ``max_tries = try_number + retries``) and its reason are
written to the metadata DB and read back, so a restarted controller (or a later local command) retries it as
the engine decided, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from kubedag.core import engine
from kubedag.core.spec import parse_dag
from kubedag.core.states import RunType
from kubedag.core.states import TaskInstanceState as S
from kubedag.app.ports import PassWrite
from kubedag.store.history import SqlRunStore

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 1, 5, tzinfo=UTC)
DAG = parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "etl"},
                 "spec": {"tasks": [{"name": "load", "command": ["false"], "retries": 1}]}})
RUN = engine.DagRun(dag_id="etl", run_id="manual__2026-01-05T00:00:00+00:00", run_type=RunType.MANUAL,
                    logical_date=T0, data_interval_start=T0, data_interval_end=T0)


def restart(Session) -> dict[str, engine.TaskInstance]:  # noqa: N803 - the session factory
    """What a controller that starts again reads: the run's task instances from the DB (its run store)."""
    return dict(SqlRunStore(Session).open_run("default", DAG, RUN).tis)


def test_cleared_retries_survive_a_restart(Session):  # noqa: N803
    failed = engine.TaskInstance("load", S.FAILED, try_number=2, start_date=T0, end_date=T0, reason="exit code 1")
    store = SqlRunStore(Session)
    store.open_run("default", DAG, RUN)
    store.save_pass("default", DAG, PassWrite(run=RUN, tis=(failed,)))
    cleared = engine.clear(DAG, RUN, {"load": failed}, ["load"], now=T0).updates["load"]
    assert cleared.max_tries == 3  # try_number 2 + retries 1
    store.save_pass("default", DAG, PassWrite(run=RUN, tis=(cleared,)))

    reloaded = restart(Session)["load"]
    assert (reloaded.state, reloaded.try_number, reloaded.max_tries, reloaded.reason) == (S.NONE, 2, 3, "cleared")
    # try 3 fails: the renewed retry is still there after the restart, so try 4 follows
    third = engine.mark_running(engine.TaskInstance("load", S.QUEUED, 3, max_tries=reloaded.max_tries), T0)
    assert engine.apply_outcome(DAG, RUN, third, succeeded=False, now=T0, exit_code=1).state == S.UP_FOR_RETRY
    assert engine.tries_allowed(DAG.tasks["load"], reloaded.max_tries) == 4


def test_a_task_instance_never_cleared_reads_back_the_tasks_retries_and_its_reason(Session):  # noqa: N803
    failed = engine.TaskInstance("load", S.FAILED, try_number=2, start_date=T0, end_date=T0,
                                 reason="OOMKilled: the container exceeded its memory limit (exit code 137)")
    store = SqlRunStore(Session)
    store.open_run("default", DAG, RUN)
    store.save_pass("default", DAG, PassWrite(run=RUN, tis=(failed,)))
    reloaded = restart(Session)["load"]
    assert (reloaded.max_tries, reloaded.reason) == (1, failed.reason)
    assert engine.tries_allowed(DAG.tasks["load"], reloaded.max_tries) == 2

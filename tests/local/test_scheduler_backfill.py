"""Backfills carried out by ``kubedag scheduler`` from the metadata DB, as Airflow 3's scheduler does: a backfill
row created (as ``POST /api/v2/backfills`` creates it) runs to completion with at most ``max_active_runs`` of its
runs at once; a paused one starts nothing until unpaused; a cancelled one starts nothing more while its running
run finishes; ``completed`` re-runs existing runs, ``none`` leaves them."""

from __future__ import annotations

import signal
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.local.conftest import dag_manifest
from tests.local.test_scheduler import WAIT, db_rows, start_scheduler, wait_for

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def dag_file(folder: Path, events: Path, sleep: float) -> None:
    """A daily DAG that ended before today (no scheduled run of its own); each try logs its start and end."""
    folder.mkdir(exist_ok=True)
    command = f"echo start {{{{ ds }}}} >> {events}; sleep {sleep}; echo end {{{{ ds }}}} >> {events}"
    (folder / "bf.yaml").write_text(dag_manifest("bf", f"- {{name: work, command: [sh, -c, {command!r}]}}\n", """\
        schedule: "@daily"
        startDate: "2026-01-01T00:00:00Z"
        endDate: "2026-01-20T00:00:00Z"
        catchup: false
        maxActiveRuns: 16
        """))


@pytest.fixture
def env(tmp_path, home):
    from kubedag.cli.local_catalog import local_catalog

    folder = tmp_path / "dags"
    folder.mkdir()
    with pytest.raises(ValueError, match="--dags-folder: .* is not a folder"):
        local_catalog(tmp_path / "nope")
    local = local_catalog(folder)  # as an entry point composes it: the default DB of $KUBEDAG_HOME
    yield folder, local.backfills, local.catalog
    local.close()


def most_at_once(events: Path) -> int:
    running = most = 0
    for line in events.read_text().splitlines():
        running += 1 if line.startswith("start") else -1
        most = max(most, running)
    return most


def scans_pass(folder: Path, n: int = 2) -> None:
    """Wait until the scheduler has read the folder ``n`` more times (each new DAG file gets its DAG row)."""
    for _ in range(n):
        name = f"marker{len(list(folder.glob('marker*')))}"
        (folder / f"{name}.yaml").write_text(f"apiVersion: kubedag.io/v1alpha1\nkind: DAG\nmetadata: {{name: {name}}}\n"
                                             "spec: {tasks: [{name: a, command: [\"true\"]}]}\n")
        wait_for(lambda: db_rows(f"SELECT count(*) FROM dag WHERE dag_id = '{name}'") == [(1,)], f"a scan ({name})")


def stop(proc) -> None:  # noqa: ANN001
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, out


def test_a_backfill_runs_to_completion_with_max_active_runs(env, tmp_path):
    from kubedag.app.catalog import BackfillRequest, RunQuery

    folder, backfills, catalog = env
    events = tmp_path / "events.txt"
    dag_file(folder, events, 1)
    created = backfills.create(BackfillRequest("bf", T0, T0 + 4 * DAY, max_active_runs=2, dag_run_conf={"k": "v"}))
    proc = start_scheduler(folder)
    try:
        wait_for(lambda: catalog.backfill(created.id).completed_at is not None, "the backfill to complete")
    finally:
        stop(proc)
    done = catalog.backfill(created.id)
    assert (done.runs_total, done.runs_done, done.cancelled) == (5, 5, False)
    assert db_rows("SELECT run_type, state, backfill_id, count(*) FROM dag_run WHERE dag_id = 'bf' "
                   "GROUP BY run_type, state, backfill_id") == [("backfill", "success", int(created.id), 5)]
    assert [r.conf for r in catalog.runs(RunQuery(dag_id="bf"))[0]] == [{"k": "v"}] * 5
    assert sorted(line.split()[1] for line in events.read_text().splitlines() if line.startswith("end")) == [
        f"2026-01-0{i}" for i in range(1, 6)]
    assert most_at_once(events) <= 2


def test_pause_cancel_and_reprocess_behaviours(env, tmp_path):
    from kubedag.app.catalog import BackfillRequest

    folder, backfills, catalog = env
    events = tmp_path / "events.txt"
    dag_file(folder, events, 2)
    paused = backfills.create(BackfillRequest("bf", T0, T0 + 2 * DAY, max_active_runs=1))
    proc = start_scheduler(folder)
    try:
        wait_for(lambda: db_rows("SELECT state FROM dag_run WHERE dag_id = 'bf'") == [("running",)],
                 "the first run of the backfill to run")
        assert backfills.set_paused(paused.id, True).is_paused
        wait_for(lambda: db_rows("SELECT state FROM dag_run WHERE dag_id = 'bf'") == [("success",)],
                 "the running run to finish")
        scans_pass(folder)
        assert db_rows("SELECT count(*) FROM dag_run WHERE dag_id = 'bf'") == [(1,)]  # paused: nothing new
        assert catalog.backfill(paused.id).completed_at is None
        backfills.set_paused(paused.id, False)
        wait_for(lambda: catalog.backfill(paused.id).completed_at is not None, "the unpaused backfill to complete")
        assert db_rows("SELECT count(*), min(state) FROM dag_run WHERE dag_id = 'bf'") == [(3, "success")]

        cancelled = backfills.create(BackfillRequest("bf", T0 + 10 * DAY, T0 + 12 * DAY, max_active_runs=1))
        wait_for(lambda: db_rows(f"SELECT state FROM dag_run WHERE backfill_id = {cancelled.id}") == [("running",)],
                 "the first run of the second backfill to run")
        info = backfills.cancel(cancelled.id)
        assert info.cancelled and info.completed_at is not None
        wait_for(lambda: db_rows(f"SELECT state FROM dag_run WHERE backfill_id = {cancelled.id}") == [("success",)],
                 "its running run to finish")
        scans_pass(folder)
        assert db_rows(f"SELECT count(*) FROM dag_run WHERE backfill_id = {cancelled.id}") == [(1,)]

        untouched = backfills.create(BackfillRequest("bf", T0, T0 + DAY, reprocess_behavior="none"))
        wait_for(lambda: catalog.backfill(untouched.id).completed_at is not None, "a backfill with nothing to do")
        assert catalog.backfill(untouched.id).runs_total == 0
        rerun = backfills.create(BackfillRequest("bf", T0, T0 + DAY, reprocess_behavior="completed"))
        wait_for(lambda: catalog.backfill(rerun.id).completed_at is not None, "the re-run to complete")
    finally:
        stop(proc)
    assert db_rows("SELECT run_id, state, backfill_id FROM dag_run WHERE logical_date < '2026-01-03' "
                   "ORDER BY logical_date") == [
        ("backfill__2026-01-01T00:00:00+00:00", "success", int(rerun.id)),
        ("backfill__2026-01-02T00:00:00+00:00", "success", int(rerun.id))]
    assert db_rows("SELECT run_id, try_number FROM task_instance WHERE run_id LIKE 'backfill__2026-01-0%' "
                   "ORDER BY run_id") == [("backfill__2026-01-01T00:00:00+00:00", 2),  # re-run: its second try
                                          ("backfill__2026-01-02T00:00:00+00:00", 2),
                                          ("backfill__2026-01-03T00:00:00+00:00", 1)]  # outside the re-run's range
    assert catalog.backfill(rerun.id).runs_total == 2

"""The local scheduler's DB retries (issue 13): the pending-writes queue and the backoff on their own, and the
scheduler through a SQLite file locked by another connection (``BEGIN EXCLUSIVE``) mid-run."""

from __future__ import annotations

import sqlite3
import textwrap
import threading
from pathlib import Path

import pytest

from kubedag.local.pending import DB_RETRY_MAX, DbBackoff, PendingWrites
from tests.local.processes import db_rows, queue_manual_run, scheduler_thread, wait_for


class Flaky:
    """A recorder that fails while ``down``."""

    def __init__(self) -> None:
        self.down, self.saved = False, []

    def save(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        if self.down:
            raise RuntimeError("database is locked\nsecond line")
        self.saved.append(args)


def test_pending_writes_keep_their_order_until_they_land_and_notify_after_landing():
    recorder, sent = Flaky(), []
    writes = PendingWrites(recorder, keep=True)
    recorder.down = True
    assert writes.save("pass 1", then=lambda: sent.append(1)) is False
    assert writes.save("pass 2", then=lambda: sent.append(2)) is False
    assert (len(writes), writes.error, recorder.saved, sent) == (2, "RuntimeError: database is locked", [], [])
    recorder.down = False
    assert writes.flush() is True
    assert (len(writes), writes.error, recorder.saved, sent) == (0, None, [("pass 1",), ("pass 2",)], [1, 2])


def test_without_keep_a_failed_write_raises_and_is_not_kept():
    recorder = Flaky()
    recorder.down = True
    writes = PendingWrites(recorder, keep=False)
    with pytest.raises(RuntimeError, match="database is locked"):
        writes.save("pass")
    assert len(writes) == 0


def test_the_backoff_doubles_up_to_its_documented_maximum():
    backoff = DbBackoff()
    delays = [backoff.failed("down", 0.0) for _ in range(10)]
    assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30] and DB_RETRY_MAX == 30
    assert backoff.waiting(29.0) and not backoff.waiting(30.0)
    assert backoff.landed() == 10 and not backoff.waiting(0.0) and backoff.error is None


def test_a_locked_sqlite_file_mid_run_is_retried_and_the_run_finishes_with_its_full_history(tmp_path, home):
    from kubedag.local.scheduler import Scheduler, SchedulerOptions
    from kubedag.store import config
    from kubedag.store.db import session_factory
    from kubedag.store.engine import make_engine
    from kubedag.store.migrate import upgrade
    from kubedag.store.scheduler_store import SqlSchedulerStore

    folder, go = tmp_path / "dags", tmp_path / "go"
    folder.mkdir()
    (folder / "locked.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: kubedag.io/v1alpha1
        kind: DAG
        metadata: {{name: locked}}
        spec:
          schedule: "@once"
          startDate: "2026-01-01T00:00:00Z"
          tasks:
            - name: before
              command: [echo, before]
            - name: wait
              dependsOn: [before]
              command: [sh, -c, "while [ ! -e {go} ]; do sleep 0.1; done; echo done waiting"]
        """))
    engine = make_engine(None, connect_args={"timeout": 0.5})  # a lock fails a write after 0.5 s, not 30 s
    upgrade(engine)
    lines: list[str] = []
    scheduler = Scheduler(SqlSchedulerStore(session_factory(engine)),
                          SchedulerOptions(folder=folder, logs_dir=config.logs_dir(), dag_dir_list_interval=0.2),
                          say=lines.append)
    thread = threading.Thread(target=scheduler.run)
    thread.start()
    lock = sqlite3.connect(home / "kubedag.db", isolation_level=None, timeout=30)
    try:
        wait_for(lambda: db_rows("SELECT state FROM task_instance WHERE task_id = 'wait'") == [("running",)],
                 "the first task to run")
        lock.execute("BEGIN EXCLUSIVE")
        go.touch()  # the last task ends while the DB takes no write: the run's last pass is pending
        wait_for(lambda: any(r.writes for r in scheduler.runners.values()), "a pending write")
        wait_for(lambda: "metadata DB: OperationalError: database is locked" in "\n".join(lines), "the failure line")
        assert (scheduler.db_problem() or "").startswith("metadata DB: OperationalError: database is locked (runs with")
        assert thread.is_alive()
        lock.execute("ROLLBACK")
        wait_for(lambda: db_rows("SELECT state FROM dag_run") == [("success",)], "the run to succeed")
        wait_for(lambda: scheduler.db_problem() is None, "the scheduler to see the DB back")
    finally:
        lock.close()
        scheduler.stop()
        thread.join(timeout=60)
        engine.dispose()
    failed = next(i for i, line in enumerate(lines) if line.startswith("metadata DB: OperationalError"))
    done = next(i for i, line in enumerate(lines) if line.startswith("locked scheduled__") and line.endswith("success"))
    assert failed < done, lines  # the run is reported finished once its last pass landed, not while pending
    assert any(line.startswith("metadata DB: available again after") for line in lines), lines
    assert not any("Traceback" in line for line in lines)
    history = db_rows("SELECT task_id, try_number, state, end_date IS NOT NULL, log_location "
                      "FROM task_instance_history ORDER BY task_id, try_number")
    assert [h[:4] for h in history] == [("before", 1, "success", True), ("wait", 1, "success", True)]
    assert "done waiting" in Path(history[1][4]).read_text()


def test_a_run_deleted_while_it_runs_does_not_hold_up_the_others(tmp_path, home):
    """Its passes can never be written (the run is gone) while the DB takes every other write: after a few tries its
    runner is dropped, and a run triggered afterwards runs."""
    from kubedag.local.scheduler import BAD_WRITE_STRIKES
    from kubedag.store import repository
    from kubedag.store.db import open_store

    folder, go = tmp_path / "dags", tmp_path / "go"
    folder.mkdir()
    for name, command in (("doomed", f"while [ ! -e {go} ]; do sleep 0.1; done"), ("other", "true")):
        (folder / f"{name}.yaml").write_text(textwrap.dedent(f"""\
            apiVersion: kubedag.io/v1alpha1
            kind: DAG
            metadata: {{name: {name}}}
            spec:
              tasks:
                - name: work
                  command: [sh, -c, "{command}"]
            """))
    engine, sessions = open_store(None)
    try:
        with scheduler_thread(folder, sessions, join=60) as (scheduler, lines):
            wait_for(lambda: {"doomed", "other"} <= {r[0] for r in db_rows("SELECT dag_id FROM dag")}, "the DAGs")
            queue_manual_run(sessions, "doomed")
            wait_for(lambda: db_rows("SELECT state FROM task_instance WHERE dag_id = 'doomed'") == [("running",)],
                     "the doomed run's task to run")
            with sessions.begin() as s:
                assert repository.delete_dag_run(s, "doomed", "manual__1") == 1
            assert db_rows("SELECT count(*) FROM dag_run WHERE dag_id = 'doomed'") == [(0,)]
            go.touch()  # its end is a pass the DB cannot take: the run is gone
            wait_for(lambda: ("doomed", "manual__1") not in scheduler.runners, "the doomed runner to be dropped")
            queue_manual_run(sessions, "other")
            wait_for(lambda: db_rows("SELECT state FROM dag_run WHERE dag_id = 'other'") == [("success",)],
                     "the other run to succeed")
    finally:
        engine.dispose()
    assert any("doomed manual__1: its pass cannot be written while the DB takes other writes" in line
               for line in lines), lines
    assert BAD_WRITE_STRIKES == 3
    assert db_rows("SELECT count(*) FROM dag_run WHERE dag_id = 'doomed'") == [(0,)]

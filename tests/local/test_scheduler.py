"""`kubedag scheduler` as a user runs it: a real process on a DAG folder, a SQLite DB in a temporary KUBEDAG_HOME,
tries as local processes. Killed with -9 mid-run and restarted, stopped with SIGTERM, started twice."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.local.processes import (KUBEDAG, WAIT, db_rows, queue_manual_run, scheduler_thread, start_scheduler,
                                   wait_for)


def catchup_dag(folder: Path, side: Path, days: int = 4, go: Path | None = None) -> int:
    """A daily DAG whose catchup covers ``days`` runs; each try appends one line to its own side file. Its first
    task sleeps 4 s, or with ``go`` waits until that file exists."""
    wait = f"while [ ! -e {go} ]; do sleep 0.1; done" if go is not None else "sleep 4"
    start = (datetime.now(timezone.utc) - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    (folder / "nested").mkdir(parents=True, exist_ok=True)
    (folder / "nested" / "catchup.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: kubedag.io/v1alpha1
        kind: DAG
        metadata: {{name: catchup}}
        spec:
          schedule: "@daily"
          startDate: "{start.isoformat()}"
          catchup: true
          maxActiveRuns: 2
          defaults: {{retries: 1, retryDelay: 1s}}
          tasks:
            - name: first
              command: [sh, -c, "echo ran >> {side}/{{{{ ds }}}}-first-{{{{ ti.try_number }}}}; {wait}"]
            - name: second
              dependsOn: [first]
              command: [sh, -c, "echo ran >> {side}/{{{{ ds }}}}-second-{{{{ ti.try_number }}}}; sleep 0.5"]
        """))
    return days


def test_kill_9_mid_run_then_restart_finishes_every_run_with_no_try_run_twice(tmp_path, home, scheduler_process):
    """The first tries wait for a file the test creates once the restarted scheduler has adopted them (no race
    between a fixed sleep and the restart on a loaded machine)."""
    folder, side, go = tmp_path / "dags", tmp_path / "side", tmp_path / "go"
    side.mkdir()
    runs = catchup_dag(folder, side, go=go)
    first = scheduler_process(folder)
    try:
        wait_for(lambda: list(side.glob("*-first-1")), "a first try to start")
        running = wait_for(lambda: db_rows("SELECT task_id FROM task_instance WHERE state = 'running'"),
                           "a running task instance in the DB")
        assert running
    finally:
        first.kill()
    started = len(list(side.glob("*-first-1")))
    second = scheduler_process(folder)
    logs = home / "logs"
    wait_for(lambda: "".join(p.read_text() for p in logs.rglob("*.log")).count("adopted process") >= started,
             "the restarted scheduler to adopt the running tries")
    go.touch()
    wait_for(lambda: db_rows("SELECT count(*) FROM dag_run WHERE state = 'success'")[0][0] == runs,
             f"{runs} successful runs")
    out = second.stop()
    assert second.process.returncode == 0, out
    assert db_rows("SELECT count(*), min(state), max(state) FROM dag_run") == [(runs, "success", "success")]
    assert db_rows("SELECT count(*) FROM task_instance WHERE state IN ('running', 'queued')") == [(0,)]
    executions = {p.name: p.read_text().count("ran") for p in side.iterdir()}
    assert len(executions) == 2 * runs and set(executions.values()) == {1}, executions
    assert all(name.endswith("-1") for name in executions)  # adopted, not failed and retried


def test_sigterm_kills_running_tries_and_records_them_for_retry(tmp_path, home):
    folder = tmp_path / "dags"
    folder.mkdir()
    start = (datetime.now(timezone.utc) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    (folder / "slow.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: kubedag.io/v1alpha1
        kind: DAG
        metadata: {{name: slow}}
        spec:
          schedule: "@daily"
          startDate: "{start.isoformat()}"
          tasks:
            - name: long
              retries: 1
              command: [sleep, "300"]
        """))
    proc = start_scheduler(folder, "--grace-period", "1")
    wait_for(lambda: db_rows("SELECT task_id FROM task_instance WHERE state = 'running'"), "the try to run")
    pid_file = next((home / "logs").rglob("attempt=1.pid"))
    pid = int(pid_file.read_text().split()[0])
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, out
    assert "stopping: killing 1 running tries" in out
    assert db_rows("SELECT state, try_number FROM task_instance") == [("up_for_retry", 1)]
    assert db_rows("SELECT state, reason FROM task_instance_history") == [("failed", "the scheduler stopped")]
    assert db_rows("SELECT state FROM job") == [("success",)]
    from kubedag.local.processes import process_start_time

    assert process_start_time(pid) is None  # gone (or a zombie waiting for init to reap it)


def test_a_second_scheduler_on_the_same_db_refuses_to_start(tmp_path, home):
    folder = tmp_path / "dags"
    folder.mkdir()
    first = start_scheduler(folder)
    try:
        wait_for(lambda: db_rows("SELECT count(*) FROM job WHERE state = 'running'")[0][0] == 1, "the first scheduler")
        second = subprocess.run([KUBEDAG, "scheduler", "--dags-folder", str(folder)], capture_output=True, text=True,
                                env=os.environ.copy(), timeout=WAIT)
        assert second.returncode == 1
        assert f"another scheduler is running on this metadata DB: pid {first.pid}" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=WAIT)
    assert db_rows("SELECT state, pid FROM job") == [("success", first.pid)]


def test_queued_runs_created_by_others_run_with_their_conf_once_their_dag_is_unpaused(tmp_path, home):
    """The contract with `kubedag dags trigger`: a `manual` run inserted `queued` with a conf is picked up. A DAG
    whose spec says `paused: true` starts paused (Airflow's is_paused_upon_creation): the queued run waits until
    the DB's flag is cleared (`kubedag dags unpause`)."""
    from kubedag.store import repository
    from kubedag.store.db import open_store

    folder, out = tmp_path / "dags", tmp_path / "out.txt"
    folder.mkdir()
    (folder / "manual.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: kubedag.io/v1alpha1
        kind: DAG
        metadata: {{name: manual}}
        spec:
          paused: true
          tasks:
            - name: echo
              command: [sh, -c, "echo {{{{ dag_run.conf.greeting }}}} >> {out}"]
        """))
    _, sessions = open_store(None)
    with scheduler_thread(folder, sessions) as (scheduler, lines):
        wait_for(lambda: "DAG manual from" in " ".join(lines), "the DAG to be read")
        with sessions.begin() as s:
            assert repository.get_dag(s, "manual").is_paused
        queue_manual_run(sessions, "manual", "manual__by_cli", conf={"greeting": "hello"})
        wait_for(lambda: ("manual", "manual__by_cli") in scheduler.runners, "the scheduler to see the queued run")
        assert db_rows("SELECT state FROM dag_run WHERE run_id = 'manual__by_cli'") == [("queued",)]
        with sessions.begin() as s:
            repository.set_dag_paused(s, "manual", False)
        wait_for(lambda: db_rows("SELECT state FROM dag_run WHERE run_id = 'manual__by_cli'") == [("success",)],
                 "the triggered run to succeed")
    assert out.read_text() == "hello\n"
    assert db_rows("SELECT run_type, count(*) FROM dag_run GROUP BY run_type") == [("manual", 1)]


def test_standalone_prints_where_things_are_reads_new_dag_files_and_stops_on_ctrl_c(tmp_path, home):
    folder, side = tmp_path / "dags", tmp_path / "side"
    side.mkdir()
    runs = catchup_dag(folder, side, days=1)
    proc = subprocess.Popen([KUBEDAG, "standalone", "--dags-folder", str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    try:
        wait_for(lambda: db_rows("SELECT count(*) FROM dag_run WHERE state = 'success'")[0][0] == runs, "the catchup run")
        (folder / "later.yaml").write_text(textwrap.dedent("""\
            apiVersion: kubedag.io/v1alpha1
            kind: DAG
            metadata: {name: later}
            spec:
              schedule: "@once"
              startDate: "2026-01-01T00:00:00Z"
              tasks:
                - name: hi
                  command: ["true"]
            """))
        wait_for(lambda: db_rows("SELECT state FROM dag_run WHERE dag_id = 'later'") == [("success",)],
                 "the DAG added while running to run")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, out
    assert f"metadata DB: sqlite:///{home}/kubedag.db" in out
    assert f"task logs:   {home}/logs" in out
    assert f"kubedag dags trigger DAG --dags-folder {folder}" in out
    assert db_rows("SELECT state FROM job") == [("success",)]


def test_a_trigger_task_queues_its_run_for_the_scheduler_and_waits_for_it(tmp_path, home):
    """Under the scheduler a trigger task only creates the run, queued (Airflow's TriggerDagRunOperator): the
    scheduler runs it once, with the rendered conf, and the trigger waits for its state."""
    folder, side = tmp_path / "dags", tmp_path / "side.txt"
    (folder / "child").mkdir(parents=True)
    (folder / "parent.yaml").write_text(textwrap.dedent("""\
        apiVersion: kubedag.io/v1alpha1
        kind: DAG
        metadata: {name: parent}
        spec:
          schedule: "@once"
          startDate: "2026-01-01T00:00:00Z"
          tasks:
            - name: kick
              trigger: {dag: child, conf: {day: "{{ ds }}"}, waitForCompletion: true, pokeInterval: 1s}
        """))
    (folder / "child" / "child.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: kubedag.io/v1alpha1
        kind: DAG
        metadata: {{name: child}}
        spec:
          tasks:
            - name: work
              command: [sh, -c, "echo {{{{ dag_run.conf.day }}}} >> {side}"]
        """))
    proc = start_scheduler(folder)
    try:
        wait_for(lambda: db_rows("SELECT state FROM dag_run WHERE dag_id = 'parent'") == [("success",)],
                 "the parent run to succeed")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=WAIT)
    assert db_rows("SELECT run_type, state FROM dag_run WHERE dag_id = 'child'") == [("manual", "success")]
    assert side.read_text() == "2026-01-01\n"
    [(child_run,)] = db_rows("SELECT run_id FROM dag_run WHERE dag_id = 'child'")
    assert db_rows("SELECT value FROM xcom WHERE dag_id = 'parent'") == [(f'"{child_run}"',)]


def test_dags_test_next_to_a_running_scheduler_is_left_alone(tmp_path, home):
    """`kubedag dags test` creates its run `running` in the same DB: the scheduler, which takes queued runs
    (and its own), does not run it a second time nor fail its tries as lost."""
    folder, side = tmp_path / "dags", tmp_path / "side.txt"
    folder.mkdir()
    (folder / "fg.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: kubedag.io/v1alpha1
        kind: DAG
        metadata: {{name: fg}}
        spec:
          tasks:
            - name: slow
              command: [sh, -c, "echo ran >> {side}; sleep 2"]
        """))
    proc = start_scheduler(folder)
    try:
        wait_for(lambda: db_rows("SELECT dag_id FROM dag"), "the scheduler to read the folder")
        test = subprocess.run([KUBEDAG, "dags", "test", str(folder / "fg.yaml"), "-o", "json"], capture_output=True,
                              text=True, env=os.environ.copy(), timeout=WAIT)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=WAIT)
    assert test.returncode == 0, test.stderr
    assert side.read_text() == "ran\n"
    assert db_rows("SELECT state, try_number FROM task_instance") == [("success", 1)]
    assert "fg manual__" not in out  # the scheduler never reported on that run

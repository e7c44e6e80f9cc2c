"""`kubedag dags backfill`, `tasks clear`, `tasks mark` and `runs delete` with -f FILE: on this machine, as a user
runs them (a real process, a real SQLite DB in a temporary KUBEDAG_HOME, tasks as local processes)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli_local import home, kubedag, write_dag  # noqa: F401 - the `home` fixture

STAMP = ('echo start $(date +%s.%N) >> "spans/$KUBEDAG_RUN_ID.t"; sleep 0.3; '
         'echo end $(date +%s.%N) >> "spans/$KUBEDAG_RUN_ID.t"')
DAILY = "schedule: '@daily'\nstartDate: '2026-01-01'\nmaxActiveRuns: 3\n"


def runs(dag: str = "t") -> dict[str, dict]:
    proc = kubedag("runs", "list", "--dag", dag, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    return {r["run_id"]: r for r in json.loads(proc.stdout)}


def daily_dag(tmp_path: Path) -> Path:
    (tmp_path / "spans").mkdir()
    return write_dag(tmp_path, f"""\
        - name: work
          command: [sh, -c, '{STAMP}']
        """, extra=DAILY)


def spans(tmp_path: Path) -> dict[str, tuple[float, float]]:
    out = {}
    for f in (tmp_path / "spans").glob("*.t"):
        lines = dict(line.split() for line in f.read_text().splitlines()[-2:])
        out[f.name[:-2]] = (float(lines["start"]), float(lines["end"]))
    return out


def test_backfill_creates_backfill_runs_and_leaves_an_existing_run_alone(home, tmp_path):
    dag = daily_dag(tmp_path)
    assert kubedag("dags", "test", str(dag), "--logical-date", "2026-01-02", "-o", "json").returncode == 0
    proc = kubedag("dags", "backfill", "t", "-f", str(dag), "-s", "2026-01-01", "-e", "2026-01-04")
    assert proc.returncode == 0, proc.stderr
    assert "3 run(s) succeeded, 0 failed" in proc.stdout
    got = runs()
    assert sorted(got) == [
        "backfill__2026-01-01T00:00:00+00:00", "backfill__2026-01-03T00:00:00+00:00",
        "backfill__2026-01-04T00:00:00+00:00", "manual__2026-01-02T00:00:00+00:00",
    ]
    backfills = [r for r in got.values() if r["run_type"] == "backfill"]
    assert {r["state"] for r in backfills} == {"success"}
    assert got["backfill__2026-01-03T00:00:00+00:00"]["data_interval_end"] == "2026-01-04T00:00:00+00:00"
    assert len(spans(tmp_path)) == 4  # the manual run's task ran once, in `dags test`, not again


def test_reset_dagruns_runs_the_existing_run_again(home, tmp_path):
    dag = daily_dag(tmp_path)
    kubedag("dags", "test", str(dag), "--logical-date", "2026-01-02", "-o", "json")
    proc = kubedag("dags", "backfill", "t", "-f", str(dag), "-s", "2026-01-02", "-e", "2026-01-02",
                   "--reset-dagruns", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{
        "run_id": "manual__2026-01-02T00:00:00+00:00", "logical_date": "2026-01-02T00:00:00+00:00",
        "data_interval_start": "2026-01-02T00:00:00+00:00", "data_interval_end": "2026-01-03T00:00:00+00:00",
        "action": "reset", "state": "success",
    }]
    log = kubedag("logs", "t", "manual__2026-01-02T00:00:00+00:00", "work")
    assert "try 2 of" in log.stdout


def test_dry_run_lists_the_runs_and_creates_nothing(home, tmp_path):
    dag = daily_dag(tmp_path)
    proc = kubedag("dags", "backfill", "t", "-f", str(dag), "-s", "2026-01-01T06:00", "-e", "2026-01-03", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "backfill__2026-01-02T00:00:00+00:00" in proc.stdout  # the first fire time at or after the start
    assert "backfill__2026-01-03T00:00:00+00:00" in proc.stdout
    assert "backfill__2026-01-01" not in proc.stdout
    assert runs() == {}
    assert spans(tmp_path) == {}


def test_max_active_runs_caps_runs_running_at_once(home, tmp_path):
    dag = daily_dag(tmp_path)
    proc = kubedag("dags", "backfill", "t", "-f", str(dag), "-s", "2026-01-01", "-e", "2026-01-06",
                   "--max-active-runs", "2")
    assert proc.returncode == 0, proc.stderr
    found = spans(tmp_path)
    assert len(found) == 6
    intervals = list(found.values())
    peak = max(sum(1 for s, e in intervals if s <= t < e) for t, _ in intervals)
    assert peak <= 2


def test_a_failed_backfill_run_exits_1(home, tmp_path):
    dag = write_dag(tmp_path, """\
        - name: work
          command: [sh, -c, 'test "$KUBEDAG_LOGICAL_DATE" != 2026-01-02T00:00:00+00:00']
        """, extra=DAILY)
    proc = kubedag("dags", "backfill", "t", "-f", str(dag), "-s", "2026-01-01", "-e", "2026-01-03")
    assert proc.returncode == 1
    assert "2 run(s) succeeded, 1 failed: backfill__2026-01-02T00:00:00+00:00" in proc.stdout


CHAIN = """\
    - name: a
      command: [sh, -c, 'echo $KUBEDAG_TASK_ID $KUBEDAG_TRY_NUMBER >> tries.txt']
    - name: b
      dependsOn: [a]
      command: [sh, -c, 'echo $KUBEDAG_TASK_ID $KUBEDAG_TRY_NUMBER >> tries.txt']
    - name: c
      dependsOn: [b]
      command: [sh, -c, 'echo $KUBEDAG_TASK_ID $KUBEDAG_TRY_NUMBER >> tries.txt']
    - name: d
      command: [sh, -c, 'echo $KUBEDAG_TASK_ID $KUBEDAG_TRY_NUMBER >> tries.txt']
    """


def test_clear_downstream_reruns_exactly_the_cleared_tasks_with_the_next_try(home, tmp_path):
    dag = write_dag(tmp_path, CHAIN)
    code = kubedag("dags", "test", str(dag), "--logical-date", "2026-01-05", "-o", "json").returncode
    assert code == 0
    run_id = "manual__2026-01-05T00:00:00+00:00"
    proc = kubedag("tasks", "clear", "t", "--run", run_id, "--task", "b", "--downstream", "--yes", "-f", str(dag))
    assert proc.returncode == 0, proc.stderr
    assert "Cleared 2 task instance(s): b, c" in proc.stdout
    assert "b: success (try 2)" in proc.stdout and "c: success (try 2)" in proc.stdout
    tries = sorted((tmp_path / "tries.txt").read_text().split("\n")[:-1])
    assert tries == ["a 1", "b 1", "b 2", "c 1", "c 2", "d 1"]
    assert runs()[run_id]["state"] == "success"


def test_clear_asks_before_changing_anything(home, tmp_path):
    dag = write_dag(tmp_path, CHAIN)
    kubedag("dags", "test", str(dag), "--logical-date", "2026-01-05", "-o", "json")
    import subprocess

    from tests.cli.test_cli_local import KUBEDAG

    proc = subprocess.run([KUBEDAG, "tasks", "clear", "t", "-r", "manual__2026-01-05T00:00:00+00:00", "-t", "c",
                           "-f", str(dag)], input="n\n", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "You are about to clear these 1 task instance(s)" in proc.stdout and "c (success, try 1)" in proc.stdout
    assert "Cancelled, nothing was changed." in proc.stdout
    assert len((tmp_path / "tries.txt").read_text().splitlines()) == 4


def test_mark_success_of_a_failed_task_makes_the_run_succeed(home, tmp_path):
    dag = write_dag(tmp_path, """\
        - name: a
          command: ['true']
        - name: b
          dependsOn: [a]
          command: ['false']
        """)
    kubedag("dags", "test", str(dag), "--logical-date", "2026-01-05", "-o", "json")
    run_id = "manual__2026-01-05T00:00:00+00:00"
    assert runs()[run_id]["state"] == "failed"
    proc = kubedag("tasks", "mark", "t", "success", "--run", run_id, "--task", "b", "-f", str(dag))
    assert proc.returncode == 0, proc.stderr
    assert "Marked 1 task instance(s) success: b" in proc.stdout
    assert f"run {run_id}: success" in proc.stdout
    assert runs()[run_id]["state"] == "success"


def test_mark_an_unknown_task_is_an_error_naming_it(home, tmp_path):
    dag = write_dag(tmp_path, CHAIN)
    kubedag("dags", "test", str(dag), "--logical-date", "2026-01-05", "-o", "json")
    proc = kubedag("tasks", "mark", "t", "failed", "-r", "manual__2026-01-05T00:00:00+00:00", "-t", "zz", "-f", str(dag))
    assert proc.returncode == 1
    assert "no task 'zz' in DAG t" in proc.stderr


def test_runs_delete_removes_the_run(home, tmp_path):
    dag = write_dag(tmp_path, CHAIN)
    kubedag("dags", "test", str(dag), "--logical-date", "2026-01-05", "-o", "json")
    kubedag("dags", "test", str(dag), "--logical-date", "2026-01-06", "-o", "json")
    proc = kubedag("runs", "delete", "t", "--run", "manual__2026-01-05T00:00:00+00:00", "--yes", "-f", str(dag))
    assert proc.returncode == 0, proc.stderr
    assert "Deleted run manual__2026-01-05T00:00:00+00:00 of DAG t" in proc.stdout
    assert sorted(runs()) == ["manual__2026-01-06T00:00:00+00:00"]
    log = kubedag("logs", "t", "manual__2026-01-05T00:00:00+00:00", "a")
    assert log.returncode == 1 and "no DAG run" in log.stderr
    again = kubedag("runs", "delete", "t", "--run", "manual__2026-01-05T00:00:00+00:00", "--yes", "-f", str(dag))
    assert again.returncode == 1 and "no run 'manual__2026-01-05T00:00:00+00:00' of DAG 't'" in again.stderr

"""Airflow semantics a user meets on this machine: `dags validate` on a file with no DAG, `kind: empty` tasks, a
try's failure reason at the end of `kubedag logs`, the "try N of M" header after a clear, duration schedules and the
date strings of the template context (a real process, a real SQLite DB in a temporary KUBEDAG_HOME)."""

from __future__ import annotations

import json

from tests.cli.test_cli_local import home, kubedag, run_json, states, write_dag  # noqa: F401 - the `home` fixture

RUN_ID = "manual__2026-01-05T00:00:00+00:00"


def test_validate_rejects_a_file_without_a_dag_as_dags_test_does(home, tmp_path):
    path = tmp_path / "workflow.yaml"
    path.write_text("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: w}\nspec: {}\n")
    validate = kubedag("dags", "validate", str(path))
    assert validate.returncode == 1
    assert validate.stdout == f"{path}: no DAG manifest (kind: DAG) in file\n"
    test = kubedag("dags", "test", str(path))
    assert test.returncode == 1 and "no DAG manifest (kind: DAG) in file" in test.stderr


def test_validate_names_a_missing_command_and_the_airflow_field_meant(home, tmp_path):
    dag = write_dag(tmp_path, """\
        - name: a
          retries: 1
        """, extra="schedule_interval: '@daily'\n")
    proc = kubedag("dags", "validate", str(dag))
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        f"{dag}: spec.schedule_interval: unknown field (did you mean 'schedule'?)",
        f"{dag}: spec.tasks[0].command: required: the command the task runs (or kind: empty for a task that does "
        "nothing, as Airflow's EmptyOperator)",
    ]


def test_empty_tasks_succeed_without_a_process(home, tmp_path):
    dag = write_dag(tmp_path, """\
        - name: start
          kind: empty
        - name: work
          dependsOn: [start]
          command: [sh, -c, 'echo work >> ran.txt']
        - name: end
          kind: empty
          dependsOn: [work]
        """)
    code, result = run_json(str(dag), "--logical-date", "2026-01-05")
    assert code == 0 and result["state"] == "success"
    assert states(result) == {"start": ("success", 1), "work": ("success", 1), "end": ("success", 1)}
    assert (tmp_path / "ran.txt").read_text() == "work\n"
    no_log = kubedag("logs", "t", RUN_ID, "start")
    assert no_log.returncode == 1 and "no any try of task 'start'" in no_log.stderr


def test_logs_end_with_the_failure_reason_of_the_try(home, tmp_path):
    dag = write_dag(tmp_path, """\
        - name: bad
          command: [sh, -c, 'echo doing; exit 3']
        - name: good
          command: ['true']
        """)
    code, _ = run_json(str(dag), "--logical-date", "2026-01-05")
    assert code == 1
    log = kubedag("logs", "t", RUN_ID, "bad").stdout
    assert log.endswith("doing\n[kubedag] try 1 failed: exit code 3\n")
    assert "[kubedag]" not in kubedag("logs", "t", RUN_ID, "good").stdout


def test_a_cleared_task_gets_its_retries_again_and_its_log_says_so(home, tmp_path):
    dag = write_dag(tmp_path, """\
        - name: flaky
          command: [sh, -c, 'echo $KUBEDAG_TRY_NUMBER >> tries.txt; exit 1']
        """)
    assert run_json(str(dag), "--logical-date", "2026-01-05")[0] == 1
    proc = kubedag("tasks", "clear", "t", "--run", RUN_ID, "--task", "flaky", "--yes", "-f", str(dag))
    assert "flaky: failed (try 2)" in proc.stdout, proc.stdout + proc.stderr
    log = kubedag("logs", "t", RUN_ID, "flaky", "--try", "2").stdout
    assert f"t {RUN_ID} flaky try 2 of 2\n" in log  # was "try 2 of 1": the clear renewed the retries
    assert log.endswith("[kubedag] try 2 failed: exit code 1\n")


def test_a_duration_schedule_runs_every_interval_from_start_date(home, tmp_path):
    dag = write_dag(tmp_path, """\
        - name: a
          command: ['true']
        """, extra="schedule: 10m\nstartDate: '2026-01-01T00:03:00Z'\n")
    proc = kubedag("dags", "schedule", str(dag), "--now", "2026-01-01T00:30:00Z", "--count", "1", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [(r["data_interval_start"], r["data_interval_end"]) for r in report["due"]] == [
        ("2026-01-01T00:03:00+00:00", "2026-01-01T00:13:00+00:00"),
        ("2026-01-01T00:13:00+00:00", "2026-01-01T00:23:00+00:00"),
    ]
    assert report["upcoming"][0]["run_after"] == "2026-01-01T00:33:00+00:00"


def test_a_manual_runs_next_and_prev_ds_are_its_own_date(home, tmp_path):
    dag = write_dag(tmp_path, """\
        - name: dates
          command: [sh, -c, 'echo "{{ next_ds }} {{ prev_ds }} {{ yesterday_ds }} {{ tomorrow_ds_nodash }} {{ logical_date | ts_nodash }}" > dates.txt']
        """, extra="schedule: '@daily'\nstartDate: '2026-01-01'\n")
    assert run_json(str(dag), "--logical-date", "2026-01-05T10:00:00Z")[0] == 0
    assert (tmp_path / "dates.txt").read_text() == "2026-01-05 2026-01-05 2026-01-04 20260106 20260105T100000\n"


def test_an_xcom_over_the_limit_fails_the_try_and_logs_say_why(home, tmp_path):
    dag = write_dag(tmp_path, """\
        - name: big
          command: [sh, -c, 'head -c 5000 /dev/zero | tr "\\\\0" x | sed "s/.*/\\"&\\"/" > "$KUBEDAG_XCOM_PATH"']
        """)
    assert run_json(str(dag), "--logical-date", "2026-01-05")[0] == 1
    log = kubedag("logs", "t", RUN_ID, "big").stdout
    assert log.endswith("[kubedag] try 1 failed: XCom: XCom return value is 5002 bytes, more than the 4096 allowed "
                        "(Kubernetes' termination message limit): push a reference (a path, a URL) instead\n")

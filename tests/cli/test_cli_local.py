"""The `kubedag` command line end to end, as a user runs it: a real process, a real SQLite DB in a
temporary KUBEDAG_HOME, tasks run as real local processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest

from tests.example.test_supermarket_scripts import SUPERMARKETS, clean_delivery, expected_metrics, table_dicts

ROOT = Path(__file__).resolve().parents[2]
KUBEDAG = str(Path(sys.executable).with_name("kubedag"))


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBEDAG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBEDAG_DATABASE_URL", raising=False)
    return tmp_path / "home"


def kubedag(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([KUBEDAG, *args], capture_output=True, text=True, cwd=cwd, env=os.environ.copy(), timeout=120)


def write_dag(tmp_path: Path, tasks: str, name: str = "t", extra: str = "") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        "apiVersion: kubedag.io/v1alpha1\nkind: DAG\n"
        f"metadata: {{name: {name}}}\nspec:\n{textwrap.indent(textwrap.dedent(extra), '  ')}"
        "  tasks:\n" + textwrap.indent(textwrap.dedent(tasks), "    ")
    )
    return path


def alive(pid: int) -> bool:
    """True if the process exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def run_json(*args: str) -> tuple[int, dict]:
    proc = kubedag("dags", "test", *args, "-o", "json")
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def states(result: dict) -> dict[str, tuple[str, int]]:
    return {t["task_id"]: (t["state"], t["try_number"]) for t in result["tasks"]}


def test_supermarket_example_runs_end_to_end_with_correct_metrics(home, tmp_path):
    data = tmp_path / "data"
    code, result = run_json(str(ROOT / "examples/supermarket/dag.yaml"), "--logical-date", "2026-11-01",
                            "--conf", json.dumps({"data_root": str(data)}))
    assert code == 0, result
    assert result["state"] == "success"
    assert result["run_id"] == "manual__2026-11-01T00:00:00+00:00"
    assert len(result["tasks"]) == 10
    assert all(t["state"] == "success" and t["try_number"] == 1 and t["exit_code"] == 0 for t in result["tasks"])
    got = table_dicts(data, "2026-11-01")
    for n in SUPERMARKETS:
        want = expected_metrics(clean_delivery(data, "2026-11-01", n)[0])
        assert got[n]["transactions"] == want["transactions"]
        assert got[n]["units_sold"] == want["units_sold"]
        assert f"{got[n]['net_revenue']:.2f}" == f"{want['net_revenue']:.2f}"
    # the run and its task instances are in the metadata DB
    runs = json.loads(kubedag("runs", "list", "-o", "json").stdout)
    assert [(r["dag_id"], r["run_id"], r["state"], r["run_type"]) for r in runs] == [
        ("supermarket-promotions", "manual__2026-11-01T00:00:00+00:00", "success", "manual")]
    # a rerun of the same logical date replaces the run (as airflow dags test) and gives the same report
    report = (data / "reports/promotion_metrics_2026-11-01.csv").read_bytes()
    code, _ = run_json(str(ROOT / "examples/supermarket/dag.yaml"), "--logical-date", "2026-11-01",
                       "--conf", json.dumps({"data_root": str(data)}))
    assert code == 0
    assert (data / "reports/promotion_metrics_2026-11-01.csv").read_bytes() == report
    assert len(json.loads(kubedag("runs", "list", "-o", "json").stdout)) == 1


def test_failing_task_is_retried_then_fails_the_run_with_logs_per_try(home, tmp_path):
    dag = write_dag(tmp_path, """\
        - name: flaky
          retries: 2
          command: [sh, -c, 'echo "try $KUBEDAG_TRY_NUMBER of {{ task.task_id }}"; exit 3']
        - name: after
          dependsOn: [flaky]
          command: ["true"]
        - name: cleanup
          dependsOn: [flaky]
          triggerRule: all_done
          command: ["true"]
        """)
    code, result = run_json(str(dag), "--logical-date", "2026-11-05", "--no-retry-delay")
    assert code == 1
    assert result["state"] == "failed"
    assert states(result) == {"flaky": ("failed", 3), "after": ("upstream_failed", 0), "cleanup": ("success", 1)}
    flaky = next(t for t in result["tasks"] if t["task_id"] == "flaky")
    assert flaky["exit_code"] == 3
    run_id = result["run_id"]
    for n in (1, 2, 3):
        log = kubedag("logs", "t", run_id, "flaky", "--try", str(n))
        assert log.returncode == 0, log.stderr
        assert f"try {n} of flaky" in log.stdout
    assert "try 3 of flaky" in kubedag("logs", "t", run_id, "flaky").stdout
    missing = kubedag("logs", "t", run_id, "flaky", "--try", "4")
    assert missing.returncode == 1 and "no try 4" in missing.stderr


def test_execution_timeout_kills_the_whole_process_group(home, tmp_path):
    pidfile = tmp_path / "child.pid"
    dag = write_dag(tmp_path, f"""\
        - name: slow
          executionTimeout: 1s
          command: [sh, -c, 'sleep 60 & echo $! > {pidfile}; wait']
        """)
    code, result = run_json(str(dag), "--logical-date", "2026-11-05")
    assert code == 1
    assert states(result) == {"slow": ("failed", 1)}
    child = int(pidfile.read_text())
    assert not alive(child), "the task's child process survived the timeout"
    log = kubedag("logs", "t", result["run_id"], "slow").stdout
    assert "killing the process group: execution timeout after 1s" in log
    # the try's history row says how it ended
    from kubedag.store import repository
    from kubedag.store.db import open_store

    _, Session = open_store()
    with Session() as session:
        (attempt,) = repository.get_tries(session, "t", result["run_id"], "slow")
        assert (attempt.state, attempt.reason) == ("failed", "execution timeout after 1s")
        assert attempt.end_date is not None and attempt.duration >= 1.0


def test_template_error_fails_only_that_task_with_the_error_in_its_log(home, tmp_path):
    dag = write_dag(tmp_path, """\
        - name: bad
          command: [echo, "{{ params.nope }}"]
        - name: good
          command: [echo, "{{ ds }}"]
        """)
    code, result = run_json(str(dag), "--logical-date", "2026-11-05T10:00:00")
    assert code == 1
    assert states(result) == {"bad": ("failed", 1), "good": ("success", 1)}
    log = kubedag("logs", "t", result["run_id"], "bad").stdout
    assert "template error" in log and "nope" in log


def test_conf_overrides_params_and_templates_reach_the_process(home, tmp_path):
    out = tmp_path / "out.txt"
    dag = write_dag(tmp_path, f"""\
        - name: write
          env: {{WHERE: "{{{{ params.region }}}}"}}
          command: [sh, -c, 'echo "$WHERE {{{{ ds }}}} {{{{ dag_run.conf.n }}}} {{{{ macros.ds_add(ds, 1) }}}}" > {out}']
        """, extra="params: {region: kr}\n")
    code, _ = run_json(str(dag), "--logical-date", "2026-11-05", "--conf", '{"region": "eu", "n": 7}')
    assert code == 0
    assert out.read_text().strip() == "eu 2026-11-05 7 2026-11-06"


def test_tasks_test_runs_one_task_ignoring_dependencies_and_records_nothing(home, tmp_path):
    dag = write_dag(tmp_path, """\
        - name: first
          command: ["false"]
        - name: second
          dependsOn: [first]
          command: [echo, "second ran for {{ ds }}"]
        """)
    proc = kubedag("tasks", "test", str(dag), "second", "--logical-date", "2026-11-05")
    assert proc.returncode == 0, proc.stderr
    assert "second ran for 2026-11-05" in proc.stdout
    assert json.loads(kubedag("runs", "list", "-o", "json").stdout) == []
    assert kubedag("tasks", "test", str(dag), "first").returncode == 1
    unknown = kubedag("tasks", "test", str(dag), "third")
    assert unknown.returncode == 2 and "task 'third' is not in DAG 't'" in unknown.stderr


def test_validate_reports_every_error_of_every_file(tmp_path):
    good = write_dag(tmp_path, "- name: a\n  command: ['true']\n", name="good")
    bad = write_dag(tmp_path, """\
        - name: a
          dependsOn: [b]
        - name: b
          dependsOn: [a]
          retryDelay: soon
        """, name="bad", extra="schedule: '* * *'\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: DAG\nspec: [unclosed\n")
    proc = kubedag("dags", "validate", str(good), str(bad), str(broken))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert f"{good}: valid" in lines
    assert any(l.startswith(f"{bad}: spec.schedule: invalid cron expression '* * *'") for l in lines)
    assert f"{bad}: spec.tasks[1].retryDelay: invalid duration 'soon': expected <number><unit> parts with units w, d, h, m, s, ms (e.g. '30s', '5m', '1h30m', '2d')" in lines
    assert f"{bad}: spec.tasks: dependency cycle: a -> b -> a" in lines
    assert any(l.startswith(f"{broken}: invalid YAML at line") for l in lines)
    assert kubedag("dags", "validate", str(good)).returncode == 0


def test_schedule_json_contract(tmp_path):
    dag = write_dag(tmp_path, "- name: a\n  command: ['true']\n", extra="""\
        schedule: "0 16 * * *"
        startDate: "2026-11-01T00:00:00Z"
        catchup: true
        """)
    proc = kubedag("dags", "schedule", str(dag), "--now", "2026-11-03T17:00:00Z", "--count", "2", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [r["run_id"] for r in report["due"]] == [
        "scheduled__2026-11-01T16:00:00+00:00", "scheduled__2026-11-02T16:00:00+00:00"]
    assert report["due"][0] == {
        "run_id": "scheduled__2026-11-01T16:00:00+00:00",
        "logical_date": "2026-11-01T16:00:00+00:00",
        "data_interval_start": "2026-11-01T16:00:00+00:00",
        "data_interval_end": "2026-11-02T16:00:00+00:00",
        "run_after": "2026-11-02T16:00:00+00:00",
    }
    assert [r["logical_date"] for r in report["upcoming"]] == ["2026-11-03T16:00:00+00:00", "2026-11-04T16:00:00+00:00"]
    assert report["manual"] == {"data_interval_start": "2026-11-02T16:00:00+00:00",
                                "data_interval_end": "2026-11-03T16:00:00+00:00"}


def test_invalid_manifest_for_test_names_the_problem(home, tmp_path):
    dag = write_dag(tmp_path, "- name: a\n  command: ['true']\n  retries: many\n")
    proc = kubedag("dags", "test", str(dag))
    assert proc.returncode == 1
    assert "spec.tasks[0].retries" in proc.stderr


def test_unreachable_database_is_a_clear_error_not_a_traceback(home, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBEDAG_DATABASE_URL", "postgresql://kubedag@127.0.0.1:1/kubedag")
    dag = write_dag(tmp_path, "- name: a\n  command: ['true']\n")
    for args in (("dags", "test", str(dag)), ("runs", "list")):
        proc = kubedag(*args)
        assert proc.returncode == 1
        assert "\nerror: cannot use the metadata DB:" in "\n" + proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


def test_parallelism_bounds_how_many_tries_run_at_once(home, tmp_path):
    dag = write_dag(tmp_path, "".join(f"- name: s{i}\n  command: [sleep, '0.4']\n" for i in range(5)))
    code, result = run_json(str(dag), "--parallelism", "2")
    assert code == 0
    spans = [(datetime.fromisoformat(t["start_date"]), datetime.fromisoformat(t["end_date"])) for t in result["tasks"]]
    # how many tries were running at each try's start
    overlaps = [sum(1 for s, e in spans if s <= start < e) for start, _ in spans]
    assert max(overlaps) == 2


def test_schedule_table_for_people(tmp_path):
    dag = write_dag(tmp_path, "- name: a\n  command: ['true']\n", extra="""\
        schedule: "@daily"
        startDate: "2026-11-01"
        catchup: false
        """)
    proc = kubedag("dags", "schedule", str(dag), "--now", "2026-11-10T12:00:00Z", "--count", "1")
    assert proc.returncode == 0, proc.stderr
    assert "due now (1)" in proc.stdout and "upcoming (1)" in proc.stdout
    assert "scheduled__2026-11-09T00:00:00+00:00" in proc.stdout
    assert "a manual run now would cover [2026-11-09T00:00:00+00:00, 2026-11-10T00:00:00+00:00)" in proc.stdout


def test_dags_test_names_a_missing_variables_source_without_a_traceback(home, tmp_path):
    path = write_dag(tmp_path, "- {name: a, command: [echo, '{{ var.value.region }}']}\n",
                     extra="variablesFrom: [{configMapRef: {name: settings}}]\n")
    result = kubedag("dags", "test", str(path), "-o", "json")
    assert result.returncode == 1
    assert "settings" in result.stderr and "Traceback" not in result.stderr

"""The local operations as a user runs them: `dags list/trigger/pause/unpause/show`, `tasks list` on this machine
(the metadata DB and a DAG folder), the DAG's settings in `dags backfill -f` and `tasks clear -f`, and `tasks test`
as Airflow's, task by task on the seeds' NFT pipeline (examples/nft) against a local stand-in for its API."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.test_cli_local import ROOT, home, kubedag, write_dag  # noqa: F401 - the `home` fixture

SETTINGS = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {region: eu-west}
"""


def runs(dag: str) -> dict[str, dict]:
    proc = kubedag("runs", "list", "--dag", dag, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    return {r["run_id"]: r for r in json.loads(proc.stdout)}


# --- bug: backfill -f and clear -f dropped the DAG's settings (variablesFrom...) ----------------------------


def dag_using_a_variable(tmp_path: Path) -> Path:
    (tmp_path / "settings.yaml").write_text(SETTINGS)
    return write_dag(tmp_path, """\
        - name: where
          command: [sh, -c, 'echo "{{ var.value.region }} {{ ds }}" >> regions.txt']
        """, extra="schedule: '@daily'\nstartDate: '2026-01-01'\nvariablesFrom: [{configMapRef: {name: settings}}]\n")


def test_backfill_with_a_file_uses_the_dags_variables(home, tmp_path):
    dag = dag_using_a_variable(tmp_path)
    proc = kubedag("dags", "backfill", "t", "-f", str(dag), "-s", "2026-01-01", "-e", "2026-01-02")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted((tmp_path / "regions.txt").read_text().splitlines()) == ["eu-west 2026-01-01", "eu-west 2026-01-02"]


def test_clear_with_a_file_uses_the_dags_variables(home, tmp_path):
    dag = dag_using_a_variable(tmp_path)
    assert kubedag("dags", "test", str(dag), "--logical-date", "2026-01-02", "-o", "json").returncode == 0
    proc = kubedag("tasks", "clear", "t", "-r", "manual__2026-01-02T00:00:00+00:00", "--yes", "-f", str(dag))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "where: success (try 2)" in proc.stdout
    assert (tmp_path / "regions.txt").read_text().splitlines() == ["eu-west 2026-01-02", "eu-west 2026-01-02"]


# --- cluster commands on this machine -----------------------------------------------------------------------


def folder_with_two_dags(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    write_dag(folder, "- {name: a, command: ['true']}\n- {name: b, dependsOn: [a], command: ['true']}\n", name="daily",
              extra="description: Sales of the day\ntags: [sales, daily]\nschedule: '0 16 * * *'\n"
                    "startDate: '2026-01-01'\ncatchup: false\n")
    write_dag(folder, "- {name: only, command: ['true']}\n", name="adhoc")
    (folder / "notes.yaml").write_text("kind: ConfigMap\n")
    return folder


def test_dags_list_trigger_pause_on_the_local_db(home, tmp_path):
    folder = str(folder_with_two_dags(tmp_path))
    listed = kubedag("dags", "list", "--dags-folder", folder, "-o", "json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert sorted(rows) == ["adhoc", "daily"]
    daily = rows["daily"]
    assert (daily["description"], daily["tags"], daily["paused"], daily["last_run"]) == (
        "Sales of the day", ["sales", "daily"], False, None)
    assert (daily["schedule_words"], daily["cron"]) == ("every day at 16:00 (UTC)", "0 16 * * *")
    assert daily["next_run_at"].endswith("T16:00:00+00:00")
    assert rows["adhoc"]["schedule_words"] == "never (manual runs only)" and rows["adhoc"]["next_run_at"] is None

    trig = kubedag("dags", "trigger", "daily", "--dags-folder", folder, "--conf", '{"n": 1}',
                   "--logical-date", "2026-03-01T10:00:00.123456+00:00")
    assert trig.returncode == 0, trig.stderr
    assert "run_id: manual__2026-03-01T10:00:00.123456+00:00" in trig.stdout
    assert "A scheduler must be running to execute it" in trig.stderr
    run = runs("daily")["manual__2026-03-01T10:00:00.123456+00:00"]
    assert (run["run_type"], run["state"], run["logical_date"]) == ("manual", "queued", "2026-03-01T10:00:00.123456+00:00")
    # the data interval from the timetable, as Airflow's infer_manual_data_interval: the last complete day
    assert (run["data_interval_start"], run["data_interval_end"]) == ("2026-02-27T16:00:00+00:00", "2026-02-28T16:00:00+00:00")
    again = kubedag("dags", "trigger", "daily", "--dags-folder", folder, "--logical-date", "2026-03-01T12:00:00Z",
                    "--run-id", "manual__2026-03-01T10:00:00.123456+00:00")
    assert again.returncode == 1
    assert "already has run 'manual__2026-03-01T10:00:00.123456+00:00'" in again.stderr

    assert kubedag("dags", "pause", "daily", "--dags-folder", folder).stdout.strip() == \
        "DAG daily: paused (in the metadata DB)"
    rows = {r["name"]: r for r in json.loads(kubedag("dags", "list", "--dags-folder", folder, "-o", "json").stdout)}
    assert rows["daily"]["paused"] is True and rows["daily"]["next_run_at"] is None
    assert rows["daily"]["last_run"]["run_id"] == "manual__2026-03-01T10:00:00.123456+00:00"
    # without a folder: the DAGs the metadata DB knows
    stored = json.loads(kubedag("dags", "list", "-o", "json").stdout)
    assert [(r["name"], r["paused"]) for r in stored] == [("daily", True)]
    assert kubedag("dags", "unpause", "daily", "-o", "json").stdout.strip().startswith('{')
    assert json.loads(kubedag("dags", "list", "-o", "json").stdout)[0]["paused"] is False
    unknown = kubedag("dags", "trigger", "nope")
    assert unknown.returncode == 1 and "no DAG 'nope' in the metadata DB" in unknown.stderr


def test_dags_show_text_and_dot_and_tasks_list(home, tmp_path):
    folder = folder_with_two_dags(tmp_path)
    text = kubedag("dags", "show", str(folder / "daily.yaml"))
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines() == [
        "DAG daily: 2 task(s), schedule every day at 16:00 (UTC)", "  a [command]", "  b [command]  <- a"]
    dot = kubedag("dags", "show", "daily", "--dags-folder", str(folder), "-o", "dot").stdout
    assert dot.startswith('digraph "daily" {') and '"a" -> "b";' in dot and dot.rstrip().endswith("}")
    listed = kubedag("tasks", "list", str(folder / "daily.yaml"), "--tree")
    assert listed.stdout.splitlines() == ["a", "b  <- a"]


# --- tasks test, as Airflow's, on the seeds' NFT pipeline ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def nft(tmp_path):
    """A copy of examples/nft whose opensea_api connection points at the stand-in API on a free port."""
    folder = tmp_path / "nft"
    shutil.copytree(ROOT / "examples/nft", folder)
    port = free_port()
    conns = folder / "connections.yaml"
    conns.write_text(conns.read_text().replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
    server = subprocess.Popen([sys.executable, str(folder / "etl/fake_api.py"), str(port)])
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield folder, server
    server.kill()
    server.wait()


def test_the_nft_pipeline_can_be_tested_task_by_task(home, nft):
    folder, server = nft
    dag = str(folder / "dag.yaml")

    def test(task: str, *date: str) -> subprocess.CompletedProcess:
        return kubedag("tasks", "test", dag, task, *date)

    created = test("creating_table", "2023-01-01")
    assert created.returncode == 0, created.stderr
    assert "table nfts ready" in created.stdout
    sensor = test("is_api_available")
    assert sensor.returncode == 0, sensor.stderr
    assert "condition met (one poke)" in sensor.stderr
    # the run at 2023-01-01 is recorded (queued: no scheduler here): tested tasks push and pull its XComs
    assert kubedag("dags", "trigger", "nft-pipeline", "-f", dag, "--logical-date", "2023-01-01").returncode == 0
    extract = test("extract_nft", "2023-01-01")
    assert extract.returncode == 0, extract.stderr
    assert '"token_id": "1"' in extract.stdout and "XCom return_value = " in extract.stderr
    process = test("process_nft", "2023-01-01")
    assert process.returncode == 0, process.stderr
    assert (folder / "out/processed_nft.csv").read_text().strip() == "1,Doodle #1,https://example.invalid/1.png"
    store = test("store_nft", "2023-01-01")
    assert store.returncode == 0, store.stderr
    import sqlite3

    with sqlite3.connect(folder / "out/nft.db") as db:
        assert db.execute("SELECT token_id, name FROM nfts").fetchall() == [("1", "Doodle #1")]
    assert runs("nft-pipeline")["manual__2023-01-01T00:00:00+00:00"]["state"] == "queued"  # states not recorded
    server.kill()
    server.wait()
    down = test("is_api_available")
    assert down.returncode == 1 and "condition not met (one poke)" in down.stderr


def test_tasks_test_without_a_recorded_run_has_no_upstream_xcom(home, nft):
    folder, _ = nft
    proc = kubedag("tasks", "test", str(folder / "dag.yaml"), "process_nft", "2023-02-01")
    assert proc.returncode != 0
    assert "assets is empty" in proc.stderr


def test_tasks_test_masks_secret_values_in_the_tasks_output(home, tmp_path):
    (tmp_path / "creds.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\n"
                                         "stringData: {api_token: s3cr3t-value-42}\n")
    dag = write_dag(tmp_path, "- {name: show, command: [sh, -c, 'echo token={{ var.value.api_token }}; echo done']}\n",
                    extra="variablesFrom: [{secretRef: {name: creds}}]\n")
    proc = kubedag("tasks", "test", str(dag), "show", "2026-01-01")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["token=***", "done"]
    assert "s3cr3t-value-42" not in proc.stdout + proc.stderr


def test_tasks_test_of_a_trigger_task_triggers_its_dag(home, tmp_path):
    folder = tmp_path / "trigger"
    shutil.copytree(ROOT / "examples/parity/trigger", folder)
    proc = kubedag("tasks", "test", str(folder / "parent.yaml"), "kick", "2026-11-01")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    child = runs("child")
    assert [(r["run_type"], r["state"]) for r in child.values()] == [("manual", "success")]
    assert runs("parent") == {}  # the tested task's own run is not recorded

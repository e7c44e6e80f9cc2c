"""Sensors (reschedule and poke, softFail, timeout), pools and exit 99 under ``dags test``'s local runner."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kubedag.store import repository
from tests.local.conftest import dag_manifest, log, run, session, states, write

SUPERMARKETS = ["s1", "s2", "s3", "s4"]


def create_later(folder: Path, names_and_delays: list[tuple[str, float]]) -> threading.Thread:
    def work() -> None:
        start = time.monotonic()
        for name, delay in sorted(names_and_delays, key=lambda p: p[1]):
            time.sleep(max(0.0, delay - (time.monotonic() - start)))
            (folder / name).write_text("data\n")

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("limit", ["pool", "maxActiveTasks"])
def test_four_supermarket_file_sensors_in_reschedule_mode_all_finish_and_downstream_succeeds(folder, limit):
    sensors = "".join(
        f"""
        - name: wait-{s}
          pool: {'supermarkets' if limit == 'pool' else 'default-pool'}
          sensor: {{mode: reschedule, pokeInterval: 1s, timeout: 60s, file: {{path: 'incoming/{s}.csv'}}}}
        """
        for s in SUPERMARKETS
    )
    write(folder, "dag.yaml", dag_manifest("supermarkets", sensors + """
        - name: process
          command: [sh, -c, 'cat incoming/*.csv | wc -l']
          dependsOn: [wait-s1, wait-s2, wait-s3, wait-s4]
        """, extra="maxActiveTasks: 2\n" if limit == "maxActiveTasks" else ""))
    write(folder, "pool.yaml", """
        apiVersion: kubedag.io/v1alpha1
        kind: Pool
        metadata: {name: supermarkets}
        spec: {slots: 2}
        """)
    (folder / "incoming").mkdir()
    thread = create_later(folder / "incoming", [("s1.csv", 0.2), ("s3.csv", 1.0), ("s2.csv", 1.8), ("s4.csv", 2.6)])
    result = run(folder, "supermarkets")
    thread.join()
    assert result.state == "success", result.run.reason
    assert states(result) == {**{f"wait-{s}": "success" for s in SUPERMARKETS}, "process": "success"}
    # a rescheduled sensor keeps its try number; its pokes append to one log
    assert all(result.tis[f"wait-{s}"].try_number == 1 for s in SUPERMARKETS)
    assert "4" in log(result, "process")
    later = log(result, "wait-s4")
    assert later.count("kubedag: running") >= 2 and later.rstrip().endswith("found 1: incoming/s4.csv")
    with session() as s:
        row = repository.get_try(s, "supermarkets", result.run.run_id, "wait-s4", 1)
        assert row.state == "success"


def test_poke_mode_command_sensor_waits_in_one_process(folder):
    write(folder, "dag.yaml", dag_manifest("poke", """
        - name: wait
          command: [sh, -c, 'test -f flag || exit 75']
          sensor: {mode: poke, pokeInterval: 1s, timeout: 60s}
        - name: after
          command: [cat, flag]
          dependsOn: [wait]
        """))
    thread = create_later(folder, [("flag", 1.2)])
    result = run(folder, "poke")
    thread.join()
    assert states(result) == {"wait": "success", "after": "success"}
    text = log(result, "wait")
    assert text.count("kubedag: running") == 1 and "kubedag: poke 1: not met" in text


def test_sensor_timeout_fails_and_soft_fail_skips(folder):
    write(folder, "dag.yaml", dag_manifest("timeouts", """
        - name: hard
          command: [sh, -c, 'exit 75']
          sensor: {mode: poke, pokeInterval: 1s, timeout: 1s}
        - name: soft
          command: [sh, -c, 'exit 75']
          sensor: {mode: reschedule, pokeInterval: 1s, timeout: 1s, softFail: true}
        """))
    result = run(folder, "timeouts")
    assert result.state == "failed"
    assert states(result) == {"hard": "failed", "soft": "skipped"}
    assert result.tis["hard"].reason.startswith("sensor timeout: not met after 1s")
    assert "softFail" in result.tis["soft"].reason


def test_exit_99_skips_the_task_and_its_all_success_downstream(folder):
    write(folder, "dag.yaml", dag_manifest("skip", """
        - name: maybe
          command: [sh, -c, 'exit 99']
        - name: next
          command: ['true']
          dependsOn: [maybe]
        """))
    result = run(folder, "skip")
    assert result.state == "success"
    assert states(result) == {"maybe": "skipped", "next": "skipped"}
    with session() as s:
        assert repository.get_try(s, "skip", result.run.run_id, "maybe", 1).state == "skipped"


def test_a_pool_of_one_slot_runs_its_tasks_one_at_a_time(folder):
    tasks = "".join(
        f"""
        - name: t{i}
          pool: single
          command: [sh, -c, 'mkdir lock || exit 3; sleep 0.3; rmdir lock']
        """ for i in range(3)
    )
    write(folder, "dag.yaml", dag_manifest("pooled", tasks))
    write(folder, "pools.yaml", """
        apiVersion: kubedag.io/v1alpha1
        kind: Pool
        metadata: {name: single}
        spec: {slots: 1}
        """)
    result = run(folder, "pooled")
    assert states(result) == {"t0": "success", "t1": "success", "t2": "success"}


def test_a_task_in_a_pool_the_folder_does_not_define_stops_the_run_naming_the_pool(folder):
    write(folder, "dag.yaml", dag_manifest("nopool", """
        - name: t
          pool: gpu
          command: ['true']
        """))
    with pytest.raises(RuntimeError, match=r"cannot progress: t: pool gpu does not exist.*no Pool named gpu"):
        run(folder, "nopool")


def test_broken_manifests_next_to_the_dag_do_not_break_dags_test(folder, home):
    write(folder, "dag.yaml", dag_manifest("fine", """
        - name: t
          command: [sh, -c, 'echo hello']
        """))
    (folder / "broken.yaml").write_text("kind: Pool\n  : [unclosed\n")
    (folder / "other.yaml").write_text("apiVersion: kubedag.io/v1alpha1\nkind: DAG\nmetadata: {name: x}\nspec: {}\n")
    kubedag = str(Path(sys.executable).with_name("kubedag"))
    proc = subprocess.run([kubedag, "dags", "test", str(folder / "dag.yaml"), "-o", "json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"state": "success"' in proc.stdout

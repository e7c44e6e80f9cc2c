"""The local run loop survives what happens around it: a log clean-up deleting folders while tries start, a
metadata DB URL with a password (never written to a log), output that is not a terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from tests.local.conftest import dag_manifest, run, states, write

KUBEDAG = str(Path(sys.executable).with_name("kubedag"))


def test_a_log_folder_deleted_as_a_try_starts_does_not_crash_the_run(folder, monkeypatch):
    """The seeds' log clean-up (``find logs -delete``) can remove a try's folder between its creation and the
    first write: that try still runs (its folder is made again) and the loop never crashes."""
    write(folder, "dag.yaml", dag_manifest("cleanup", """
        - name: a
          command: [echo, a]
        - name: b
          command: [echo, b]
        - name: c
          dependsOn: [a, b]
          command: [echo, c]
        """))
    real_mkdir = Path.mkdir
    deleted: list[str] = []

    def mkdir_then_clean_up(self: Path, *args, **kwargs):
        real_mkdir(self, *args, **kwargs)
        if self.name.startswith("task_id=") and self.name not in deleted:
            deleted.append(self.name)
            self.rmdir()  # the concurrent `find ... -delete` wins the race, once per folder

    monkeypatch.setattr(Path, "mkdir", mkdir_then_clean_up)
    result = run(folder, "cleanup")
    assert deleted == ["task_id=a", "task_id=b", "task_id=c"]
    assert states(result) == {"a": "success", "b": "success", "c": "success"}
    assert str(result.run.state) == "success"


class ListRecorder:
    def __init__(self) -> None:
        self.saved: list = []

    def save(self, run, tis, tries, xcoms=None):  # noqa: ANN001, D102
        self.saved.append((run, tis, tries))


def test_the_database_password_reaches_no_log_of_trigger_and_external_task_tries(folder, home):
    from kubedag.core import engine
    from kubedag.core.states import RunType
    from kubedag.local.bag import DagBag
    from kubedag.local.runner import LocalRunner, RunOptions

    password = "S3cretPassw0rd"
    url = f"postgresql://kubedag:{password}@127.0.0.1:9/nodb"
    write(folder, "dag.yaml", dag_manifest("parent", """
        - name: kick
          trigger: {dag: child}
        - name: wait
          sensor: {mode: reschedule, timeout: 1s, externalTask: {dag: child}}
        """))
    write(folder, "child.yaml", dag_manifest("child", """
        - name: x
          command: ["true"]
        """))
    dag = DagBag(folder).dag("parent")
    when = datetime(2026, 11, 1, tzinfo=timezone.utc)
    run_ = engine.DagRun(dag_id="parent", run_id="manual__1", run_type=RunType.MANUAL, logical_date=when,
                         data_interval_start=when, data_interval_end=when)
    logs = home / "logs"
    recorder = ListRecorder()
    options = RunOptions(workdir=folder, logs_dir=logs, no_retry_delay=True, database_url=url, dag_folder=folder)
    final = LocalRunner(dag, run_, recorder, options).run()
    assert str(final.state) == "failed"  # no Postgres there: both tries fail, and say why
    texts = [p.read_text() for p in logs.rglob("*.log")]
    assert len(texts) >= 2 and any("kubedag.cli.trigger" in t for t in texts)
    assert any("kubedag.sensors external" in t for t in texts)
    for text in texts:
        assert password not in text
    for _, tis, tries in recorder.saved:
        for item in [*tis, *tries]:
            assert password not in (item.reason or "")


def test_the_database_password_reaches_no_cli_output(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBEDAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KUBEDAG_DATABASE_URL", "postgresql://kubedag:S3cretPassw0rd@127.0.0.1:9/nodb")
    write(tmp_path, "dag.yaml", dag_manifest("t", """
        - name: a
          command: ["true"]
        """))
    proc = subprocess.run([KUBEDAG, "dags", "test", str(tmp_path / "dag.yaml")], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=120)
    assert proc.returncode != 0
    assert "S3cretPassw0rd" not in proc.stdout + proc.stderr


def test_dags_test_prints_one_line_per_state_change_when_stdout_is_not_a_terminal(tmp_path, home):
    write(tmp_path, "dag.yaml", dag_manifest("t", """
        - name: first
          command: ["true"]
        - name: second
          dependsOn: [first]
          command: [sh, -c, "exit 3"]
        """))
    proc = subprocess.run([KUBEDAG, "dags", "test", str(tmp_path / "dag.yaml")], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=120)
    lines = [re.sub(r"^\d\d:\d\d:\d\d ", "", line) for line in proc.stderr.splitlines()
             if re.match(r"^\d\d:\d\d:\d\d ", line)]
    assert lines[:2] == ["first running try 1/1", "first success try 1/1"], proc.stderr
    assert "second running try 1/1" in lines
    assert "second failed try 1/1  exit code 3" in lines

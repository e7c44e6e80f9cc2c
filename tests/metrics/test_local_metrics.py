"""`kubedag scheduler --metrics-port`: /metrics, /healthz and /readyz of the local scheduler, scraped while it runs
DAGs as local processes (a real process on a DAG folder, runs triggered with `kubedag dags trigger`)."""

from __future__ import annotations

import os
import socket
import subprocess
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.local.processes import (KUBEDAG, WAIT, free_port, fresh_db, home, scheduler_process,  # noqa: F401 - fixtures
                                   trigger, wait_for)
from tests.metrics.dbproxy import DbProxy
from tests.metrics.scrape import probe, scrape


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text))


def test_each_metric_moves_as_the_scheduler_runs_dags(tmp_path, home, scheduler_process):
    folder = tmp_path / "dags"
    write(folder, "pool.yaml", """\
        apiVersion: kubedag.io/v1alpha1
        kind: Pool
        metadata: {name: dock}
        spec: {slots: 1}
        """)
    write(folder, "metered.yaml", f"""\
        apiVersion: kubedag.io/v1alpha1
        kind: DAG
        metadata: {{name: metered}}
        spec:
          tasks:
            - name: extract
              command: [echo, extracted]
            - name: transform
              dependsOn: [extract]
              retries: 1
              retryDelay: 0s
              command: [sh, -c, "if [ -f {tmp_path}/done ]; then exit 0; fi; touch {tmp_path}/done; exit 3"]
            - name: load
              dependsOn: [transform]
              pool: dock
              command: ["true"]
        """)
    write(folder, "broken.yaml", f"""\
        apiVersion: kubedag.io/v1alpha1
        kind: DAG
        metadata: {{name: broken}}
        spec:
          tasks:
            - name: boom
              command: [sh, -c, "exit 1"]
        """)
    scheduler = scheduler_process(folder, metrics=True)
    url = scheduler.url
    wait_for(lambda: probe(url, "/readyz") == (200, "ok\n"), "the scheduler to be ready")
    assert probe(url, "/healthz") == (200, "ok\n")
    trigger(folder, "metered")
    trigger(folder, "broken")
    wait_for(lambda: scrape(url).value("kubedag_dag_run_finished_total") == 2, "both runs to finish")
    wait_for(lambda: scrape(url).value("kubedag_db_writes_pending") == 0, "no write in flight")
    after = scrape(url)
    out = scheduler.stop()
    assert scheduler.process.returncode == 0, out
    assert after.value("kubedag_dag_run_started_total", dag_id="metered", run_type="manual") == 1
    assert after.value("kubedag_dag_run_finished_total", dag_id="metered", run_type="manual", state="success") == 1
    assert after.value("kubedag_dag_run_finished_total", dag_id="broken", run_type="manual", state="failed") == 1
    assert after.value("kubedag_dag_run_duration_seconds_count", dag_id="metered", state="success") == 1
    assert after.value("kubedag_task_instance_started_total", dag_id="metered") == 4
    assert after.value("kubedag_task_instance_finished_total", dag_id="metered", state="success") == 3
    assert after.value("kubedag_task_instance_finished_total", dag_id="metered", state="up_for_retry") == 1
    assert after.value("kubedag_task_instance_finished_total", dag_id="broken", state="failed") == 1
    assert after.value("kubedag_task_instance_queued_to_running_seconds_count", dag_id="metered") == 4
    assert after.value("kubedag_task_instance_successor_latency_seconds_count", dag_id="metered") == 2
    assert after.value("kubedag_pool_open_slots", pool="dock") == 1
    assert after.value("kubedag_pool_occupied_slots", pool="dock") == 0
    assert after.value("kubedag_pool_open_slots", pool="default-pool") == 128
    assert after.value("kubedag_db_write_duration_seconds_count", operation="save_pass") > 0


def test_a_busy_metrics_port_is_a_clear_error_and_leaves_no_scheduler_lock_behind(tmp_path, home):
    folder = tmp_path / "dags"
    folder.mkdir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        runs = [subprocess.run([KUBEDAG, "scheduler", "--dags-folder", str(folder), "--metrics-port", str(port)],
                               capture_output=True, text=True, env=os.environ.copy(), timeout=WAIT) for _ in range(2)]
    for done in runs:  # the second is refused for the port too, not for a lock the first left behind
        assert done.returncode == 1
        assert f"error: --metrics-port: cannot listen on 127.0.0.1:{port}" in done.stderr, done.stderr
    engine = sa.create_engine(f"sqlite:///{home / 'kubedag.db'}")
    with engine.connect() as conn:  # each released its lock: no scheduler job is left "running"
        states = [row.state for row in conn.execute(sa.text("SELECT state FROM job ORDER BY id"))]
    engine.dispose()
    assert states == ["success", "success"]


@pytest.mark.postgres
def test_readyz_is_503_while_the_db_is_unreachable_and_200_after(tmp_path, home, postgres_url):
    """The scheduler's probes (as ``kubedag scheduler --metrics-port`` wires them) on a DB behind a proxy the test
    cuts (the scheduler's loop is not running here; tests/local/test_scheduler_db_outage.py runs it through an
outage)."""
    from kubedag.cli.standalone import probes
    from kubedag.local.scheduler import Scheduler, SchedulerOptions
    from kubedag.store import config
    from kubedag.store.db import open_store
    from kubedag.store.scheduler_store import SqlSchedulerStore

    folder = tmp_path / "dags"
    folder.mkdir()
    db = fresh_db(postgres_url, "kubedag_metrics_local")
    with DbProxy(db) as proxy:
        engine, sessions = open_store(proxy.url)
        scheduler = Scheduler(SqlSchedulerStore(sessions), SchedulerOptions(folder=folder, logs_dir=config.logs_dir()),
                              say=lambda line: None)
        scheduler.start()
        server = probes(scheduler, "127.0.0.1", free_port())
        try:
            assert probe(server.url, "/readyz") == (503, "not ready: the DAG folder is not read yet\n")
            scheduler.scan()
            assert probe(server.url, "/readyz") == (200, "ok\n")
            proxy.cut()
            status, body = probe(server.url, "/readyz")
            assert status == 503 and body.startswith("not ready: metadata DB unreachable: OperationalError")
            assert body.count("\n") == 1 and "password" not in body
            assert probe(server.url, "/healthz") == (200, "ok\n")
            proxy.restore()
            assert probe(server.url, "/readyz") == (200, "ok\n")
        finally:
            server.stop()
            scheduler.shutdown()
            engine.dispose()

"""`kubedag scheduler` through a metadata DB outage (issue 13): PostgreSQL behind a proxy the test cuts mid-run (new
connections fail, open ones drop). The scheduler keeps running, its running try keeps running, readiness and the
pending-writes metric say so, and once the DB is back the run finishes with every try recorded."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.local.processes import db_rows, fresh_db, wait_for
from tests.metrics.dbproxy import DbProxy
from tests.metrics.scrape import probe, scrape


@pytest.mark.postgres
def test_a_db_outage_mid_run_is_retried_and_the_run_finishes_with_its_full_history(tmp_path, home, postgres_url,
                                                                                    scheduler_process):
    folder, go, once = tmp_path / "dags", tmp_path / "go", tmp_path / "failed-once"
    folder.mkdir()
    (folder / "outage.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: kubedag.io/v1alpha1
        kind: DAG
        metadata: {{name: outage}}
        spec:
          schedule: "@once"
          startDate: "2026-01-01T00:00:00Z"
          tasks:
            - name: wait
              retries: 1
              retryDelay: 0s
              command: [sh, -c, "echo waiting; while [ ! -e {go} ]; do sleep 0.1; done;
                                 if [ -e {once} ]; then echo second; exit 0; fi; touch {once}; echo first; exit 3"]
            - name: after
              dependsOn: [wait]
              command: [echo, after]
        """))
    db = fresh_db(postgres_url, "kubedag_local_outage")
    with DbProxy(db) as proxy:
        scheduler = scheduler_process(folder, "--database-url", proxy.url, metrics=True)
        wait_for(lambda: probe(scheduler.url, "/readyz") == (200, "ok\n"), "the scheduler to be ready")
        wait_for(lambda: db_rows("SELECT state FROM task_instance WHERE task_id = 'wait'", db) == [("running",)],
                 "the first try to run")
        proxy.cut()
        go.touch()  # the first try fails during the outage: its end is a pass the DB cannot take yet
        wait_for(lambda: scrape(scheduler.url).value("kubedag_db_writes_pending") >= 1, "a pending write")
        status, body = probe(scheduler.url, "/readyz")
        assert status == 503 and body.startswith("not ready: metadata DB unreachable"), body
        assert scheduler.running()
        proxy.restore()
        wait_for(lambda: db_rows("SELECT state FROM dag_run", db) == [("success",)], "the run to succeed")
        wait_for(lambda: probe(scheduler.url, "/readyz") == (200, "ok\n"), "the scheduler to be ready again")
        assert scrape(scheduler.url).value("kubedag_db_writes_pending") == 0
        out = scheduler.stop()
    assert scheduler.process.returncode == 0, out
    assert "metadata DB: OperationalError" in out and "retrying in" in out, out
    assert "metadata DB: available again after" in out, out
    assert "Traceback" not in out, out
    history = db_rows("SELECT task_id, try_number, state, end_date IS NOT NULL, log_location "
                      "FROM task_instance_history ORDER BY task_id, try_number", db)
    assert [h[:4] for h in history] == [("after", 1, "success", True), ("wait", 1, "failed", True),
                                        ("wait", 2, "success", True)]
    logs = {(task, n): Path(where).read_text() for task, n, _, _, where in history}
    assert "first" in logs[("wait", 1)] and "second" in logs[("wait", 2)] and "after" in logs[("after", 1)]
    assert db_rows("SELECT task_id, state, try_number FROM task_instance ORDER BY task_id", db) == [
        ("after", "success", 1), ("wait", "success", 2)]

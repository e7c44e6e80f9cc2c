"""Issue 13 on the local executor: a task on a pool that does not exist, or is smaller than its ``poolSlots``, waits
(as in Airflow) with that reason in the metadata DB, and runs once the folder defines the pool."""

from __future__ import annotations

import textwrap

from tests.local.processes import db_rows, queue_manual_run, scheduler_thread, wait_for


def test_the_scheduler_records_why_a_task_waits_on_a_pool_and_runs_it_once_the_pool_is_there(tmp_path, home):
    from kubedag.store.db import open_store

    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "pooled.yaml").write_text(textwrap.dedent("""\
        apiVersion: kubedag.io/v1alpha1
        kind: DAG
        metadata: {name: pooled}
        spec:
          tasks:
            - {name: gpu, command: ['true'], pool: gpus}
            - {name: wide, command: ['true'], pool: small, poolSlots: 5}
        """))
    (folder / "small.yaml").write_text("apiVersion: kubedag.io/v1alpha1\nkind: Pool\nmetadata: {name: small}\n"
                                       "spec: {slots: 3}\n")
    _, sessions = open_store(None)
    with scheduler_thread(folder, sessions):
        wait_for(lambda: db_rows("SELECT dag_id FROM dag"), "the DAG to be read")
        queue_manual_run(sessions, "pooled", "manual__pools")
        reasons = {"gpu": "pool gpus does not exist", "wide": "needs 5 slots, pool small has 3"}
        wait_for(lambda: dict(db_rows("SELECT task_id, reason FROM task_instance")) == reasons, "the reasons")
        assert db_rows("SELECT state FROM dag_run") == [("running",)]
        (folder / "gpus.yaml").write_text("apiVersion: kubedag.io/v1alpha1\nkind: Pool\nmetadata: {name: gpus}\n"
                                          "spec: {slots: 1}\n")
        (folder / "small.yaml").write_text("apiVersion: kubedag.io/v1alpha1\nkind: Pool\nmetadata: {name: small}\n"
                                           "spec: {slots: 5}\n")
        wait_for(lambda: db_rows("SELECT state FROM dag_run") == [("success",)], "the run to succeed")
    assert db_rows("SELECT task_id, state FROM task_instance ORDER BY task_id") == [("gpu", "success"), ("wide", "success")]

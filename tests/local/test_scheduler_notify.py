"""`kubedag scheduler` sends the DAGs' webhooks (``onRetry``, ``onSuccess``, ``onFailure`` of tasks and of the run)
as `kubedag dags test` does: to a receiver on 127.0.0.1, once per transition, a `kill -9` and restart included."""

from __future__ import annotations

import textwrap

from tests.local.processes import db_rows, wait_for
from tests.notify.receiver import WebhookReceiver


def test_the_scheduler_posts_each_transition_once_across_a_kill_9_and_restart(tmp_path, home, scheduler_process):
    folder, go, once = tmp_path / "dags", tmp_path / "go", tmp_path / "failed-once"
    folder.mkdir()
    with WebhookReceiver() as hook:
        (folder / "hooked.yaml").write_text(textwrap.dedent(f"""\
            apiVersion: kubedag.io/v1alpha1
            kind: DAG
            metadata: {{name: hooked}}
            spec:
              schedule: "@once"
              startDate: "2026-01-01T00:00:00Z"
              onSuccess: [{{webhook: {{url: "{hook.url}/dag"}}}}]
              tasks:
                - name: flaky
                  retries: 1
                  retryDelay: 0s
                  onRetry: [{{webhook: {{url: "{hook.url}/task"}}}}]
                  onSuccess: [{{webhook: {{url: "{hook.url}/task"}}}}]
                  command: [sh, -c, "if [ -e {once} ]; then exit 0; fi; touch {once}; echo flaking; exit 3"]
                - name: gate
                  dependsOn: [flaky]
                  onSuccess: [{{webhook: {{url: "{hook.url}/task"}}}}]
                  command: [sh, -c, "while [ ! -e {go} ]; do sleep 0.1; done"]
            """))
        first = scheduler_process(folder)
        wait_for(lambda: len(hook.requests) >= 2, "flaky's retry and success to be posted")
        wait_for(lambda: db_rows("SELECT state FROM task_instance WHERE task_id = 'gate'") == [("running",)],
                 "gate to run")
        first.kill()
        second = scheduler_process(folder)
        wait_for(lambda: "adopted process" in "".join(p.read_text() for p in (home / "logs").rglob("*.log")),
                 "the restarted scheduler to adopt gate")
        go.touch()
        wait_for(lambda: db_rows("SELECT state FROM dag_run") == [("success",)], "the run to succeed")
        out = second.stop()  # delivers what is still queued before it exits
        received = [(r.path, r.json["event"], r.json.get("task_id"), r.json.get("try_number")) for r in hook.requests]
    assert second.process.returncode == 0, out
    assert sorted(received, key=str) == sorted([
        ("/task", "task_retry", "flaky", 1),
        ("/task", "task_success", "flaky", 2),
        ("/task", "task_success", "gate", 1),
        ("/dag", "dag_success", None, None),
    ], key=str), received
    retry = next(r.json for r in hook.requests if r.json["event"] == "task_retry")
    assert retry["reason"] == "exit code 3" and "flaking" in retry["log_tail"]

"""XComs, branching, Variables/Connections from the DAG's folder, notifications and dagrunTimeout, run locally."""

from __future__ import annotations

import base64
import logging

from kubedag.store import repository
from tests.local.conftest import dag_manifest, log, run, session, states, write
from tests.notify.receiver import WebhookReceiver

PUSH = """printf '%s' '{"n": 3, "name": "x"}' > "$KUBEDAG_XCOM_PATH\""""


def test_xcom_pull_between_tasks_with_multiple_outputs_and_key(folder):
    write(folder, "dag.yaml", dag_manifest("xcoms", f"""
        - name: push
          multipleOutputs: true
          command:
            - sh
            - -c
            - |
              {PUSH}
        - name: pull
          dependsOn: [push]
          command: [sh, -c, 'echo "n={{{{ ti.xcom_pull(task_ids=''push'', key=''n'') }}}} name={{{{ ti.xcom_pull(task_ids=''push'')[''name''] }}}}"']
        """))
    result = run(folder, "xcoms")
    assert states(result) == {"push": "success", "pull": "success"}, log(result, "pull")
    assert "n=3 name=x" in log(result, "pull")
    with session() as s:
        assert repository.get_xcom(s, "xcoms", result.run.run_id, "push", "n") == 3
        assert repository.get_xcom(s, "xcoms", result.run.run_id, "push") == {"n": 3, "name": "x"}


def test_an_xcom_larger_than_the_limit_fails_the_try(folder):
    write(folder, "dag.yaml", dag_manifest("bigxcom", """
        - name: big
          command: [sh, -c, 'printf "\\"%05000d\\"" 0 > "$KUBEDAG_XCOM_PATH"']
        """))
    result = run(folder, "bigxcom")
    assert states(result) == {"big": "failed"}
    assert "more than the 4096 allowed" in result.tis["big"].reason
    with session() as s:
        assert repository.get_xcom(s, "bigxcom", result.run.run_id, "big") is None


def test_branch_follows_one_path_and_the_join_runs(folder):
    write(folder, "dag.yaml", dag_manifest("branching", """
        - name: choose
          branch: true
          command: [sh, -c, 'echo "\\"right\\"" > "$KUBEDAG_XCOM_PATH"']
        - name: left
          dependsOn: [choose]
          command: ['true']
        - name: right
          dependsOn: [choose]
          command: ['true']
        - name: join
          dependsOn: [left, right]
          triggerRule: none_failed_min_one_success
          command: ['true']
        """))
    result = run(folder, "branching")
    assert result.state == "success"
    assert states(result) == {"choose": "success", "left": "skipped", "right": "success", "join": "success"}
    assert result.tis["left"].reason == "skipped: branch choose followed right"


def test_variables_and_connections_from_the_folder_with_the_secret_masked_in_the_log(folder):
    token = "s3cr3t-token-value"
    write(folder, "config.yaml", f"""
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: settings}}
        data: {{region: eu-west-1}}
        ---
        apiVersion: v1
        kind: Secret
        metadata: {{name: creds}}
        data: {{api_token: {base64.b64encode(token.encode()).decode()}}}
        ---
        apiVersion: v1
        kind: Secret
        metadata: {{name: conns}}
        stringData: {{my_db: 'postgres://user:hunter2pass@db.example:5432/shop'}}
        """)
    write(folder, "dag.yaml", dag_manifest("secrets", """
        - name: show
          command: [sh, -c, 'echo "region={{ var.value.region }} token={{ var.value.api_token }} host={{ conn.my_db.host }}"; echo "env=$KUBEDAG_CONN_MY_DB"']
        """, extra="""
        variablesFrom: [{configMapRef: {name: settings}}, {secretRef: {name: creds}}]
        connectionsFrom: [{secretRef: {name: conns}}]
        """))
    result = run(folder, "secrets")
    assert states(result) == {"show": "success"}
    text = log(result, "show")
    assert "region=eu-west-1 token=*** host=db.example" in text
    assert "env=***" in text
    assert token not in text and "hunter2pass" not in text


def test_a_failing_task_posts_to_a_webhook_receiver(folder):
    with WebhookReceiver() as hook:
        write(folder, "hook.yaml", f"""
            apiVersion: v1
            kind: Secret
            metadata: {{name: hooks}}
            stringData: {{url: '{hook.url}/alerts'}}
            """)
        write(folder, "dag.yaml", dag_manifest("notified", """
            - name: load
              onFailure: [{webhook: {urlFrom: {name: hooks, key: url}}}]
              command: [sh, -c, 'echo loading rows; echo boom >&2; exit 4']
            """, extra="onFailure: [{webhook: {urlFrom: {name: hooks, key: url}}}]\n"))
        result = run(folder, "notified")
        assert result.state == "failed"
        bodies = {r.json["event"]: r.json for r in hook.wait_for(2)}
    task = bodies["task_failure"]
    assert (task["dag_id"], task["run_id"], task["task_id"], task["try_number"], task["state"]) == (
        "notified", result.run.run_id, "load", 1, "failed")
    assert task["reason"] == "exit code 4"
    assert "loading rows" in task["log_tail"] and "boom" in task["log_tail"]
    assert bodies["dag_failure"]["state"] == "failed" and "leaf task load" in bodies["dag_failure"]["reason"]


def test_a_run_given_no_webhook_sender_warns_that_its_notifiers_are_not_notified(folder, caplog):
    write(folder, "dag.yaml", dag_manifest("unsent", """
        - name: load
          command: [sh, -c, 'exit 4']
        """, extra="onFailure: [{webhook: {url: 'http://127.0.0.1:9/alerts'}}]\n"))
    with caplog.at_level(logging.WARNING, logger="kubedag.local.options"):
        result = run(folder, "unsent", make_sender=None)
    assert result.state == "failed"
    assert "DAG unsent has notifiers, but no webhook sender was given: they are not notified" in caplog.messages


def test_dagrun_timeout_kills_the_running_try_and_fails_the_run(folder):
    write(folder, "dag.yaml", dag_manifest("slow", """
        - name: sleepy
          command: [sh, -c, 'echo started; sleep 60']
        - name: after
          dependsOn: [sleepy]
          command: ['true']
        """, extra="dagrunTimeout: 1s\n"))
    result = run(folder, "slow")
    assert result.state == "failed"
    assert result.run.reason.startswith("timed_out")
    assert states(result) == {"sleepy": "skipped", "after": "skipped"}
    assert "killing the process group: timed_out" in log(result, "sleepy")
    with session() as s:
        assert repository.get_dag_run(s, "slow", result.run.run_id).state == "failed"
        row = repository.get_try(s, "slow", result.run.run_id, "sleepy", 1)
        assert row.state == "failed" and row.reason.startswith("timed_out")

"""Cross-DAG tasks run locally: a ``trigger`` task (TriggerDagRunOperator) and an ``externalTask`` sensor
(ExternalTaskSensor), both against the one metadata DB."""

from __future__ import annotations

from datetime import timedelta

from kubedag.store import repository
from tests.local.conftest import LOGICAL, dag_manifest, log, run, session, states, write
from tests.notify.receiver import WebhookReceiver

CHILD = dag_manifest("child", """
    - name: greet
      command: [sh, -c, 'echo "hello {{ dag_run.conf.who }}" > "out-{{ ds }}.txt"']
    """)


def test_a_dag_triggers_another_with_conf_and_waits_for_it(folder):
    write(folder, "child.yaml", CHILD)
    write(folder, "parent.yaml", dag_manifest("parent", """
        - name: kick
          trigger:
            dag: child
            conf: {who: "world-{{ ds }}"}
            logicalDate: "{{ ds }}T06:00:00Z"
            waitForCompletion: true
        - name: after
          dependsOn: [kick]
          command: [cat, out-2026-11-01.txt]
        """))
    result = run(folder, "parent")
    assert states(result) == {"kick": "success", "after": "success"}, log(result, "kick")
    assert "hello world-2026-11-01" in log(result, "after")
    with session() as s:
        [child] = repository.list_dag_runs(s, "child", 10)
        assert (child.run_id, child.run_type, child.state, child.conf) == (
            "manual__2026-11-01T06:00:00+00:00", "manual", "success", {"who": "world-2026-11-01"})
        assert repository.get_xcom(s, "parent", result.run.run_id, "kick") == child.run_id

    # the child run now exists: without resetDagRun a second trigger at that date fails
    again = run(folder, "parent")
    assert states(again) == {"kick": "failed", "after": "upstream_failed"}
    assert "DagRunAlreadyExists" in log(again, "kick")


def test_wait_for_completion_fails_the_trigger_when_the_child_fails(folder):
    write(folder, "child.yaml", dag_manifest("child", "- name: bad\n  command: [sh, -c, 'exit 2']\n"))
    write(folder, "parent.yaml", dag_manifest("parent", """
        - name: kick
          trigger: {dag: child, waitForCompletion: true, resetDagRun: true}
        """))
    result = run(folder, "parent")
    assert states(result) == {"kick": "failed"}
    assert "ended failed, in failedStates" in log(result, "kick")


def test_a_triggered_run_notifies_the_child_dags_notifiers(folder):
    with WebhookReceiver() as hook:
        write(folder, "child.yaml", dag_manifest("child", "- name: bad\n  command: [sh, -c, 'exit 2']\n",
                                                 extra=f"onFailure: [{{webhook: {{url: '{hook.url}/child'}}}}]\n"))
        write(folder, "parent.yaml", dag_manifest("parent", """
            - name: kick
              trigger: {dag: child, logicalDate: "2026-11-01T00:00:00Z", waitForCompletion: true}
            """))
        result = run(folder, "parent")
        [body] = [r.json for r in hook.wait_for(1)]
    assert states(result) == {"kick": "failed"}
    assert (body["event"], body["dag_id"], body["state"]) == ("dag_failure", "child", "failed")
    assert body["run_id"] == "manual__" + LOGICAL.isoformat()


def test_external_task_sensor_waits_for_a_task_of_another_dag_at_the_delta(folder):
    write(folder, "upstream.yaml", dag_manifest("upstream", "- name: load\n  command: ['true']\n"))
    write(folder, "downstream.yaml", dag_manifest("downstream", """
        - name: wait-load
          sensor:
            mode: reschedule
            pokeInterval: 1s
            timeout: 60s
            externalTask: {dag: upstream, task: load, executionDelta: 1h}
        - name: report
          dependsOn: [wait-load]
          command: ['true']
        """))
    first = run(folder, "upstream", logical_date=LOGICAL - timedelta(hours=1))
    assert first.state == "success"
    result = run(folder, "downstream")
    assert states(result) == {"wait-load": "success", "report": "success"}
    assert "upstream.load at 2026-10-31T23:00:00Z is success" in log(result, "wait-load")


def test_external_task_sensor_in_failed_states_fails_or_skips_with_soft_fail(folder):
    write(folder, "upstream.yaml", dag_manifest("upstream", "- name: load\n  command: [sh, -c, 'exit 1']\n"))
    write(folder, "downstream.yaml", dag_manifest("downstream", """
        - name: hard
          sensor: {mode: poke, pokeInterval: 1s, timeout: 30s,
                   externalTask: {dag: upstream, task: load, failedStates: [failed]}}
        - name: soft
          sensor: {mode: reschedule, pokeInterval: 1s, timeout: 30s, softFail: true,
                   externalTask: {dag: upstream, failedStates: [failed]}}
        """))
    assert run(folder, "upstream").state == "failed"
    result = run(folder, "downstream")
    assert states(result) == {"hard": "failed", "soft": "skipped"}
    assert "upstream.load at 2026-11-01T00:00:00Z is failed (in failedStates)" in log(result, "hard")

"""`kubedag dags backfill`, `tasks clear`, `tasks mark` and `runs delete` without -f: requests to the cluster
(the API emulator; no controller runs here, so the commands are used with --no-wait)."""

from __future__ import annotations

from kubedag.core import naming as names
from tests.cli_cluster.conftest import DAGRUNS, dag_manifest

BACKFILLS = "kubedag.io/v1alpha1/backfills"


def a_run(k8s_api, dag="sales", run_id="manual__2026-11-01T00:00:00+00:00", status=None):
    name = names.run_name(dag, run_id)
    k8s_api.create({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAGRun",
                    "metadata": {"name": name, "namespace": "default", "labels": names.run_labels(dag)},
                    "spec": {"dagName": dag, "runId": run_id, "runType": "manual",
                             "logicalDate": run_id.split("__")[1]}})
    if status:
        k8s_api.patch(DAGRUNS, name, {"status": status}, "default", subresource="status")
    return name


CHAIN = [{"name": "a", "command": ["true"]}, {"name": "b", "command": ["true"], "dependsOn": ["a"]}]


def test_backfill_creates_a_backfill_object(k8s_api, kubedag):
    k8s_api.create(dag_manifest("sales"))
    result = kubedag("dags", "backfill", "sales", "-s", "2026-11-01", "-e", "2026-11-30", "--max-active-runs", "4",
                     "--reset-dagruns", "--conf", '{"x": 1}', "--name", "november", "--no-wait")
    assert result.code == 0, result.err
    assert "Created Backfill november in namespace default" in result.out
    obj = k8s_api.get(BACKFILLS, "november", "default")
    assert obj["spec"] == {"dagName": "sales", "startDate": "2026-11-01", "endDate": "2026-11-30",
                           "resetDagRuns": True, "maxActiveRuns": 4, "conf": {"x": 1}}
    again = kubedag("dags", "backfill", "sales", "-s", "2026-11-01", "-e", "2026-11-30", "--name", "november",
                    "--no-wait")
    assert again.code == 1 and "Backfill november exists already in namespace default" in again.err


def test_backfill_of_an_unknown_dag_fails_before_creating_anything(k8s_api, kubedag):
    result = kubedag("dags", "backfill", "nope", "-s", "2026-11-01", "-e", "2026-11-02", "--no-wait")
    assert result.code == 1
    assert "DAG 'nope' in namespace 'default' not found" in result.err
    assert k8s_api.list(BACKFILLS, "default") == []


def test_backfill_dry_run_lists_runs_and_creates_nothing(k8s_api, kubedag):
    k8s_api.create(dag_manifest("sales"))
    a_run(k8s_api, status={"phase": "success"})
    result = kubedag("dags", "backfill", "sales", "-s", "2026-11-01", "-e", "2026-11-03", "--dry-run", "-o", "json")
    assert result.code == 0, result.err
    import json

    rows = json.loads(result.out)
    assert [(r["run_id"], r["action"]) for r in rows] == [
        ("manual__2026-11-01T00:00:00+00:00", "exists"),
        ("backfill__2026-11-02T00:00:00+00:00", "create"),
        ("backfill__2026-11-03T00:00:00+00:00", "create"),
    ]
    assert k8s_api.list(BACKFILLS, "default") == []


def test_clear_appends_a_clear_action_to_the_dagrun(k8s_api, kubedag):
    k8s_api.create(dag_manifest("sales", tasks=CHAIN))
    name = a_run(k8s_api, status={"phase": "failed", "tasks": {"a": {"s": "failed", "t": 1}}})
    result = kubedag("tasks", "clear", "sales", "--run", "manual__2026-11-01T00:00:00+00:00", "--task", "a",
                     "--downstream", "--only-failed", "--yes", "--no-wait")
    assert result.code == 0, result.err
    assert f"to DAGRun {name}; the controller applies it" in result.out
    actions = k8s_api.get(DAGRUNS, name, "default")["spec"]["actions"]
    assert len(actions) == 1
    assert actions[0]["id"].startswith("clear-")
    assert {k: v for k, v in actions[0].items() if k != "id"} == {
        "type": "clear", "tasks": ["a"], "upstream": False, "downstream": True, "onlyFailed": True}


def test_mark_appends_after_earlier_actions_and_waits_for_the_controller(k8s_api, kubedag):
    k8s_api.create(dag_manifest("sales", tasks=CHAIN))
    name = a_run(k8s_api)
    assert kubedag("tasks", "clear", "sales", "-r", name, "--yes", "--no-wait").code == 0  # by object name too
    result = kubedag("tasks", "mark", "sales", "success", "-r", "manual__2026-11-01T00:00:00+00:00", "-t", "b",
                     "--timeout", "0")
    assert result.code == 1
    assert "the controller did not apply action mark-" in result.err
    actions = k8s_api.get(DAGRUNS, name, "default")["spec"]["actions"]
    assert [a["type"] for a in actions] == ["clear", "mark"]
    assert actions[1]["tasks"] == ["b"] and actions[1]["state"] == "success"


def test_clear_of_an_unknown_task_is_refused(k8s_api, kubedag):
    k8s_api.create(dag_manifest("sales", tasks=CHAIN))
    name = a_run(k8s_api)
    result = kubedag("tasks", "clear", "sales", "-r", name, "-t", "zz", "--yes", "--no-wait")
    assert result.code == 2 and "no task 'zz' in DAG sales" in result.err
    assert not k8s_api.get(DAGRUNS, name, "default")["spec"].get("actions")


def test_runs_delete_deletes_the_dagrun(k8s_api, kubedag):
    k8s_api.create(dag_manifest("sales"))
    name = a_run(k8s_api)
    result = kubedag("runs", "delete", "sales", "--run", "manual__2026-11-01T00:00:00+00:00", "--yes")
    assert result.code == 0, result.err
    assert f"Deleted DAGRun {name} in namespace default" in result.out
    assert k8s_api.get(DAGRUNS, name, "default") is None
    missing = kubedag("runs", "delete", "sales", "--run", "manual__2026-11-01T00:00:00+00:00", "--yes")
    assert missing.code == 1 and "no run 'manual__2026-11-01T00:00:00+00:00' of DAG 'sales'" in missing.err

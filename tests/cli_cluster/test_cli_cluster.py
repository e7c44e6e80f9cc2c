"""``kubedag`` against a cluster (the API emulator), as a user runs it: `dags list/trigger/pause/unpause`,
`runs list` and `logs` in cluster mode, and the one-line errors when the cluster cannot be used."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from kubedag.core import naming as names
from kubedag.store.history import db_dag_id
from tests.cli_cluster.conftest import DAGRUNS, DAGS, dag_manifest, ready_condition, run_cli

NS = "default"


def create_namespace(api: Any, name: str) -> None:
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def set_status(api: Any, resource: str, name: str, status: dict[str, Any], namespace: str = NS) -> None:
    api.patch(resource, name, {"status": status}, namespace, subresource="status")


@pytest.fixture
def two_dags(k8s_api):  # noqa: ANN001, ANN201
    """``etl`` (valid, Ready, with a last and next run) and ``broken`` (Ready False: Invalid)."""
    k8s_api.create(dag_manifest("etl", schedule="0 16 * * *"))
    set_status(k8s_api, DAGS, "etl", {
        "observedGeneration": 1,
        "conditions": [ready_condition("True", "Scheduled")],
        "nextRunAt": "2026-11-02T16:00:00+00:00",
        "lastRun": {"runId": "scheduled__2026-11-01T16:00:00+00:00", "phase": "success",
                    "logicalDate": "2026-11-01T16:00:00+00:00"},
    })
    k8s_api.create(dag_manifest("broken", schedule=None, paused=True,
                                tasks=[{"name": "load", "command": ["true"], "dependsOn": ["missing"]}]))
    set_status(k8s_api, DAGS, "broken", {
        "conditions": [ready_condition("False", "Invalid", "spec.tasks[0].dependsOn: unknown task 'missing'")],
    })
    return k8s_api


# --- dags list ---------------------------------------------------------------------------------------------


def test_dags_list_table_shows_ready_and_invalid_dags(two_dags, kubedag):
    result = kubedag("dags", "list")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    header = next(line for line in lines if "name" in line and "schedule" in line)
    for column in ("namespace", "paused", "ready", "last_run", "next_run"):
        assert column in header
    etl = next(line for line in lines if " etl " in line)
    assert "0 16 * * *" in etl and "false" in etl and "True" in etl
    assert "scheduled__2026-11-01T16:00:00+00:00 (success)" in etl
    assert "2026-11-02T16:00:00+00:00" in etl
    broken = next(line for line in lines if " broken " in line)
    assert "None" in broken and "true" in broken
    assert "False: spec.tasks[0].dependsOn: unknown task 'missing'" in broken


def test_dags_list_json(two_dags, kubedag):
    result = kubedag("dags", "list", "-o", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == [
        {"name": "broken", "namespace": "default", "description": None, "owner": None, "tags": [],
         "schedule": None, "paused": True, "ready": "False",
         "ready_reason": "Invalid", "ready_message": "spec.tasks[0].dependsOn: unknown task 'missing'",
         "last_run": None, "next_run_at": None},
        {"name": "etl", "namespace": "default", "description": None, "owner": None, "tags": [],
         "schedule": "0 16 * * *", "paused": False, "ready": "True",
         "ready_reason": "Scheduled", "ready_message": None,
         "last_run": {"run_id": "scheduled__2026-11-01T16:00:00+00:00", "state": "success",
                      "logical_date": "2026-11-01T16:00:00+00:00"},
         "next_run_at": "2026-11-02T16:00:00+00:00"},
    ]


def test_dags_list_shows_owner_tags_and_description(two_dags, kubedag):
    sales = dag_manifest("sales", tasks=[{"name": "load", "command": ["true"], "owner": "alice"},
                                         {"name": "report", "command": ["true"]}])
    sales["spec"].update(description="Loads the shop's sales", tags=["shop", "daily"], defaults={"owner": "data-team"})
    two_dags.create(sales)
    row = next(d for d in json.loads(kubedag("dags", "list", "-o", "json").out) if d["name"] == "sales")
    assert (row["description"], row["owner"], row["tags"]) == ("Loads the shop's sales", "alice, data-team",
                                                               ["shop", "daily"])
    table = kubedag("dags", "list")
    header = next(line for line in table.out.splitlines() if "name" in line and "schedule" in line)
    assert "owner" in header and "tags" in header
    line = next(line for line in table.out.splitlines() if " sales " in line)
    assert "alice, data-team" in line and "shop, daily" in line


def test_dags_list_namespaces_and_a_dag_the_controller_has_not_seen(two_dags, kubedag, tmp_path):
    create_namespace(two_dags, "team-a")
    two_dags.create(dag_manifest("fresh", namespace="team-a"))
    names_in = lambda result: [(d["namespace"], d["name"]) for d in json.loads(result.out)]  # noqa: E731
    assert names_in(kubedag("dags", "list", "-o", "json")) == [("default", "broken"), ("default", "etl")]
    assert names_in(kubedag("dags", "list", "-n", "team-a", "-o", "json")) == [("team-a", "fresh")]
    assert names_in(kubedag("dags", "list", "-A", "-o", "json")) == [
        ("default", "broken"), ("default", "etl"), ("team-a", "fresh")]
    fresh = json.loads(kubedag("dags", "list", "-n", "team-a", "-o", "json").out)[0]
    assert (fresh["ready"], fresh["last_run"], fresh["next_run_at"]) == (None, None, None)
    # the namespace of the kubeconfig's context is the default one
    team_config = two_dags.kubeconfig(tmp_path / "team-a.kubeconfig", namespace="team-a")
    result = run_cli("dags", "list", "-o", "json", "--kubeconfig", str(team_config))
    assert names_in(result) == [("team-a", "fresh")]
    # an empty namespace
    empty = kubedag("dags", "list", "-n", "kube-system")
    assert empty.code == 0 and "No DAGs found in namespace kube-system" in empty.err


def test_kubeconfig_from_env_and_unknown_context(two_dags, kubeconfig, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", f"/nonexistent/config:{kubeconfig}")  # missing files are skipped
    result = run_cli("dags", "list", "--cluster", "-o", "json")
    assert result.code == 0, result.err
    assert [d["name"] for d in json.loads(result.out)] == ["broken", "etl"]
    result = run_cli("dags", "list", "--context", "nope")
    assert result.code == 1
    assert result.err.strip().splitlines() == [
        f"error: context 'nope' not found in kubeconfig {kubeconfig} (contexts: kubedag-emulator)"]


# --- dags trigger ------------------------------------------------------------------------------------------


def test_trigger_creates_a_manual_dagrun(two_dags, kubedag):
    result = kubedag("dags", "trigger", "etl", "--logical-date", "2026-11-05T17:30:00+01:00",
                     "--conf", '{"data_root": "/tmp/out", "n": 3}')
    assert result.code == 0, result.err
    run_id = "manual__2026-11-05T16:30:00+00:00"
    name = names.run_name("etl", run_id)
    assert name.startswith("etl-manual-20261105t163000-")
    assert result.out.splitlines() == [f"Created DAGRun {name} in namespace default", f"run_id: {run_id}"]
    obj = two_dags.get(DAGRUNS, name, NS)
    assert obj["metadata"]["labels"] == {"kubedag.io/dag": "etl", "app.kubernetes.io/managed-by": "kubedag"}
    assert obj["spec"] == {"dagName": "etl", "runType": "manual", "runId": run_id,
                           "logicalDate": "2026-11-05T16:30:00+00:00", "conf": {"data_root": "/tmp/out", "n": 3}}


def test_trigger_defaults_to_now_and_prints_json(two_dags, kubedag):
    before = datetime.now(timezone.utc)
    result = kubedag("dags", "trigger", "etl", "-o", "json")
    after = datetime.now(timezone.utc)
    assert result.code == 0, result.err
    out = json.loads(result.out)
    logical = datetime.fromisoformat(out["logical_date"])
    assert before <= logical <= after
    assert out == {"name": names.run_name("etl", f"manual__{logical.isoformat()}"), "namespace": "default",
                   "dag_id": "etl", "run_id": f"manual__{logical.isoformat()}", "run_type": "manual",
                   "logical_date": logical.isoformat(), "conf": {}}
    spec = two_dags.get(DAGRUNS, out["name"], NS)["spec"]
    assert (spec["runId"], spec["logicalDate"], spec["conf"]) == (out["run_id"], out["logical_date"], {})


def test_trigger_with_a_run_id_and_naive_logical_date(two_dags, kubedag):
    result = kubedag("dags", "trigger", "etl", "--run-id", "rerun-of-nov-1", "--logical-date", "2026-11-01", "-o", "json")
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert (out["run_id"], out["logical_date"]) == ("rerun-of-nov-1", "2026-11-01T00:00:00+00:00")
    assert two_dags.get(DAGRUNS, names.run_name("etl", "rerun-of-nov-1"), NS)["spec"]["runId"] == "rerun-of-nov-1"


def test_trigger_warns_when_the_dag_is_not_ready(two_dags, kubedag):
    result = kubedag("dags", "trigger", "broken", "--logical-date", "2026-11-05")
    assert result.code == 0
    assert result.err == "warning: DAG 'broken' is not Ready: spec.tasks[0].dependsOn: unknown task 'missing'\n"
    assert [r["spec"]["dagName"] for r in two_dags.list(DAGRUNS, NS)] == ["broken"]


def test_trigger_twice_is_a_clear_error(two_dags, kubedag):
    args = ("dags", "trigger", "etl", "--logical-date", "2026-11-05T00:00:00Z")
    assert kubedag(*args).code == 0
    again = kubedag(*args)
    assert again.code == 1
    name = names.run_name("etl", "manual__2026-11-05T00:00:00+00:00")
    assert again.err.splitlines() == [
        f"error: run 'manual__2026-11-05T00:00:00+00:00' of DAG 'etl' already exists (DAGRun {name} in "
        "namespace default); pass another --run-id or --logical-date"]
    assert len(two_dags.list(DAGRUNS, NS)) == 1


def test_trigger_unknown_dag_is_a_clear_error(two_dags, kubedag):
    result = kubedag("dags", "trigger", "nope")
    assert result.code == 1
    assert result.err.splitlines() == ["error: DAG 'nope' in namespace 'default' not found"]
    assert two_dags.list(DAGRUNS, NS) == []


@pytest.mark.parametrize(("args", "message"), [
    (("--conf", "{not json"), "error: --conf: invalid JSON"),
    (("--conf", "[1, 2]"), "error: --conf: must be a JSON object"),
    (("--logical-date", "yesterday"), "error: --logical-date: invalid ISO 8601 date or time 'yesterday'"),
    (("--run-id", "has spaces"), "error: --run-id: 'has spaces' is not a valid run id"),
])
def test_trigger_bad_usage_exits_2(two_dags, kubedag, args, message):
    result = kubedag("dags", "trigger", "etl", *args)
    assert result.code == 2
    assert result.err.startswith(message)
    assert two_dags.list(DAGRUNS, NS) == []


# --- dags pause / unpause ----------------------------------------------------------------------------------


def test_pause_and_unpause_patch_spec_paused(two_dags, kubedag):
    result = kubedag("dags", "pause", "etl")
    assert (result.code, result.out) == (0, "DAG etl in namespace default: paused\n")
    obj = two_dags.get(DAGS, "etl", NS)
    assert obj["spec"]["paused"] is True
    assert obj["spec"]["tasks"] == [{"name": "extract", "command": ["echo", "hi"]}]  # the rest of spec is kept
    assert json.loads(kubedag("dags", "list", "-o", "json").out)[1]["paused"] is True
    result = kubedag("dags", "unpause", "etl", "-o", "json")
    assert result.code == 0
    assert json.loads(result.out) == {"name": "etl", "namespace": "default", "paused": False}
    assert two_dags.get(DAGS, "etl", NS)["spec"]["paused"] is False
    patches = [r for r in two_dags.handler["patch"]]
    assert patches and all(r.headers["Content-Type"].startswith("application/merge-patch+json") for r in patches)


def test_pause_unknown_dag(two_dags, kubedag):
    result = kubedag("dags", "pause", "nope", "-n", "kube-system")
    assert result.code == 1
    assert result.err.splitlines() == ["error: DAG 'nope' in namespace 'kube-system' not found"]


# --- runs list ---------------------------------------------------------------------------------------------


def dagrun(dag: str, run_id: str, logical_date: str, namespace: str = NS, run_type: str = "scheduled",
           labels: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": names.run_name(dag, run_id), "namespace": namespace}
    if labels:
        meta["labels"] = names.run_labels(dag)
    return {"apiVersion": "kubedag.io/v1alpha1", "kind": "DAGRun", "metadata": meta,
            "spec": {"dagName": dag, "runType": run_type, "runId": run_id, "logicalDate": logical_date, "conf": {}}}


@pytest.fixture
def three_runs(two_dags):  # noqa: ANN001, ANN201
    api = two_dags
    api.create(dagrun("etl", "scheduled__2026-11-01T16:00:00+00:00", "2026-11-01T16:00:00+00:00"))
    set_status(api, DAGRUNS, names.run_name("etl", "scheduled__2026-11-01T16:00:00+00:00"), {
        "phase": "success", "startedAt": "2026-11-01T16:00:05Z", "finishedAt": "2026-11-01T16:02:10Z",
        "counts": {"success": 3}, "tasks": {"a": {"s": "success", "t": 1}},
    })
    started = (datetime.now(timezone.utc) - timedelta(seconds=90)).replace(microsecond=0)
    api.create(dagrun("etl", "manual__2026-11-02T08:00:00+00:00", "2026-11-02T08:00:00+00:00", run_type="manual",
                      labels=False))  # made by hand: found by spec.dagName
    set_status(api, DAGRUNS, names.run_name("etl", "manual__2026-11-02T08:00:00+00:00"), {
        "phase": "running", "startedAt": started.isoformat(), "counts": {"success": 1, "running": 1, "none": 1},
    })
    api.create(dagrun("other", "scheduled__2026-11-03T00:00:00+00:00", "2026-11-03T00:00:00+00:00"))
    return api


def test_runs_list_cluster_json(three_runs, kubedag):
    result = kubedag("runs", "list", "--dag", "etl", "-o", "json")
    assert result.code == 0, result.err
    runs = json.loads(result.out)
    assert [(r["run_id"], r["run_type"], r["state"]) for r in runs] == [
        ("manual__2026-11-02T08:00:00+00:00", "manual", "running"),
        ("scheduled__2026-11-01T16:00:00+00:00", "scheduled", "success"),
    ]
    running, done = runs
    assert running["name"] == names.run_name("etl", "manual__2026-11-02T08:00:00+00:00")
    assert (running["dag_id"], running["namespace"]) == ("etl", "default")
    assert 85 <= running["duration"] < 150
    assert running["counts"] == {"success": 1, "running": 1, "none": 1}
    assert (done["start_date"], done["end_date"], done["duration"]) == (
        "2026-11-01T16:00:05+00:00", "2026-11-01T16:02:10+00:00", 125.0)
    assert done["logical_date"] == "2026-11-01T16:00:00+00:00"
    everything = json.loads(kubedag("runs", "list", "-o", "json").out)
    assert [r["dag_id"] for r in everything] == ["other", "etl", "etl"]
    assert len(json.loads(kubedag("runs", "list", "--limit", "1", "-o", "json").out)) == 1


def test_runs_list_cluster_table(three_runs, kubedag):
    result = kubedag("runs", "list")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    header = next(line for line in lines if "run_id" in line)
    for column in ("name", "dag_id", "run_type", "logical_date", "state", "start_date", "duration", "tasks"):
        assert column in header
    done = next(line for line in lines if "scheduled__2026-11-01T16:00:00+00:00" in line)
    assert names.run_name("etl", "scheduled__2026-11-01T16:00:00+00:00") in done
    assert "success" in done and "2m05s" in done and "success 3" in done
    running = next(line for line in lines if "manual__2026-11-02" in line)
    assert "running" in running and "success 1, running 1, none 1" in running
    assert any("other" in line and "scheduled__2026-11-03" in line for line in lines)


def test_runs_list_cluster_shows_why_a_run_cannot_go_on(three_runs, kubedag):
    """Issue 13: the reason of a run that cannot go on (a pool missing, a run id taken) is in the CLI too."""
    name = names.run_name("etl", "manual__2026-11-02T08:00:00+00:00")
    message = "task gpu: pool gpus does not exist (it waits until the Pool exists with enough slots)"
    set_status(three_runs, DAGRUNS, name, {"phase": "running", "conditions": [{
        "type": "Ready", "status": "False", "reason": "PoolUnavailable", "message": message,
        "lastTransitionTime": "2026-11-02T08:00:01Z"}]})
    runs = {r["name"]: r for r in json.loads(kubedag("runs", "list", "--dag", "etl", "-o", "json").out)}
    assert (runs[name]["ready_reason"], runs[name]["ready_message"]) == ("PoolUnavailable", message)
    assert runs[names.run_name("etl", "scheduled__2026-11-01T16:00:00+00:00")]["ready_reason"] is None
    line = next(line for line in kubedag("runs", "list").out.splitlines() if "manual__2026-11-02" in line)
    assert "running (PoolUnavailable)" in line


def test_runs_list_namespaces_and_local_mode_unchanged(three_runs, kubedag, kubeconfig, monkeypatch):
    create_namespace(three_runs, "team-a")
    three_runs.create(dagrun("etl", "scheduled__2026-11-04T16:00:00+00:00", "2026-11-04T16:00:00+00:00",
                             namespace="team-a"))
    team = json.loads(kubedag("runs", "list", "-n", "team-a", "-o", "json").out)
    assert [(r["namespace"], r["run_id"]) for r in team] == [("team-a", "scheduled__2026-11-04T16:00:00+00:00")]
    everywhere = kubedag("runs", "list", "-A", "--dag", "etl")
    assert everywhere.code == 0
    assert "team-a" in everywhere.out and "scheduled__2026-11-04T16:00:00+00:00" in everywhere.out
    assert len(json.loads(kubedag("runs", "list", "-A", "--dag", "etl", "-o", "json").out)) == 3
    # no cluster flag: the local metadata DB (empty), even with KUBECONFIG set
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    local = run_cli("runs", "list", "-o", "json")
    assert (local.code, json.loads(local.out)) == (0, [])
    assert len(json.loads(run_cli("runs", "list", "--cluster", "-o", "json").out)) == 3


# --- logs --------------------------------------------------------------------------------------------------

RUN_ID = "manual__2026-11-05T00:00:00+00:00"
RUN = names.run_name("etl", RUN_ID)


def task_pod(try_number: int, script: str, task: str = "extract") -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": names.pod_name("etl", RUN, task, try_number), "namespace": NS,
                     "labels": names.pod_labels("etl", RUN, task, try_number)},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "task", "image": "ignored", "command": ["sh", "-c", script]}]},
    }


def finished(obj: dict[str, Any] | None) -> bool:
    return obj is not None and (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")


@pytest.fixture
def run_with_two_tries(two_dags, fake_kubelet):  # noqa: ANN001, ANN201
    """A DAGRun of ``etl`` whose task ``extract`` failed its first try and succeeded its second, both pods run by
    the fake kubelet; ``load`` has not run yet."""
    api = two_dags
    api.create(dagrun("etl", RUN_ID, "2026-11-05T00:00:00+00:00", run_type="manual"))
    for n, script in ((1, "echo 'try 1 of extract'; echo boom >&2; exit 1"),
                      (2, 'echo "try 2 of extract"; echo \'{"rows": 42, "ok": true}\'')):
        pod = task_pod(n, script)
        api.create(pod)
        api.wait_for("v1/pods", pod["metadata"]["name"], NS, finished, timeout=20)
    set_status(api, DAGRUNS, RUN, {
        "phase": "running", "startedAt": "2026-11-05T00:00:01Z", "counts": {"success": 1, "none": 1},
        "tasks": {"extract": {"s": "success", "t": 2, "p": names.pod_suffix(RUN, "extract", 2)}},
    })
    return api


def test_logs_of_live_pods(run_with_two_tries, kubedag):
    latest = kubedag("logs", "etl", RUN_ID, "extract")
    assert latest.code == 0, latest.err
    assert latest.out == 'try 2 of extract\n{"rows": 42, "ok": true}\n'  # exactly as written, JSON not reparsed
    first = kubedag("logs", "etl", RUN_ID, "extract", "--try", "1")
    assert (first.code, first.out) == (0, "try 1 of extract\nboom\n")
    by_object_name = kubedag("logs", "etl", RUN, "extract", "--try", "1")
    assert by_object_name.out == "try 1 of extract\nboom\n"


def test_logs_errors_name_what_is_missing(run_with_two_tries, kubedag):
    no_try = kubedag("logs", "etl", RUN_ID, "extract", "--try", "3")
    assert (no_try.code, no_try.err) == (1, f"error: task 'extract' has 2 tries in run '{RUN_ID}'; there is no try 3\n")
    not_started = kubedag("logs", "etl", RUN_ID, "load")
    assert not_started.code == 1
    assert not_started.err == (f"error: task 'load' has no try yet in run '{RUN_ID}' of DAG 'etl' (state: none; "
                               f"DAGRun {RUN})\n")
    no_run = kubedag("logs", "etl", "manual__2020-01-01T00:00:00+00:00", "extract")
    assert no_run.code == 1
    assert no_run.err == ("error: no run 'manual__2020-01-01T00:00:00+00:00' of DAG 'etl' in namespace default "
                          "(see `kubedag runs list --dag etl -n default`)\n")
    wrong_dag = kubedag("logs", "other", RUN, "extract")
    assert wrong_dag.err == f"error: DAGRun {RUN} in namespace default is a run of DAG 'etl', not 'other'\n"


def test_logs_of_a_live_pod_mask_the_dags_variables_and_connections(run_with_two_tries, kubedag):
    """A live pod's log holds what templates rendered (secrets included): `kubedag logs` masks it as the controller
    masks the archived copy: Secret variables, sensitive-named ConfigMap variables, connection URIs and passwords.
    With the DAG gone, the sources cannot be read: exit 1 rather than print the log unmasked."""
    api = run_with_two_tries
    api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": NS},
                "data": {"region": "eu-west-1", "db_password": "hunter22"}})
    api.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tokens", "namespace": NS},
                "stringData": {"api_token": "tok-9f8e7d"}})
    api.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "conns", "namespace": NS},
                "stringData": {"warehouse": "postgres://etl:s3cr3tpw@db.internal:5432/shop"}})
    api.patch(DAGS, "etl", {"spec": {"variablesFrom": [{"configMapRef": {"name": "settings"}},
                                                       {"secretRef": {"name": "tokens"}}],
                                     "connectionsFrom": [{"secretRef": {"name": "conns"}}]}}, NS)
    pod = task_pod(1, "echo region=eu-west-1 dbpw=hunter22 token=tok-9f8e7d pw=s3cr3tpw; "
                      "echo env=postgres://etl:s3cr3tpw@db.internal:5432/shop", task="load")
    api.create(pod)
    api.wait_for("v1/pods", pod["metadata"]["name"], NS, finished, timeout=20)
    set_status(api, DAGRUNS, RUN, {"tasks": {"extract": {"s": "success", "t": 2}, "load": {"s": "success", "t": 1}}})
    result = kubedag("logs", "etl", RUN_ID, "load")
    assert (result.code, result.out) == (0, "region=eu-west-1 dbpw=*** token=*** pw=***\nenv=***\n"), result.err
    api.delete(DAGS, "etl", NS)
    gone = kubedag("logs", "etl", RUN_ID, "load")
    assert gone.code == 1 and gone.out == ""
    assert "DAG 'etl' is gone from namespace 'default'" in gone.err and "tok-9f8e7d" not in gone.err


def test_logs_fall_back_to_the_db_archive_once_the_pod_is_deleted(run_with_two_tries, kubedag, tmp_path, monkeypatch):
    api = run_with_two_tries
    pod = names.pod_name("etl", RUN, "extract", 2)
    assert kubedag("logs", "etl", RUN_ID, "extract").out.startswith("try 2 of extract")
    api.delete("v1/pods", pod, NS, gracePeriodSeconds=0)
    api.wait_for("v1/pods", pod, NS, lambda obj: obj is None)

    # no metadata DB configured: say so, and how to reach the archive
    gone = kubedag("logs", "etl", RUN_ID, "extract")
    assert gone.code == 1
    assert gone.err == (f"error: pod {pod} (try 2 of task 'extract') was deleted, so its log is no longer in the "
                        "cluster; set KUBEDAG_DATABASE_URL to the controller's metadata DB to read the archived copy\n")

    # the controller archived the log in the metadata DB
    from kubedag.store import open_store, repository

    url = f"sqlite:///{tmp_path / 'controller.db'}"
    engine, session = open_store(url)
    try:
        with session.begin() as s:
            repository.upsert_dag(s, db_dag_id(NS, "etl"), spec={}, namespace=NS)
            repository.create_dag_run(s, dag_id=db_dag_id(NS, "etl"), run_id=RUN_ID, run_type="manual",
                                      logical_date=datetime(2026, 11, 5, tzinfo=timezone.utc), state="running")
            repository.upsert_task_instance(s, db_dag_id(NS, "etl"), RUN_ID, "extract", state="success", try_number=2)
            repository.record_try(s, db_dag_id(NS, "etl"), RUN_ID, "extract", 1, state="failed", pod_name=names.pod_name(
                "etl", RUN, "extract", 1), log="archived try 1\n",
                reason="exit code 1 (upload to postgresql://etl:s3cret-pass@db:5432/shop failed)")
            repository.record_try(s, db_dag_id(NS, "etl"), RUN_ID, "extract", 2, state="success", pod_name=pod,
                                  log='archived try 2 of extract\n{"rows": 42, "ok": true}\n')
    finally:
        engine.dispose()
    monkeypatch.setenv("KUBEDAG_DATABASE_URL", url)
    archived = kubedag("logs", "etl", RUN_ID, "extract")
    assert (archived.code, archived.out) == (0, 'archived try 2 of extract\n{"rows": 42, "ok": true}\n')
    # try 1's pod still exists: its live log is read, not the archive, and ends with the try's failure reason from
    # its history row, a URL's password masked
    assert kubedag("logs", "etl", RUN_ID, "extract", "--try", "1").out == (
        "try 1 of extract\nboom\n"
        "[kubedag] try 1 failed: exit code 1 (upload to postgresql://etl:***@db:5432/shop failed)\n")


def test_logs_archive_without_the_try(run_with_two_tries, kubedag, tmp_path, monkeypatch):
    pod = names.pod_name("etl", RUN, "extract", 2)
    run_with_two_tries.delete("v1/pods", pod, NS, gracePeriodSeconds=0)
    run_with_two_tries.wait_for("v1/pods", pod, NS, lambda obj: obj is None)
    from kubedag.store import open_store

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(url)[0].dispose()
    monkeypatch.setenv("KUBEDAG_DATABASE_URL", url)
    result = kubedag("logs", "etl", RUN_ID, "extract")
    assert result.code == 1
    assert result.err == (f"error: pod {pod} was deleted and the metadata DB has no archived log of try 2 of task "
                          f"'extract' in run '{RUN_ID}'\n")


def test_logs_local_mode_unchanged(two_dags):
    result = run_cli("logs", "etl", RUN_ID, "extract")
    assert result.code == 1
    assert result.err == f"error: no DAG run '{RUN_ID}' of DAG 'etl'\n"


# --- the cluster cannot be used ----------------------------------------------------------------------------


def test_no_cluster_configured_is_one_line_and_exit_1(tmp_path):
    for args in (("dags", "list", "--cluster"), ("runs", "list", "--cluster"), ("dags", "trigger", "etl", "--cluster"),
                 ("logs", "etl", RUN_ID, "extract", "-n", "default")):
        result = run_cli(*args)
        assert result.code == 1, args
        assert result.err == ("error: no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG or "
                              "create ~/.kube/config (or run inside a cluster)\n")
        assert result.out == ""
    missing = run_cli("dags", "list", "--kubeconfig", str(tmp_path / "nope.yaml"))
    assert (missing.code, missing.err) == (1, f"error: kubeconfig {tmp_path / 'nope.yaml'} not found\n")


def test_no_cluster_from_the_installed_command(tmp_path):
    """The real entry point: one line on stderr, no traceback."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBEDAG_HOME": str(tmp_path / "kd")}
    kubedag_bin = str(Path(sys.executable).with_name("kubedag"))
    proc = subprocess.run([kubedag_bin, "dags", "list", "--cluster"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "error: no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG or create ~/.kube/config "
        "(or run inside a cluster)"]


def test_in_cluster_configuration(tmp_path, monkeypatch):
    """No kubeconfig, in a pod: the service account's token, CA and namespace."""
    import kubernetes.config.incluster_config as incluster

    from kubedag.k8s import kubeapi

    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_text("not checked until a connection is made")
    (tmp_path / "namespace").write_text("pipelines\n")
    monkeypatch.setattr(incluster, "SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
    monkeypatch.setattr(incluster, "SERVICE_CERT_FILENAME", str(tmp_path / "ca.crt"))
    monkeypatch.setattr(kubeapi, "SERVICE_ACCOUNT_NAMESPACE", tmp_path / "namespace")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with kubeapi.connect() as api:
        assert (api.host, api.namespace, api.source) == ("https://10.96.0.1:443", "pipelines", "in-cluster configuration")
    with kubeapi.connect(namespace="other") as api:
        assert api.namespace == "other"
    result = run_cli("dags", "list", "--context", "prod")
    assert (result.code, result.err) == (
        1, "error: --context prod: no kubeconfig found (KUBECONFIG unset or empty, no ~/.kube/config)\n")


def test_unreachable_api_server(tmp_path, k8s_api):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = k8s_api.kubeconfig(tmp_path / "kubeconfig")
    config.write_text(config.read_text().replace(k8s_api.url, f"http://127.0.0.1:{port}"))
    result = run_cli("dags", "list", "--kubeconfig", str(config))
    assert result.code == 1
    assert len(result.err.splitlines()) == 1
    assert result.err.startswith(f"error: cannot reach the Kubernetes API server at http://127.0.0.1:{port}: ")
    assert "Connection refused" in result.err


@pytest.mark.parametrize("k8s_crd_files", [[]])
def test_crds_not_installed(kubedag):
    for args in (("dags", "list"), ("runs", "list"), ("dags", "trigger", "etl"), ("logs", "etl", RUN_ID, "extract")):
        result = kubedag(*args)
        assert result.code == 1, args
        assert len(result.err.splitlines()) == 1
        assert "the kubedag CRDs are not installed; install them with `kubectl apply -f crds/`" in result.err

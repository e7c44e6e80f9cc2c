"""The UI's actions on the local metadata DB (``kubedag.store.operations.DbRuns``, SQLite): each dialog
previews, each confirmation changes the DB rows through ``kubedag.app.operations``, and a refused verb changes
nothing. Reads for the dialogs' headers come from an in-memory catalog holding the same DAG."""

from __future__ import annotations

import html
import json
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kubedag.app import operations
from kubedag.store.operations import DbRuns, open_db
from kubedag.ui import ui_router
from tests.ui.memory import T0, MemoryCatalog, Rbac, Services, TokenAuth, chain_dag

HX = {"Authorization": "Bearer alice-token", "HX-Request": "true"}


@pytest.fixture()
def env(tmp_path):
    dag = chain_dag("etl", 3, params={"limit": 10, "region": "eu"})
    catalog = MemoryCatalog()
    catalog.add_dag(dag)
    runs = DbRuns(open_db(f"sqlite:///{tmp_path / 'kubedag.db'}"))
    operations.trigger(runs, dag, logical_date=T0, run_id="r1")
    operations.mark(dag, runs, "r1", ["t000"], "success", now=T0 + timedelta(minutes=1))
    operations.mark(dag, runs, "r1", ["t001"], "failed", now=T0 + timedelta(minutes=2))
    rbac = Rbac({("alice", "*", "*"), ("bob", "list", "dags"), ("bob", "get", "dags"), ("bob", "patch", "dagruns")})
    services = Services(catalog, TokenAuth({"alice-token": "alice", "bob-token": "bob"}), rbac, runs=runs,
                        pauses=runs)
    app = FastAPI()
    app.include_router(ui_router(services))
    return TestClient(app), dag, runs


def states(runs, dag, run_id="r1"):
    loaded = runs.load_run(dag, run_id)
    return str(loaded.run.state), {t: (str(ti.state), ti.try_number) for t, ti in loaded.tis.items()}


def test_clear_with_downstream_previews_then_resets_the_failed_task_and_its_downstream(env):
    client, dag, runs = env
    assert states(runs, dag)[1]["t002"][0] == "upstream_failed"
    preview = client.get("/ui/dags/etl/runs/r1/clear?task_ids=t001&downstream=true", headers=HX)
    assert preview.status_code == 200
    assert "<td>t001</td><td><span class=\"sw\" style=\"background:red\"></span>failed</td>" in preview.text
    assert "<td>t002</td>" in preview.text and "<td>t000</td>" not in preview.text
    assert states(runs, dag)[1]["t001"][0] == "failed"                      # a preview changes nothing
    done = client.post("/ui/dags/etl/runs/r1/clear", headers=HX,
                       data={"task_ids": "t001", "downstream": "true", "upstream": "false", "only_failed": "false"})
    assert done.status_code == 200 and "Cleared t001, t002 in run r1." in done.text
    assert done.headers["HX-Trigger"] == "kd-refresh"
    run_state, tis = states(runs, dag)
    assert run_state == "queued" and tis["t001"][0] == "none" and tis["t002"][0] == "none"
    assert tis["t000"][0] == "success"                                        # upstream untouched


def test_mark_previews_the_change_and_marks_in_the_db(env):
    client, dag, runs = env
    preview = client.get("/ui/dags/etl/runs/r1/mark?task_ids=t001&state=success", headers=HX)
    assert "failed</td><td><span class=\"sw\" style=\"background:green\"></span>success" in preview.text
    done = client.post("/ui/dags/etl/runs/r1/mark", headers=HX, data={"task_ids": "t001", "state": "success"})
    assert "Marked t001 success" in done.text
    assert states(runs, dag)[1]["t001"][0] == "success"
    bad = client.get("/ui/dags/etl/runs/r1/mark?task_ids=t001&state=running", headers=HX)
    assert bad.status_code == 400 and "state: &#39;running&#39; is not one of success, failed, skipped" in bad.text
    assert bad.headers["HX-Retarget"] == "#modal-body"


def test_trigger_prefills_conf_from_params_checks_json_and_creates_the_run(env):
    client, dag, runs = env
    dialog = client.get("/ui/dags/etl/trigger", headers=HX).text
    assert json.loads(dialog.split("data-json>")[1].split("</textarea>")[0].replace("&#34;", '"')) == {
        "limit": 10, "region": "eu"}
    bad = client.post("/ui/dags/etl/trigger", headers=HX, data={"conf": "{'limit': 3}"})
    assert bad.status_code == 400 and "conf: not valid JSON" in bad.text
    assert client.post("/ui/dags/etl/trigger", headers=HX, data={"conf": "[1]"}).text.count("must be a JSON object")
    done = client.post("/ui/dags/etl/trigger", headers=HX,
                       data={"conf": '{"limit": 3}', "run_id": "by_hand", "logical_date": "2026-11-05T00:00:00"})
    assert "Triggered run by_hand of etl." in done.text
    loaded = runs.load_run(dag, "by_hand")
    assert loaded.run.conf == {"limit": 3} and str(loaded.run.run_type) == "manual"
    again = client.post("/ui/dags/etl/trigger", headers=HX, data={"run_id": "by_hand"})
    assert again.status_code == 409 and "already has run 'by_hand'" in html.unescape(again.text)


def test_pause_and_delete_run(env):
    client, dag, runs = env
    dialog = client.get("/ui/dags/etl/pause?paused=false", headers=HX).text
    assert "Unpause etl?" in dialog and "catchup is on" in dialog
    assert "DAG etl is now active." in client.post("/ui/dags/etl/pause", headers=HX, data={"paused": "false"}).text
    assert runs.is_paused(dag) is False
    client.post("/ui/dags/etl/pause", headers=HX, data={"paused": "true"})
    assert runs.is_paused(dag) is True
    done = client.post("/ui/dags/etl/runs/r1/delete", headers=HX)
    assert "Deleted run r1 of etl." in done.text
    with pytest.raises(operations.NotFound):
        runs.load_run(dag, "r1")


def test_backfill_dialog_previews_the_runs_it_would_create(env):
    client, _, _ = env
    html = client.get("/ui/dags/etl/backfill?from_date=2026-11-01&to_date=2026-11-03", headers=HX).text
    assert "2 runs to create, 1 existing:" in html                          # r1 is at 2026-11-01
    assert "backfill__2026-11-02T00:00:00+00:00" in html
    bad = client.get("/ui/dags/etl/backfill?from_date=2026-11-03&to_date=2026-11-01", headers=HX)
    assert bad.status_code == 400 and "to_date" in bad.text


def test_a_refused_verb_changes_nothing(env):
    client, dag, runs = env
    bob = {"Authorization": "Bearer bob-token", "HX-Request": "true"}
    refused = client.post("/ui/dags/etl/runs/r1/delete", headers=bob)
    assert refused.status_code == 403 and "bob may not delete dagruns" in refused.text
    assert client.post("/ui/dags/etl/trigger", headers=bob, data={"conf": "{}"}).status_code == 403
    assert client.post("/ui/dags/etl/pause", headers=bob, data={"paused": "false"}).status_code == 403
    assert states(runs, dag)[1]["t001"][0] == "failed"
    assert client.post("/ui/dags/etl/runs/r1/clear", headers=bob, data={"task_ids": "t001"}).status_code == 200


def test_mark_run_success_previews_every_task_that_changes_then_the_run_succeeds(env):
    client, dag, runs = env
    preview = client.get("/ui/dags/etl/runs/r1/state?state=success", headers=HX).text
    assert "Mark run r1 success?" in preview
    assert "<td>t001</td>" in preview and "<td>t002</td>" in preview and "<td>t000</td>" not in preview
    done = client.post("/ui/dags/etl/runs/r1/state", headers=HX, data={"state": "success"})
    assert "Run r1 is now success." in done.text
    run_state, tis = states(runs, dag)
    assert run_state == "success" and {s for s, _ in tis.values()} == {"success"}
    assert client.get("/ui/dags/etl/runs/r1/state?state=queued", headers=HX).status_code == 400

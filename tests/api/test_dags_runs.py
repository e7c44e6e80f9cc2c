"""The REST API over an in-memory kubedag (FastAPI's TestClient): DAGs, runs, task instances, as an Airflow 3
client sees them (status codes, bodies in Airflow's shapes)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kubedag.api import create_app
from kubedag.app.catalog import XComInfo
from tests.api.fakes import NOW, make_services


@pytest.fixture
def api():
    services, world = make_services()
    client = TestClient(create_app(services))
    client.world = world
    return client


def test_dags_list_excludes_invalid_ones_and_filters_by_tag_and_pattern(api):
    body = api.get("/api/v2/dags").json()
    assert [d["dag_id"] for d in body["dags"]] == ["etl", "other"] and body["total_entries"] == 2
    etl = body["dags"][0]
    assert (etl["is_paused"], etl["fileloc"], etl["timetable_summary"], [t["name"] for t in etl["tags"]]) == (
        False, "/dags/etl.yaml", "@daily", ["sales"])
    assert [d["dag_id"] for d in api.get("/api/v2/dags", params={"tags": "sales"}).json()["dags"]] == ["etl"]
    assert [d["dag_id"] for d in api.get("/api/v2/dags", params={"dag_id_pattern": "OTH"}).json()["dags"]] == ["other"]
    assert [d["dag_id"] for d in api.get("/api/v2/dags", params={"order_by": "-dag_id", "limit": 1}).json()["dags"]] == ["other"]


def test_unknown_dag_is_404_in_airflows_shape_and_an_invalid_one_is_an_import_error(api):
    assert api.get("/api/v2/dags/nope").status_code == 404
    assert set(api.get("/api/v2/dags/nope").json()) == {"detail"}
    assert api.get("/api/v2/dags/broken").status_code == 404
    errors = api.get("/api/v2/importErrors").json()
    assert errors["total_entries"] == 1
    assert (errors["import_errors"][0]["filename"], errors["import_errors"][0]["stack_trace"]) == (
        "/dags/broken.yaml", "spec.tasks: required")
    assert api.get("/api/v2/importErrors/1").json()["filename"] == "/dags/broken.yaml"
    assert api.get("/api/v2/importErrors/2").status_code == 404


def test_patch_is_paused_pauses_and_unpauses_through_the_operation(api):
    assert api.patch("/api/v2/dags/etl", json={"is_paused": True}).json()["is_paused"] is True
    assert api.world.paused["etl"] is True
    assert api.get("/api/v2/dags", params={"paused": True}).json()["total_entries"] == 1
    assert api.patch("/api/v2/dags/etl", json={"is_paused": False}).json()["is_paused"] is False
    assert api.patch("/api/v2/dags/etl", json={"is_paused": "maybe"}).status_code == 422
    assert api.patch("/api/v2/dags/etl", json={"is_paused": True, "owners": ["x"]}).status_code == 422
    assert api.patch("/api/v2/dags/etl", params={"update_mask": "owners"}, json={"is_paused": True}).status_code == 400
    bulk = api.patch("/api/v2/dags", params={"dag_id_pattern": "~"}, json={"is_paused": True}).json()
    assert [d["is_paused"] for d in bulk["dags"]] == [True, True]


def test_tasks_list_and_get(api):
    tasks = api.get("/api/v2/dags/etl/tasks").json()
    assert [t["task_id"] for t in tasks["tasks"]] == ["extract", "load", "report"]
    assert tasks["tasks"][0]["downstream_task_ids"] == ["load"]
    assert api.get("/api/v2/dags/etl/tasks/load").json()["trigger_rule"] == "all_success"
    assert api.get("/api/v2/dags/etl/tasks/nope").status_code == 404


def test_trigger_with_conf_and_run_id_then_409_for_the_same_run_and_400_for_a_bad_id(api):
    r = api.post("/api/v2/dags/etl/dagRuns", json={"dag_run_id": "r1", "logical_date": "2026-01-05T06:00:00Z",
                                                     "conf": {"x": 1}, "note": "hi"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["dag_run_id"], body["state"], body["run_type"], body["conf"]) == ("r1", "queued", "manual", {"x": 1})
    assert (body["data_interval_start"], body["data_interval_end"]) == ("2026-01-04T00:00:00Z", "2026-01-05T00:00:00Z")
    assert api.post("/api/v2/dags/etl/dagRuns", json={"dag_run_id": "r1", "logical_date": "2026-01-06T00:00:00Z"}
                    ).status_code == 409
    assert api.post("/api/v2/dags/etl/dagRuns", json={"dag_run_id": "bad id"}).status_code == 400
    assert api.post("/api/v2/dags/nope/dagRuns", json={}).status_code == 404
    now = api.post("/api/v2/dags/etl/dagRuns", json={}).json()
    assert now["logical_date"] == NOW.isoformat().replace("+00:00", "Z")
    interval = api.post("/api/v2/dags/other/dagRuns", json={
        "logical_date": "2026-02-01T00:00:00Z", "data_interval_start": "2026-01-01T00:00:00Z",
        "data_interval_end": "2026-02-01T00:00:00Z"}).json()
    assert interval["data_interval_start"] == "2026-01-01T00:00:00Z"
    assert api.post("/api/v2/dags/other/dagRuns", json={"data_interval_start": "2026-01-01T00:00:00Z"}).status_code == 400


def _runs(api, n: int = 3) -> None:
    for day in range(1, n + 1):
        api.post("/api/v2/dags/etl/dagRuns", json={"dag_run_id": f"r{day}", "logical_date": f"2026-01-0{day}T00:00:00Z"})


def test_list_runs_filters_pages_and_orders(api):
    _runs(api)
    api.world.set_tis("etl", "r2", "failed", extract="success", load="failed", report="upstream_failed")
    every = api.get("/api/v2/dags/etl/dagRuns").json()
    assert [r["dag_run_id"] for r in every["dag_runs"]] == ["r1", "r2", "r3"] and every["total_entries"] == 3
    assert [r["dag_run_id"] for r in api.get("/api/v2/dags/etl/dagRuns", params={"state": "failed"}).json()["dag_runs"]] == ["r2"]
    page = api.get("/api/v2/dags/etl/dagRuns", params={"order_by": "-logical_date", "limit": 2, "offset": 1}).json()
    assert ([r["dag_run_id"] for r in page["dag_runs"]], page["total_entries"]) == (["r2", "r1"], 3)
    dated = api.get("/api/v2/dags/etl/dagRuns", params={"logical_date_gte": "2026-01-02T00:00:00Z"}).json()
    assert [r["dag_run_id"] for r in dated["dag_runs"]] == ["r2", "r3"]
    assert api.get("/api/v2/dags/~/dagRuns").json()["total_entries"] == 3
    assert api.get("/api/v2/dags/etl/dagRuns", params={"order_by": "color"}).status_code == 400
    assert api.get("/api/v2/dags/etl/dagRuns/r2").json()["state"] == "failed"
    assert api.get("/api/v2/dags/etl/dagRuns/zz").status_code == 404


def test_patch_run_state_marks_its_tasks_and_delete_removes_it(api):
    _runs(api, 2)
    api.world.set_tis("etl", "r1", "running", extract="success", load="running")
    assert api.patch("/api/v2/dags/etl/dagRuns/r1", json={"state": "success"}).json()["state"] == "success"
    tis = {t["task_id"]: t["state"] for t in api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances").json()["task_instances"]}
    assert tis == {"extract": "success", "load": "success", "report": "success"}
    api.world.set_tis("etl", "r2", "running", extract="success", load="running")
    assert api.patch("/api/v2/dags/etl/dagRuns/r2", json={"state": "failed"}).json()["state"] == "failed"
    tis = {t["task_id"]: t["state"] for t in api.get("/api/v2/dags/etl/dagRuns/r2/taskInstances").json()["task_instances"]}
    assert tis == {"extract": "success", "load": "failed", "report": "upstream_failed"}
    assert api.patch("/api/v2/dags/etl/dagRuns/r2", json={"state": "queued"}).status_code == 400
    assert api.patch("/api/v2/dags/etl/dagRuns/r2", json={"note": "x"}).status_code == 400
    assert api.delete("/api/v2/dags/etl/dagRuns/r2").status_code == 204
    assert api.get("/api/v2/dags/etl/dagRuns/r2").status_code == 404
    assert api.delete("/api/v2/dags/etl/dagRuns/r2").status_code == 404


def test_clear_task_instances_dry_run_lists_and_the_real_one_resets_failed_with_downstream(api):
    _runs(api, 1)
    api.world.set_tis("etl", "r1", "failed", extract="success", load="failed", report="upstream_failed")
    body = {"dag_run_id": "r1", "task_ids": ["load"], "include_downstream": True, "only_failed": False}
    dry = api.post("/api/v2/dags/etl/clearTaskInstances", json=body).json()
    assert sorted(t["task_id"] for t in dry["task_instances"]) == ["load", "report"]
    assert api.get("/api/v2/dags/etl/dagRuns/r1").json()["state"] == "failed"
    done = api.post("/api/v2/dags/etl/clearTaskInstances", json={**body, "dry_run": False}).json()
    assert sorted((t["task_id"], t["state"]) for t in done["task_instances"]) == [("load", None), ("report", None)]
    assert api.get("/api/v2/dags/etl/dagRuns/r1").json()["state"] == "queued"
    assert api.post("/api/v2/dags/etl/clearTaskInstances", json={**body, "include_past": True}).status_code == 400
    assert api.post("/api/v2/dags/etl/clearTaskInstances", json={**body, "task_ids": ["nope"]}).status_code == 400


def test_clear_a_whole_run(api):
    _runs(api, 1)
    api.world.set_tis("etl", "r1", "failed", extract="success", load="failed", report="upstream_failed")
    dry = api.post("/api/v2/dags/etl/dagRuns/r1/clear", json={"only_failed": True}).json()
    assert sorted(t["task_id"] for t in dry["task_instances"]) == ["load", "report"] and dry["total_entries"] == 2
    run = api.post("/api/v2/dags/etl/dagRuns/r1/clear", json={"dry_run": False}).json()
    assert (run["dag_run_id"], run["state"]) == ("r1", "queued")


def test_task_instances_mark_tries_logs_and_xcoms(api):
    _runs(api, 1)
    api.world.set_tis("etl", "r1", "running", extract="success", load="running")
    api.world.logs[("etl", "r1", "extract", 1)] = "starting\npassword is ***\ndone\n"
    api.world.xcom.append(XComInfo("etl", "r1", "extract", "return_value", {"rows": 3, "api_key": "k"}, NOW))
    ti = api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances/extract").json()
    assert (ti["state"], ti["try_number"], ti["map_index"], ti["executor"]) == ("success", 1, -1, "local")
    assert ti["rendered_fields"]["env"] == {"API_TOKEN": "***", "REGION": "eu"}
    marked = api.patch("/api/v2/dags/etl/dagRuns/r1/taskInstances/load", json={"new_state": "failed"}).json()
    assert marked["task_instances"][0]["state"] == "failed"
    assert api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances/report").json()["state"] == "upstream_failed"
    assert api.patch("/api/v2/dags/etl/dagRuns/r1/taskInstances/load", json={"new_state": "running"}).status_code == 400
    assert api.patch("/api/v2/dags/etl/dagRuns/r1/taskInstances/nope", json={"new_state": "success"}).status_code == 404
    tries = api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances/extract/tries").json()
    assert [t["try_number"] for t in tries["task_instances"]] == [1]
    assert api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances/extract/tries/1").json()["state"] == "success"
    assert api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances/extract/tries/2").status_code == 404
    log = api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances/extract/logs/1").json()
    assert log == {"content": [{"event": "starting"}, {"event": "password is ***"}, {"event": "done"}]}
    nd = api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances/extract/logs/1", headers={"accept": "application/x-ndjson"})
    assert nd.text.splitlines()[0] == '{"event": "starting"}'
    assert api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances/extract/logs/7").status_code == 404
    xcoms = api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances/~/xcomEntries").json()
    assert [x["key"] for x in xcoms["xcom_entries"]] == ["return_value"] and "value" not in xcoms["xcom_entries"][0]
    value = api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances/extract/xcomEntries/return_value").json()
    assert value["value"] == {"rows": 3, "api_key": "***"}
    assert api.get("/api/v2/dags/etl/dagRuns/r1/taskInstances/extract/xcomEntries/nope").status_code == 404

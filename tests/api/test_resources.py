"""Backfills, pools, variables, connections, version and health over the REST API (TestClient, in-memory
kubedag): Airflow's shapes and codes, and no secret in any answer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from kubedag.api import create_app
from kubedag.api.convert import backfill_number
from kubedag.app.catalog import BackfillInfo
from tests.api.fakes import make_services


@pytest.fixture
def api():
    services, world = make_services()
    client = TestClient(create_app(services))
    client.world = world
    return client


def test_backfill_create_list_get_pause_unpause_cancel(api):
    body = {"dag_id": "etl", "from_date": "2026-01-01T00:00:00Z", "to_date": "2026-01-03T00:00:00Z",
            "reprocess_behavior": "failed", "max_active_runs": 2, "dag_run_conf": {"db_password": "x", "n": 1}}
    created = api.post("/api/v2/backfills", json=body)
    assert created.status_code == 200, created.text
    b = created.json()
    assert (b["id"], b["dag_id"], b["reprocess_behavior"], b["max_active_runs"], b["is_paused"]) == (
        1, "etl", "failed", 2, False)
    assert b["dag_run_conf"] == {"db_password": "***", "n": 1}
    assert api.post("/api/v2/backfills", json=body).status_code == 409
    assert [x["id"] for x in api.get("/api/v2/backfills", params={"dag_id": "etl"}).json()["backfills"]] == [1]
    assert api.get("/api/v2/backfills").status_code == 422
    assert api.get("/api/v2/backfills/1").json()["from_date"] == "2026-01-01T00:00:00Z"
    assert api.get("/api/v2/backfills/9").status_code == 404
    assert api.put("/api/v2/backfills/1/pause").json()["is_paused"] is True
    assert api.put("/api/v2/backfills/1/unpause").json()["is_paused"] is False
    cancelled = api.put("/api/v2/backfills/1/cancel").json()
    assert cancelled["completed_at"] is not None
    assert api.put("/api/v2/backfills/1/pause").status_code == 409
    bad = api.post("/api/v2/backfills", json={**body, "from_date": "2026-02-01T00:00:00Z"})
    assert (bad.status_code, bad.json()["detail"].startswith("to_date")) == (400, True)
    assert api.post("/api/v2/backfills", json={**body, "dag_id": "nope"}).status_code == 404
    assert api.post("/api/v2/backfills", json={**body, "reprocess_behavior": "all"}).status_code == 422


def test_backfill_named_by_hand_gets_a_stable_integer_id(api):
    api.world.backfill_rows["nightly-redo"] = BackfillInfo("nightly-redo", "etl", datetime(2026, 1, 1, tzinfo=UTC),
                                                           datetime(2026, 1, 2, tzinfo=UTC))
    number = backfill_number("nightly-redo")
    assert api.get(f"/api/v2/backfills/{number}").json()["id"] == number


def test_pools_variables_connections_are_read_only_and_masked(api):
    pools = api.get("/api/v2/pools").json()
    db = pools["pools"][1]
    assert (db["name"], db["slots"], db["occupied_slots"], db["open_slots"]) == ("db", 2, 3, 0)
    assert api.get("/api/v2/pools/db").json()["running_slots"] == 2
    assert api.get("/api/v2/pools/nope").status_code == 404
    variables = {v["key"]: v["value"] for v in api.get("/api/v2/variables").json()["variables"]}
    assert variables == {"region": "eu-west-1", "db_password": "***"}
    assert api.get("/api/v2/variables/db_password").json()["value"] == "***"
    conn = api.get("/api/v2/connections/warehouse").json()
    assert (conn["password"], conn["schema"], conn["host"]) == ("***", None, "db")
    assert api.get("/api/v2/connections").json()["total_entries"] == 1
    for path in ("/api/v2/variables", "/api/v2/pools"):
        assert api.post(path, json={}).status_code == 405


def test_version_health_probes_and_openapi(api):
    assert api.get("/api/v2/version").json()["version"] == "9.9.9"
    health = api.get("/api/v2/monitor/health").json()
    assert health["metadatabase"] == {"status": "healthy"}
    assert (health["scheduler"]["status"], health["scheduler"]["latest_scheduler_heartbeat"]) == (
        "healthy", "2026-01-10T12:00:00+00:00")
    assert api.get("/health").json()["scheduler"]["status"] == "healthy"
    assert api.get("/api/v1/health").status_code == 200
    doc = api.get("/openapi.json").json()
    assert doc["paths"]["/api/v2/dags/{dag_id}/dagRuns"]["post"]["operationId"] == "trigger_dag_run"
    assert set(doc["components"]["schemas"]["DAGRunResponse"]["required"]) >= {
        "dag_run_id", "dag_id", "run_after", "run_type", "state", "dag_versions", "dag_display_name"}


def test_readyz_reports_why_it_is_not_ready():
    services, _ = make_services()
    services.ready = lambda: "metadata DB unreachable"
    response = TestClient(create_app(services)).get("/readyz")
    assert (response.status_code, response.json()) == (503, {"detail": "metadata DB unreachable"})


def test_extra_asgi_apps_are_mounted_for_metrics():
    async def metrics(scope, receive, send):  # noqa: ANN001, ANN202 - a minimal ASGI app
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"kubedag_up 1\n"})

    services, _ = make_services()
    client = TestClient(create_app(services, mounts=[("/metrics", metrics)]))
    assert client.get("/metrics").text == "kubedag_up 1\n"


def test_failing_a_run_with_nothing_running_fails_its_unfinished_tasks(api):
    api.post("/api/v2/dags/etl/dagRuns", json={"dag_run_id": "q", "logical_date": "2026-01-02T00:00:00Z"})
    assert api.patch("/api/v2/dags/etl/dagRuns/q", json={"state": "failed"}).json()["state"] == "failed"
    tis = {t["task_id"]: t["state"] for t in api.get("/api/v2/dags/etl/dagRuns/q/taskInstances").json()["task_instances"]}
    assert tis == {"extract": "failed", "load": "failed", "report": "failed"}
    assert api.patch("/api/v2/dags/etl/dagRuns/q", json={"state": "failed"}).json()["state"] == "failed"

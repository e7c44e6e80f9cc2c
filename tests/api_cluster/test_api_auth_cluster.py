"""Who may use the cluster's REST API, decided by the cluster: a request without a Kubernetes token is 401, a token
whose identity lacks ANY of an endpoint's RBAC verbs is 403 (iterating the API's one permissions table, each
check a SubjectAccessReview of the emulator), a namespace the identity cannot list is invisible, the seeds'
basic-auth trigger works with users from a Secret, and no secret reaches a response."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import bcrypt
import pytest
from fastapi.testclient import TestClient

from kubedag.api import create_app
from kubedag.api.permissions import PERMISSIONS, PUBLIC
from kubedag.k8s.kubeapi import ClusterRuns
from kubedag.app import operations as ops
from kubedag.cli.api_cluster import cluster_services
from tests.api_cluster.conftest import DAGRUNS, DAGS, OTHER, dag
from tests.controller.harness import wait_until

PARAMS = {"dag_id": "etl", "dag_run_id": "r1", "task_id": "extract", "try_number": "1", "task_try_number": "1",
          "xcom_key": "return_value", "backfill_id": "b1", "pool_name": "db", "variable_key": "region",
          "connection_id": "warehouse", "import_error_id": "1"}


def endpoints(app) -> list[tuple[str, str, str]]:
    """``(operation id, method, path with PARAMS filled in)`` of every endpoint of the served OpenAPI document."""
    return [(op["operationId"], method.upper(), re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], path))
            for path, methods in app.openapi()["paths"].items() for method, op in methods.items()]


def triple(need) -> tuple[str, str, str]:
    return need.group, f"{need.resource}/{need.subresource}" if need.subresource else need.resource, need.verb


ALL_NEEDS = sorted({triple(n) for needs in PERMISSIONS.values() for n in needs})


@pytest.fixture
def app(kube):
    return create_app(cluster_services(kube, namespaces=(OTHER,)))


def test_no_token_is_401_on_every_endpoint_and_public_ones_answer(app, auth):
    client = TestClient(app)
    checked = 0
    for operation_id, method, path in endpoints(app):
        if operation_id in PUBLIC:
            continue
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            response = client.request(method, path, json={}, headers=headers)
            assert response.status_code == 401, (operation_id, headers, response.text)
            assert "Bearer" in response.headers["www-authenticate"]
        checked += 1
    assert checked == len(PERMISSIONS)
    assert client.get("/api/v2/version").status_code == 200 and client.get("/healthz").status_code == 200


def test_a_token_lacking_any_one_verb_of_an_endpoint_is_403(app, auth):
    """For every endpoint and every permission it needs: an identity granted every other permission (in both
    namespaces) is refused with 403 naming the missing one; the cluster was asked a SubjectAccessReview."""
    client = TestClient(app)
    tokens = {}
    for missing in ALL_NEEDS:
        user = "lacks-" + "-".join(missing).replace("/", "_")
        tokens[missing] = auth.add_token(user)
        for group, resource, verb in ALL_NEEDS:
            if (group, resource, verb) != missing:
                auth.grant(f"user:{user}", [verb], [resource], api_groups=[group])
    cases = 0
    for operation_id, method, path in endpoints(app):
        if operation_id in PUBLIC:
            continue
        for need in PERMISSIONS[operation_id]:
            group, resource, verb = triple(need)
            response = client.request(method, path, json={},
                                      headers={"Authorization": f"Bearer {tokens[triple(need)]}"})
            assert response.status_code == 403, (operation_id, need, response.text)
            assert response.json()["detail"].startswith(f"lacks-{group}-{resource.replace('/', '_')}-{verb} may not "
                                                        f"{verb} {resource}"), response.text
            assert "in namespace default" in response.json()["detail"]
            cases += 1
    assert cases == sum(len(n) for n in PERMISSIONS.values())
    assert any(r["resourceAttributes"].get("name") == "etl" for r in auth.reviews)  # DAG-level: its name


def test_a_namespace_the_identity_cannot_list_is_invisible(k8s_api, kube, app, auth):
    k8s_api.create(dag("sales", [{"name": "a", "command": ["true"]}]))
    k8s_api.create(dag("etl", [{"name": "a", "command": ["true"]}], namespace=OTHER))
    ops.trigger(ClusterRuns(kube.__class__(kube.api_client, OTHER)), "etl",
                logical_date=datetime(2026, 11, 1, tzinfo=timezone.utc))
    alice = auth.add_token("alice")
    auth.grant("user:alice", ["get", "list"], ["dags", "dagruns", "pools", "backfills"], namespace="default")
    admin = auth.add_token("admin")
    auth.grant("user:admin", ["*"], ["*"])
    client = TestClient(app)

    def get(path, token):
        return client.get(path, headers={"Authorization": f"Bearer {token}"})

    assert [d["dag_id"] for d in get("/api/v2/dags", admin).json()["dags"]] == ["sales", "team-b.etl"]
    assert [d["dag_id"] for d in get("/api/v2/dags", alice).json()["dags"]] == ["sales"]
    assert get("/api/v2/dags/~/dagRuns", admin).json()["total_entries"] == 1
    hidden = get("/api/v2/dags/~/dagRuns", alice).json()
    assert (hidden["dag_runs"], hidden["total_entries"]) == ([], 0)
    assert {p["name"] for p in get("/api/v2/pools", alice).json()["pools"]} == {"default-pool"}
    refused = get("/api/v2/dags/team-b.etl", alice)
    assert refused.status_code == 403 and "in namespace team-b" in refused.json()["detail"]
    assert get("/api/v2/dags/team-c.etl", admin).status_code == 404  # a namespace the server does not serve


def test_the_seeds_basic_auth_trigger_and_health(k8s_api, kube, auth):
    hashed = bcrypt.hashpw(b"pw-of-ci", bcrypt.gensalt(rounds=4)).decode()
    k8s_api.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api-users", "namespace": "default"},
                    "stringData": {"users.yaml": f"- {{username: ci, passwordHash: '{hashed}', groups: [triggerers]}}"}})
    k8s_api.create(dag("etl", [{"name": "a", "command": ["true"]}]))
    auth.grant("group:triggerers", ["get", "create", "list"], ["dags", "dagruns"], namespace="default")
    client = TestClient(create_app(cluster_services(kube, basic_auth_secret="api-users")))
    # curl -u ci:pw-of-ci -X POST .../api/v1/dags/etl/dagRuns -d '{"conf": {...}}'
    created = client.post("/api/v1/dags/etl/dagRuns", json={"conf": {"k": "v"}}, auth=("ci", "pw-of-ci"))
    assert created.status_code == 200, created.text
    assert (created.json()["dag_id"], created.json()["conf"]) == ("etl", {"k": "v"})
    [run] = k8s_api.list(DAGRUNS, "default")
    assert (run["spec"]["dagName"], run["spec"]["conf"]) == ("etl", {"k": "v"})
    assert client.post("/api/v1/dags/etl/dagRuns", json={}, auth=("ci", "wrong")).status_code == 401
    denied = client.patch("/api/v2/dags/etl", json={"is_paused": True}, auth=("ci", "pw-of-ci"))
    assert denied.status_code == 403 and denied.json()["detail"].startswith("ci may not patch dags 'etl'")
    assert k8s_api.get(DAGS, "etl", "default")["spec"].get("paused") in (None, False)
    assert client.get("/health").status_code == 200


def test_no_secret_reaches_any_response(k8s_api, cluster_api):
    k8s_api.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "default"},
                    "stringData": {"api_token": "sup3r-s3cret-value",
                                   "warehouse": "postgresql://etl:pa55w0rd-value@db.example:5432/dw"}})
    k8s_api.create(dag("leaky", [{"name": "say", "command": [
        "sh", "-c", 'echo "token {{ var.value.api_token }}"; echo "{{ conn.warehouse.password }}" > "$KUBEDAG_XCOM_PATH"']}],
        variablesFrom=[{"secretRef": {"name": "creds"}}], connectionsFrom=[{"secretRef": {"name": "creds"}}]))
    wait_until(lambda: ((k8s_api.get(DAGS, "leaky", "default") or {}).get("status") or {}).get("conditions"))
    client = TestClient(create_app(cluster_api.services))
    headers = {"Authorization": f"Bearer {cluster_api.token}"}
    run = client.post("/api/v2/dags/leaky/dagRuns", json={"logical_date": None}, headers=headers).json()
    run_id = run["dag_run_id"]
    wait_until(lambda: client.get(f"/api/v2/dags/leaky/dagRuns/{run_id}", headers=headers).json()["state"]
               in ("success", "failed"), 60, "the run")
    paths = ["/api/v2/dags", "/api/v2/dags/leaky", "/api/v2/dags/leaky/details", "/api/v2/dags/leaky/tasks",
             f"/api/v2/dags/leaky/dagRuns/{run_id}", f"/api/v2/dags/leaky/dagRuns/{run_id}/taskInstances",
             f"/api/v2/dags/leaky/dagRuns/{run_id}/taskInstances/say/logs/1",
             f"/api/v2/dags/leaky/dagRuns/{run_id}/taskInstances/say/xcomEntries",
             f"/api/v2/dags/leaky/dagRuns/{run_id}/taskInstances/say/tries",
             "/api/v2/variables", "/api/v2/connections", "/api/v2/pools", "/api/v2/importErrors"]
    bodies = {}
    for path in paths:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        bodies[path] = response.text
    log = json.loads(bodies[paths[6]])
    assert "token ***" in json.dumps(log)
    for path, text in bodies.items():
        assert "sup3r-s3cret-value" not in text and "pa55w0rd-value" not in text, path

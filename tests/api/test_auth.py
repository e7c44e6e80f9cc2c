"""Authentication and authorisation of the REST API: 401 without credentials, 403 for an identity lacking the
Kubernetes verb of ANY endpoint (iterating the one permissions table), the local token / basic auth / Airflow 3
``/auth/token`` login, and never serving unauthenticated beyond loopback."""

from __future__ import annotations

import base64
import re

import pytest
from fastapi.testclient import TestClient

from kubedag.api import create_app
from kubedag.api.auth import LocalAuthenticator, check_bind, hash_password, load_users
from kubedag.api.permissions import PERMISSIONS, PUBLIC
from kubedag.app.operations.ports import OperationError
from tests.api.fakes import Deny, make_services

PARAMS = {"dag_id": "etl", "dag_run_id": "r1", "task_id": "extract", "try_number": "1", "task_try_number": "1",
          "xcom_key": "return_value", "backfill_id": "1", "pool_name": "db", "variable_key": "region",
          "connection_id": "warehouse", "import_error_id": "1"}


def endpoints() -> list[tuple[str, str, str]]:
    """``(operation id, method, path with PARAMS filled in)`` of every endpoint of the served OpenAPI document."""
    services, _ = make_services()
    doc = create_app(services).openapi()
    return [(op["operationId"], method.upper(), re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], path))
            for path, methods in doc["paths"].items() for method, op in methods.items()]


def test_every_endpoint_is_in_the_permissions_table_or_public_and_the_table_has_no_stale_entry():
    ids = [e[0] for e in endpoints()]
    assert len(ids) == len(set(ids)) == len(PERMISSIONS) + len(PUBLIC)
    assert set(PERMISSIONS) | set(PUBLIC) == set(ids)


CASES = [(op, method, path, need) for op, method, path in endpoints() if op not in PUBLIC for need in PERMISSIONS[op]]


@pytest.mark.parametrize(("operation_id", "method", "path", "need"), CASES, ids=[f"{c[0]}-{c[3].describe()}" for c in CASES])
def test_an_identity_lacking_one_verb_of_an_endpoint_gets_403(operation_id, method, path, need):
    resource = f"{need.resource}/{need.subresource}" if need.subresource else need.resource
    deny = Deny({(need.verb, resource)})
    services, _ = make_services(authorizer=deny, namespace="team-a")
    response = TestClient(create_app(services)).request(method, path, json={})
    assert response.status_code == 403, (operation_id, response.text)
    assert response.json()["detail"].startswith(f"local may not {need.verb} {resource}")
    assert "in namespace team-a" in response.json()["detail"]
    assert all(asked[3] == "team-a" for asked in deny.asked)


def test_dag_level_access_is_asked_for_the_dags_name():
    deny = Deny()
    services, _ = make_services(authorizer=deny)
    TestClient(create_app(services)).get("/api/v2/dags/etl")
    assert deny.asked == [("local", "get", "dags", None, "etl")]


def test_logs_need_get_dagruns_and_get_pods_log():
    assert {(n.verb, n.resource, n.subresource, n.group) for n in PERMISSIONS["get_log"]} == {
        ("get", "dagruns", None, "kubedag.io"), ("get", "pods", "log", "")}
    assert {(n.verb, n.resource) for n in PERMISSIONS["trigger_dag_run"]} >= {("create", "dagruns")}


USERS = {"ops": hash_password("pw").encode()}


@pytest.fixture
def locked():
    users = USERS
    services, world = make_services(authenticator=LocalAuthenticator(token="start-up-token", users=users))
    return TestClient(create_app(services))


@pytest.mark.parametrize(("operation_id", "method", "path"), sorted({c[:3] for c in CASES}))
def test_no_credentials_gives_401_on_every_endpoint(locked, operation_id, method, path):
    response = locked.request(method, path, json={})
    assert response.status_code == 401
    assert response.json()["detail"].startswith("no credentials")
    assert "Bearer" in response.headers["www-authenticate"]


def test_public_endpoints_need_no_credentials(locked):
    assert locked.get("/api/v2/monitor/health").json()["scheduler"]["status"] == "healthy"
    assert locked.get("/health").json()["metadatabase"] == {"status": "healthy"}
    assert locked.get("/api/v2/version").json() == {"version": "9.9.9", "git_version": None}
    assert locked.get("/healthz").text == "ok" and locked.get("/readyz").text == "ok"


def test_token_basic_auth_and_auth_token_login(locked):
    assert locked.get("/api/v2/dags", headers={"Authorization": "Bearer start-up-token"}).status_code == 200
    assert locked.get("/api/v2/dags", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert locked.get("/api/v2/dags", auth=("ops", "pw")).status_code == 200
    assert locked.get("/api/v2/dags", auth=("ops", "nope")).json() == {"detail": "invalid username or password"}
    bad = "Basic " + base64.b64encode(b"no-colon").decode()
    assert locked.get("/api/v2/dags", headers={"Authorization": bad}).status_code == 401
    assert locked.post("/auth/token", json={"username": "ops", "password": "nope"}).status_code == 401
    login = locked.post("/auth/token", json={"username": "ops", "password": "pw"})
    assert login.status_code == 201
    token = login.json()["access_token"]
    assert locked.get("/api/v2/dags", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_the_seeds_airflow2_trigger_with_basic_auth(locked):
    r = locked.post("/api/v1/dags/etl/dagRuns", json={"conf": {"k": "v"}}, auth=("ops", "pw"))
    assert r.status_code == 200, r.text
    assert (r.json()["dag_id"], r.json()["state"], r.json()["conf"], r.json()["external_trigger"]) == (
        "etl", "queued", {"k": "v"}, True)
    listed = locked.get("/api/v1/dags/etl/dagRuns", auth=("ops", "pw")).json()
    assert [run["dag_run_id"] for run in listed["dag_runs"]] == [r.json()["dag_run_id"]]


def test_loopback_without_auth_is_local_and_anything_else_needs_auth(tmp_path):
    services, _ = make_services()
    assert TestClient(create_app(services)).get("/api/v2/dags").status_code == 200
    check_bind("127.0.0.1", False)
    check_bind("::1", False)
    check_bind("localhost", False)
    check_bind("0.0.0.0", True)
    with pytest.raises(ValueError, match="--host 0.0.0.0: refusing to serve beyond loopback without authentication"):
        check_bind("0.0.0.0", False)
    users = tmp_path / "users"
    users.write_text(f"# ops team\nops:{hash_password('pw')}\n")
    assert list(load_users(users)) == ["ops"]
    users.write_text("ops:plain\n")
    with pytest.raises(ValueError, match="users:1: expected 'username:<bcrypt hash>'"):
        load_users(users)


def test_a_dag_of_another_namespace_is_authorised_there_and_the_catalog_is_scoped_to_the_identity():
    deny = Deny()
    services, _ = make_services(authorizer=deny, namespace="home")
    services.locate = lambda dag_id: tuple(dag_id.split(".", 1)) if "." in dag_id else ("home", dag_id)
    seen = []
    catalog = services.catalog
    services.scope = lambda who: seen.append(who.username) or catalog
    client = TestClient(create_app(services))
    client.get("/api/v2/dags/team-b.etl")
    client.get("/api/v2/dags")
    assert deny.asked == [("local", "get", "dags", "team-b", "etl"), ("local", "list", "dags", "home", None)]
    assert seen == ["local", "local"]
    client.get("/api/v2/version")
    assert seen == ["local", "local"]


def test_an_authorizer_that_cannot_decide_gives_503_not_a_denial():
    class Broken:
        def allowed(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            raise OperationError("SubjectAccessReview failed: connection refused")

    services, _ = make_services(authorizer=Broken())
    response = TestClient(create_app(services)).get("/api/v2/dags")
    assert (response.status_code, response.json()) == (
        503, {"detail": "cannot authorise the request now: SubjectAccessReview failed: connection refused"})

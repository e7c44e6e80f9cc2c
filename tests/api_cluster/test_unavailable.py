"""Kubernetes failures reach the REST API's caller as 503 with a one-line reason (Airflow answers 503 when a
service it needs is down), not as 409 (which says the request conflicts with the object's state): an API server
that cannot be reached (for the TokenReview, reads, writes) or that answers with a server error."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kubedag.api import create_app
from kubedag.api.auth import AllowAll, LocalAuthenticator
from kubedag.cli.api_cluster import cluster_services
from kubedag.k8s.kubeapi import connect
from tests.api_cluster.conftest import dag, grant_admin
from tests.k8s.emulator import errors
from tests.k8s.emulator import server as emulator_server


@pytest.fixture
def dead_kube(tmp_path: Path):
    """A KubeApi whose API server does not listen (a port nobody has)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u, namespace: default}}]\n")
    return connect(str(kubeconfig))


def one_line_503(response, *words: str) -> str:
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert "\n" not in detail and all(word in detail for word in words), detail
    return detail


def test_a_token_that_cannot_be_reviewed_is_503(dead_kube):
    client = TestClient(create_app(cluster_services(dead_kube)))
    response = client.get("/api/v2/dags", headers={"Authorization": "Bearer some-token"})
    one_line_503(response, "the TokenReview failed")


def test_reads_and_writes_on_an_unreachable_api_server_are_503(dead_kube):
    # Authentication and authorisation that need no API server, so the catalog and operations are what fail.
    services = replace(cluster_services(dead_kube), authenticator=LocalAuthenticator("t"), authorizer=AllowAll(),
                       scope=None)
    client = TestClient(create_app(services))
    headers = {"Authorization": "Bearer t"}
    one_line_503(client.get("/api/v2/dags", headers=headers), "cannot reach the Kubernetes API server")
    one_line_503(client.get("/api/v2/dags/etl/dagRuns", headers=headers), "cannot reach the Kubernetes API server")
    one_line_503(client.post("/api/v2/dags/etl/dagRuns", json={"logical_date": None}, headers=headers),
                 "cannot reach the Kubernetes API server")
    one_line_503(client.patch("/api/v2/dags/etl", json={"is_paused": True}, headers=headers),
                 "cannot reach the Kubernetes API server")


def test_a_server_error_of_the_api_server_is_503_and_a_conflict_stays_409(k8s_api, kube, auth, monkeypatch):
    k8s_api.create(dag("etl", [{"name": "extract", "command": ["true"]}]))
    token = auth.add_token("admin")
    grant_admin(auth, "user:admin")
    client = TestClient(create_app(cluster_services(kube)))
    headers = {"Authorization": f"Bearer {token}"}
    created = client.post("/api/v2/dags/etl/dagRuns", json={"logical_date": None, "dag_run_id": "r1"}, headers=headers)
    assert created.status_code == 200, created.text
    again = client.post("/api/v2/dags/etl/dagRuns", json={"logical_date": None, "dag_run_id": "r1"}, headers=headers)
    assert again.status_code == 409, again.text  # a conflict with existing state, as before

    original = emulator_server.KubeApiEmulator._dispatch

    async def dispatch(self, request):
        if request.method == "GET" and "/dags" in request.url.path:
            raise errors.StatusError(500, "InternalError", "etcd is down")
        return await original(self, request)

    monkeypatch.setattr(emulator_server.KubeApiEmulator, "_dispatch", dispatch)
    one_line_503(client.get("/api/v2/dags", headers=headers), "500", "etcd is down")


def test_a_bad_leader_lease_option_exits_2_naming_it(dead_kube, tmp_path):
    import subprocess
    import sys

    kubeconfig = tmp_path / "kubeconfig"  # written by dead_kube: a cluster that is never contacted here
    done = subprocess.run([sys.executable, "-m", "kubedag.cli.main", "api", "--cluster", f"--kubeconfig={kubeconfig}",
                           "--leader-lease=a/b/c"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "--leader-lease: 'a/b/c' is not <namespace>/<name> or <name>" in done.stderr

"""The UI mounted in the REST API's app (``kubedag.api.create_app(..., extra_routes=[ui_router(services)])``),
as ``kubedag api`` serves it: one process, the same services, the API's local start-up token logs into the UI."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kubedag.api.app import create_app
from kubedag.api.auth import AllowAll, LocalAuthenticator
from kubedag.api.services import ApiServices
from kubedag.store.operations import DbRuns, open_db
from kubedag.ui import ui_router
from tests.ui.memory import MemoryCatalog, chain_dag


@pytest.fixture()
def client(tmp_path):
    catalog = MemoryCatalog()
    catalog.add_dag(chain_dag("etl", 2))
    runs = DbRuns(open_db(f"sqlite:///{tmp_path / 'kubedag.db'}"))
    services = ApiServices(catalog, runs, None, runs, None, LocalAuthenticator(token="s3cret"), AllowAll())
    return TestClient(create_app(services, extra_routes=[ui_router(services)]))


def test_the_start_up_token_logs_into_the_ui_of_the_api_process(client):
    assert client.get("/ui/").status_code == 401
    assert client.get("/api/v2/dags").status_code == 401                    # the API refuses alike
    assert client.post("/ui/login", data={"token": "wrong"}).status_code == 401
    client.post("/ui/login", data={"token": "s3cret"})
    page = client.get("/ui/")
    assert page.status_code == 200 and 'data-dag="etl"' in page.text
    assert client.get("/ui", follow_redirects=False).headers["location"] == "/ui/"


def test_the_ui_adds_nothing_to_the_rest_api_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert paths and not [p for p in paths if p.startswith("/ui")]


def test_the_ui_posts_forms_while_the_api_reads_the_seeds_curl_forms_as_json(client):
    client.post("/ui/login", data={"token": "s3cret"})
    paused = client.post("/ui/dags/etl/pause", data={"paused": "true"}, headers={"HX-Request": "true"})
    assert paused.status_code == 200 and "DAG etl is now paused." in paused.text


def test_pages_and_static_files_are_gzipped_for_a_client_that_accepts_it(client):
    client.post("/ui/login", data={"token": "s3cret"})
    for path in ("/ui/dags/etl/grid", "/ui/static/ui.css"):
        zipped = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert zipped.status_code == 200 and zipped.headers["content-encoding"] == "gzip", path
        plain = client.get(path, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.text == zipped.text   # httpx decodes

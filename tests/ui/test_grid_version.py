"""The grid's live poll on the local metadata DB (``kubedag api``'s composition): while nothing changed it answers
204 from the catalog's small version query, without building the grid (no task instance read); after a change
it sends the new grid."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import yaml
from fastapi.testclient import TestClient

from kubedag.api import create_app
from kubedag.app import operations
from kubedag.app.catalog import GridVersion, RunQuery
from kubedag.cli.api import LocalAuth, local_services
from kubedag.store.catalog import SqlCatalog
from kubedag.ui import ui_router
from tests.api_cluster.conftest import k8s_crd_files, kube  # noqa: F401 - the emulator's fixtures
from tests.k8s.emulator.fixtures import k8s_api, k8s_api_options  # noqa: F401
from tests.ui.memory import T0

POLL = {"Authorization": "Bearer t", "HX-Request": "true", "HX-Target": "grid"}


@pytest.fixture()
def local(tmp_path, monkeypatch):
    """``(client, services, dag, reads)``: DAG ``etl`` (a -> b) with two runs in a SQLite metadata DB;
    ``reads`` counts the catalog's task instance reads (batched grid reads and per-run reads)."""
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "etl.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "etl"},
        "spec": {"schedule": None, "startDate": "2026-11-01T00:00:00Z",
                 "tasks": [{"name": "a", "command": ["true"]},
                           {"name": "b", "command": ["true"], "dependsOn": ["a"]}]}}))
    services = local_services(folder, f"sqlite:///{tmp_path / 'kubedag.db'}", LocalAuth(token="t"))
    dag = services.catalog.dag("etl").dag
    for i in range(2):
        operations.trigger(services.runs, dag, logical_date=T0 + timedelta(days=i))
    reads = {"grid": 0, "task_instances": 0}
    for name in reads:
        original = getattr(SqlCatalog, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            reads[_name] += 1
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(SqlCatalog, name, counted)
    client = TestClient(create_app(services, extra_routes=[ui_router(services)]))
    return client, services, dag, reads


def version_of(html: str) -> str:
    return re.search(r"&(?:amp;)?v=(\w+)", html).group(1)


def test_the_local_catalog_has_the_cheap_grid_version(local):
    _, services, _, _ = local
    assert isinstance(services.catalog, GridVersion)


def test_an_unchanged_grid_is_not_rebuilt_and_a_change_is_sent(local):
    client, services, dag, reads = local
    first = client.get("/ui/dags/etl/grid", headers=POLL)
    assert first.status_code == 200 and reads["grid"] == 1
    version = version_of(first.text)
    for _ in range(3):
        assert client.get(f"/ui/dags/etl/grid?v={version}", headers=POLL).status_code == 204
    assert reads == {"grid": 1, "task_instances": 0}                  # the polls built nothing
    run_id = services.catalog.runs(RunQuery(dag_id="etl", order_by="-logical_date", limit=1))[0][0].run_id
    operations.mark(dag, services.runs, run_id, ["a"], "success", now=T0 + timedelta(days=3))
    changed = client.get(f"/ui/dags/etl/grid?v={version}", headers=POLL)
    assert changed.status_code == 200 and reads["grid"] == 2
    assert '<tr data-task="a">' in changed.text and version_of(changed.text) != version
    assert client.get(f"/ui/dags/etl/grid?v={version_of(changed.text)}", headers=POLL).status_code == 204


def test_a_new_run_changes_the_version(local):
    client, services, dag, _ = local
    version = version_of(client.get("/ui/dags/etl/grid", headers=POLL).text)
    operations.trigger(services.runs, dag, logical_date=T0 + timedelta(days=5))
    changed = client.get(f"/ui/dags/etl/grid?v={version}", headers=POLL)
    assert changed.status_code == 200 and changed.text.count('class="run run-') == 3


# ------------------------------------------------------------------------------------------------ cluster
def test_on_a_cluster_an_unchanged_grid_is_not_rebuilt_and_a_status_change_is_sent(k8s_api, kube, monkeypatch):
    from fastapi import FastAPI  # noqa: PLC0415 - only this test serves the UI alone

    from kubedag.core import naming as names  # noqa: PLC0415
    from kubedag.k8s.catalog import ClusterCatalog  # noqa: PLC0415
    from tests.ui.memory import Rbac, Services, TokenAuth  # noqa: PLC0415
    k8s_api.create({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG",
                    "metadata": {"name": "etl", "namespace": "default"},
                    "spec": {"schedule": None, "startDate": "2026-11-01T00:00:00Z", "defaults": {"image": "busybox"},
                             "tasks": [{"name": "a", "command": ["true"]}]}})
    objects = []
    for i in range(2):
        run_id = f"manual__{(T0 + timedelta(days=i)).isoformat()}"
        objects.append(k8s_api.create({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAGRun", "metadata": {
            "name": names.run_name("etl", run_id), "namespace": "default", "labels": names.run_labels("etl")},
            "spec": {"dagName": "etl", "runId": run_id, "runType": "manual",
                     "logicalDate": (T0 + timedelta(days=i)).isoformat()}}))
    builds = []
    original = ClusterCatalog.grid
    monkeypatch.setattr(ClusterCatalog, "grid", lambda self, *a: builds.append(a) or original(self, *a))
    catalog = ClusterCatalog(kube)
    assert isinstance(catalog, GridVersion)
    app = FastAPI()
    app.include_router(ui_router(Services(catalog, TokenAuth({"t": "alice"}), Rbac({("alice", "*", "*")}))))
    client = TestClient(app)
    version = version_of(client.get("/ui/dags/etl/grid", headers=POLL).text)
    assert client.get(f"/ui/dags/etl/grid?v={version}", headers=POLL).status_code == 204
    assert len(builds) == 1                                            # the poll built nothing
    k8s_api.patch("kubedag.io/v1alpha1/dagruns", objects[1]["metadata"]["name"],
                  {"status": {"phase": "running", "tasks": {"a": {"s": "running", "t": 1}}}}, "default",
                  subresource="status")
    changed = client.get(f"/ui/dags/etl/grid?v={version}", headers=POLL)
    assert changed.status_code == 200 and len(builds) == 2 and version_of(changed.text) != version

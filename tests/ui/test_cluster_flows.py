"""The UI's flows on the emulated cluster, in headless Chromium: ``kubedag api --cluster`` (the API app with the UI
mounted, under uvicorn) on the Kubernetes API emulator, the real controller in a thread and the fake kubelet
running pods as local processes (tests/api_cluster's fixtures). Who may do what is the cluster's answer:
TokenReview and SubjectAccessReview emulated from each test's tokens and grants
(:class:`tests.k8s.emulator.auth.EmulatedAuth`). Each flow waits for what a user would see (no timed assertion);
screenshots of every page go to the artifacts directory."""

from __future__ import annotations

import pytest

from kubedag.ui import ui_router
from tests.api_cluster.conftest import (  # noqa: F401 - the cluster fixtures, shared with the API's cluster tests
    OTHER, auth, cluster_api, controller, dag, k8s_crd_files, kube)
from tests.api_cluster.test_airflow_client_cluster import validated
from tests.k8s.conftest import _no_leaks  # noqa: F401 - every emulator thread and pod process must end
from tests.k8s.emulator.fixtures import fake_kubelet, k8s_api, k8s_api_options  # noqa: F401
from tests.ui.conftest import artifacts_dir
from tests.ui.test_local_flows import CODES, WAIT, cell, confirm, wait_state

READ = (("list", "dags"), ("get", "dags"), ("list", "dagruns"), ("get", "dagruns"))


@pytest.fixture
def cluster_api_routes():
    """Serve the web UI beside the API, as ``kubedag api --cluster`` does."""
    return lambda services: [ui_router(services)]


def login(page, url: str, token: str) -> None:
    page.set_default_timeout(WAIT)  # a controller, an emulator and pods on a shared machine: patience
    page.goto(f"{url}/ui/")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/ui/")


def reader(auth, name: str, namespace: str | None = None) -> str:
    """A token of ``name`` who may read DAGs and runs (in ``namespace``, or everywhere) but change nothing."""
    for verb, resource in READ:
        auth.grant(f"user:{name}", [verb], [resource], namespace=namespace)
    return auth.add_token(name)


def test_trigger_a_run_watch_it_turn_green_and_open_a_task_log(page, cluster_api, k8s_api):
    shots = artifacts_dir()
    k8s_api.create(dag("greet", [
        {"name": "hello", "command": ["sh", "-c", "echo hello from the cluster"]},
        {"name": "bye", "command": ["sh", "-c", "echo bye"], "dependsOn": ["hello"]},
    ], description="Says hello on the cluster", tags=["demo"]))
    k8s_api.create(dag("etl", [{"name": "a", "command": ["true"]}], namespace=OTHER))
    validated(k8s_api, "greet")
    validated(k8s_api, "etl", OTHER)
    login(page, cluster_api.url, cluster_api.token)
    assert page.locator("tr.dag").evaluate_all("rows => rows.map(r => r.dataset.dag)") == ["greet", "team-b.etl"]
    assert "Says hello on the cluster" in page.inner_text('tr.dag[data-dag="greet"]')
    page.screenshot(path=shots / "cluster-dag-list.png", full_page=True)
    page.goto(f"{cluster_api.url}/ui/dags/greet/grid")
    page.click("button:has-text('Trigger')")
    page.wait_for_selector("#modal textarea[name=conf]")
    page.screenshot(path=shots / "cluster-trigger-dialog.png")
    confirm(page)
    wait_state(page, "hello", CODES["success"])
    wait_state(page, "bye", CODES["success"])
    page.wait_for_selector('table.grid th.run[data-state="success"]')
    page.screenshot(path=shots / "cluster-grid-green.png", full_page=True)
    cell(page, "hello").click()
    page.wait_for_selector("#panel pre.log:has-text('hello from the cluster')", timeout=WAIT)
    page.screenshot(path=shots / "cluster-task-log.png", full_page=True)
    runs = k8s_api.list("kubedag.io/v1alpha1/dagruns", "default")  # the trigger made a DAGRun object
    assert [r["metadata"]["labels"].get("kubedag.io/dag") for r in runs] == ["greet"]


def test_an_identity_without_create_dagruns_is_refused_trigger(page, cluster_api, k8s_api):
    k8s_api.create(dag("greet", [{"name": "hello", "command": ["true"]}]))
    validated(k8s_api, "greet")
    token = reader(cluster_api.auth, "carol")
    login(page, cluster_api.url, token)
    page.goto(f"{cluster_api.url}/ui/dags/greet/grid")                  # carol may read the grid
    page.wait_for_selector("table.grid")
    page.click("button:has-text('Trigger')")
    page.wait_for_selector("#modal h2:has-text('Forbidden')")
    assert "carol may not create dagruns in namespace default" in page.inner_text("#modal")
    page.screenshot(path=artifacts_dir() / "cluster-refused-trigger.png")
    assert not k8s_api.list("kubedag.io/v1alpha1/dagruns", "default")  # nothing was created
    asked = [r["resourceAttributes"] for r in cluster_api.auth.reviews if r["user"] == "carol"]
    assert {"verb": "create", "resource": "dagruns", "namespace": "default"}.items() <= asked[-1].items()


def test_an_identity_without_list_dags_in_a_namespace_does_not_see_its_dags(page, cluster_api, k8s_api):
    k8s_api.create(dag("greet", [{"name": "hello", "command": ["true"]}]))
    k8s_api.create(dag("etl", [{"name": "a", "command": ["true"]}], namespace=OTHER))
    validated(k8s_api, "greet")
    validated(k8s_api, "etl", OTHER)
    token = reader(cluster_api.auth, "dave", namespace="default")     # nothing in team-b
    login(page, cluster_api.url, token)
    assert page.locator("tr.dag").evaluate_all("rows => rows.map(r => r.dataset.dag)") == ["greet"]
    page.screenshot(path=artifacts_dir() / "cluster-dag-list-one-namespace.png", full_page=True)
    page.goto(f"{cluster_api.url}/ui/dags/team-b.etl/grid")
    assert page.locator("h2:has-text('Forbidden'), h1:has-text('Forbidden')").count() == 1
    assert "dave may not list dagruns in namespace team-b" in page.inner_text("main")

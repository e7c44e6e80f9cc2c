"""The UI's flows on the emulated cluster, in headless Chromium: ``kubedag api --cluster`` (the API app with the UI
mounted, under uvicorn) on the Kubernetes API emulator, the real controller in a thread and the fake kubelet
running pods as local processes (tests/api_cluster's fixtures). Who may do what is the cluster's answer:
TokenReview and SubjectAccessReview emulated from each test's tokens and grants
(:class:`tests.k8s.emulator.auth.EmulatedAuth`). The flows: trigger a run and watch it turn green, a refused
trigger, a namespace one may not list; with the admin token, each action through its confirmation dialog: clear a
failed task with its downstream, trigger with conf, mark tasks, a backfill's progress, why a task waits (upstream,
pool), pause and unpause with catchup. Each flow waits for what a user would see (no timed assertion);
screenshots of every page go to the artifacts directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kubedag.ui import ui_router
from kubedag.ui.views import STATE_CODES
from tests.api_cluster.conftest import (  # noqa: F401 - the cluster fixtures, shared with the API's cluster tests
    BACKFILLS, DAGRUNS, DAGS, OTHER, auth, cluster_api, controller, dag, k8s_crd_files, kube)
from tests.api_cluster.test_airflow_client_cluster import validated
from tests.k8s.conftest import _no_leaks  # noqa: F401 - every emulator thread and pod process must end
from tests.k8s.emulator.fixtures import fake_kubelet, k8s_api, k8s_api_options  # noqa: F401
from tests.ui.conftest import artifacts_dir
from tests.ui.test_local_flows import CODES, WAIT, cell, confirm, preview_backfill, wait_state

READ = (("list", "dags"), ("get", "dags"), ("list", "dagruns"), ("get", "dagruns"))
CATCHUP_DAYS = 3


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
    page.keyboard.press("Escape")
    page.goto(f"{cluster_api.url}/ui/")                               # nor may she pause the DAG (patch dags)
    with page.expect_request(lambda r: "/pause" in r.url) as asked:
        page.locator('tr.dag[data-dag="greet"] button.toggle').click()
    assert "kd-background" not in asked.value.headers      # an action, though its button is in the polled rows
    page.wait_for_selector("#modal h2:has-text('Forbidden')")
    assert "carol may not patch dags in namespace default" in page.inner_text("#modal")
    shoot(page, "cluster-refused-pause.png")
    with page.expect_request(lambda r: "/ui/?search=" in r.url, timeout=WAIT) as polled:
        page.keyboard.press("Escape")
    assert polled.value.headers.get("kd-background") == "1"  # the rows' own poll stays a background one
    assert not k8s_api.get(DAGS, "greet", "default")["spec"].get("paused")


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


def shoot(page, name: str, show: str | None = None) -> None:
    """Screenshot the page to the artifacts directory, ``show`` (a selector) scrolled into view and the pointer
    moved off the grid (its tooltip would hide the panel)."""
    page.mouse.move(0, 0)
    if show is not None:
        # the panel re-reads itself (a try ended, the grid polled): scroll whatever element is there now
        page.evaluate("selector => { const e = document.querySelector(selector); if (e) e.scrollIntoView(); }", show)
    page.screenshot(path=artifacts_dir() / name, full_page=True)


def reopen_until(page, task: str, shown: str) -> None:
    """Open ``task``'s newest cell until its panel shows ``shown`` (a selector), for at most about WAIT: the panel
    shows the task instance as it was when opened (here: before the controller may have said why it waits), so a
    user opens it again to see news."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: PLC0415 - optional, as in conftest

    for _ in range(WAIT // 2000):
        cell(page, task).click()
        try:
            page.wait_for_selector(shown, timeout=2000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"the panel of {task} never showed {shown}")


def trigger(page, url: str, dag_id: str) -> None:
    """Open the DAG's grid and its trigger dialog, and confirm it (the conf as prefilled)."""
    page.goto(f"{url}/ui/dags/{dag_id}/grid")
    page.click("button:has-text('Trigger')")
    page.wait_for_selector("#modal textarea[name=conf]")
    confirm(page)


def test_a_failed_tasks_log_then_clear_it_with_downstream_and_watch_it_rerun(page, cluster_api, k8s_api, tmp_path):
    marker = tmp_path / "fixed"
    k8s_api.create(dag("flaky", [
        {"name": "check", "command": ["sh", "-c", f"echo checking for {marker}; test -f {marker}"]},
        {"name": "report", "dependsOn": ["check"], "command": ["sh", "-c", "echo reporting"]},
    ]))
    validated(k8s_api, "flaky")
    login(page, cluster_api.url, cluster_api.token)
    trigger(page, cluster_api.url, "flaky")
    wait_state(page, "check", CODES["failed"])
    wait_state(page, "report", CODES["upstream_failed"])
    page.wait_for_selector('table.grid th.run[data-state="failed"]')
    shoot(page, "cluster-grid-flaky-failed.png")
    cell(page, "check").click()
    page.wait_for_selector("#panel pre.log:has-text('checking for')", timeout=WAIT)
    assert "exit code 1" in page.inner_text("#panel .why")
    assert "1 of 1 (0 retries)" in page.inner_text("#panel dl.facts")   # no retry: Airflow's max_tries is 0
    shoot(page, "cluster-failed-task-log.png", show="#panel pre.log")

    marker.write_text("ok")
    assert page.is_checked("#panel input[name=downstream]")             # clear's default: with downstream
    page.click("#panel button:has-text('Clear…')")
    page.wait_for_selector("#modal table.preview")
    cleared = page.locator("#modal table.preview tbody tr td:first-child").all_inner_texts()
    assert sorted(cleared) == ["check", "report"]
    shoot(page, "cluster-clear-dialog.png")
    confirm(page)
    wait_state(page, "check", CODES["success"])
    wait_state(page, "report", CODES["success"])
    page.wait_for_selector('table.grid th.run[data-state="success"]')
    assert page.locator("table.grid th.run").count() == 1                # the same run, rerun
    shoot(page, "cluster-grid-flaky-rerun.png")
    cell(page, "check").click()                                          # the second try's log
    page.wait_for_selector("#panel table.tries tbody tr >> nth=1")
    page.wait_for_selector("#panel pre.log:has-text('checking for')", timeout=WAIT)
    assert page.locator("#panel table.tries tbody tr").count() == 2
    assert "2 of 2" in page.inner_text("#panel dl.facts")   # the clear renewed its retries: try 1 + 0 retries
    shoot(page, "cluster-rerun-task-log.png", show="#panel pre.log")


def test_trigger_with_conf_read_why_a_task_waits_and_mark_it(page, cluster_api, k8s_api, tmp_path):
    gate = tmp_path / "go"                     # ``long`` runs until the test writes it (no process outlives it)
    k8s_api.create(dag("slow", [
        {"name": "long", "command": ["sh", "-c", f"echo waiting; while [ ! -f {gate} ]; do sleep 0.2; done"]},
        {"name": "after", "dependsOn": ["long"], "command": ["true"]},
        {"name": "greet", "command": ["sh", "-c", "echo hello {{ dag_run.conf.who }}"]},
    ], params={"who": "nobody"}))
    validated(k8s_api, "slow")
    login(page, cluster_api.url, cluster_api.token)
    page.goto(f"{cluster_api.url}/ui/dags/slow/grid")
    page.click("button:has-text('Trigger')")
    area = page.locator("#modal textarea[name=conf]")
    assert '"who": "nobody"' in area.input_value()                       # prefilled from params
    area.fill('{"who": "the cluster ui"}')
    shoot(page, "cluster-trigger-conf-dialog.png")
    confirm(page)
    wait_state(page, "greet", CODES["success"])
    cell(page, "greet").click()
    page.wait_for_selector("#panel pre.log:has-text('hello the cluster ui')", timeout=WAIT)  # conf reached the pod
    shoot(page, "cluster-conf-in-log.png", show="#panel pre.log")
    (run,) = k8s_api.list(DAGRUNS, "default")
    assert run["spec"]["conf"] == {"who": "the cluster ui"}

    wait_state(page, "long", CODES["running"])
    cell(page, "after").click()
    page.wait_for_selector("#panel .why:has-text('trigger rule all_success requires')", timeout=WAIT)
    shoot(page, "cluster-why-waiting.png")
    page.click("#panel button[data-mark=success]")
    page.wait_for_selector("#modal h2:has-text('Mark success')")
    assert page.locator("#modal table.preview tbody tr td:first-child").all_inner_texts() == ["after"]
    shoot(page, "cluster-mark-dialog.png")
    confirm(page)
    wait_state(page, "after", CODES["success"])
    assert page.locator("table.grid th.run").first.get_attribute("data-state") == "running"  # long still runs
    shoot(page, "cluster-marked.png")
    gate.write_text("go")
    wait_state(page, "long", CODES["success"])
    page.wait_for_selector('table.grid th.run[data-state="success"]')


def test_why_a_task_waits_for_its_pool_then_mark_tasks_failed_and_skipped(page, cluster_api, k8s_api, tmp_path):
    gate = tmp_path / "go"
    k8s_api.create({"apiVersion": "kubedag.io/v1alpha1", "kind": "Pool",
                    "metadata": {"name": "empty", "namespace": "default"}, "spec": {"slots": 0}})
    k8s_api.create(dag("held", [
        {"name": "wait", "command": ["sh", "-c", f"while [ ! -f {gate} ]; do sleep 0.2; done"]},
        {"name": "then", "dependsOn": ["wait"], "command": ["true"]},
        {"name": "pooled", "command": ["true"], "pool": "empty"},
    ]))
    validated(k8s_api, "held")
    login(page, cluster_api.url, cluster_api.token)
    trigger(page, cluster_api.url, "held")
    wait_state(page, "wait", CODES["running"])
    reopen_until(page, "pooled", "#panel .why:has-text('needs 1 slots, pool empty has 0')")
    shoot(page, "cluster-why-pool.png")
    page.click("#panel button[data-mark=skipped]")
    page.wait_for_selector("#modal h2:has-text('Mark skipped')")
    confirm(page)
    wait_state(page, "pooled", STATE_CODES["skipped"])
    cell(page, "then").click()
    page.wait_for_selector("#panel .why:has-text('trigger rule all_success requires')", timeout=WAIT)
    page.click("#panel button[data-mark=failed]")
    page.wait_for_selector("#modal h2:has-text('Mark failed')")
    shoot(page, "cluster-mark-failed-dialog.png")
    confirm(page)
    wait_state(page, "then", CODES["failed"])
    shoot(page, "cluster-marked-failed.png")
    gate.write_text("go")
    wait_state(page, "wait", CODES["success"])
    page.wait_for_selector('table.grid th.run[data-state="failed"]')   # a failed leaf fails the run
    shoot(page, "cluster-grid-held-failed.png")


def test_start_a_backfill_and_watch_its_progress(page, cluster_api, k8s_api):
    k8s_api.create(dag("daily", [{"name": "work", "command": ["sh", "-c", "echo working"]}], schedule="@daily",
                       startDate="2030-01-01T00:00:00Z"))
    validated(k8s_api, "daily")
    login(page, cluster_api.url, cluster_api.token)
    preview_backfill(page, cluster_api.url, "daily", "2026-01-01", "2026-01-03")
    page.wait_for_selector("#modal :text('3 runs to create, 0 existing:')")
    shoot(page, "cluster-backfill-dialog.png")
    confirm(page)
    (backfill,) = k8s_api.list(BACKFILLS, "default")                     # a Backfill object the controller runs
    assert backfill["spec"]["dagName"] == "daily"
    page.wait_for_selector("#backfills :text('3 of 3 runs done')", timeout=WAIT)
    page.wait_for_function("document.querySelectorAll('table.grid th.run[data-state=success]').length === 3",
                           timeout=WAIT)
    assert page.locator("table.grid th.run-backfill").count() == 3
    shoot(page, "cluster-backfill-progress.png")


def test_unpause_a_dag_with_catchup_watch_its_runs_turn_green_then_pause_it(page, cluster_api, k8s_api):
    start = (datetime.now(UTC) - timedelta(days=CATCHUP_DAYS)).strftime("%Y-%m-%dT00:00:00Z")
    k8s_api.create(dag("example", [
        {"name": "extract", "command": ["sh", "-c", "echo extracting"]},
        {"name": "load", "dependsOn": ["extract"], "command": ["sh", "-c", "echo loading"]},
    ], schedule="@daily", startDate=start, catchup=True, paused=True, description="The example", tags=["example"]))
    validated(k8s_api, "example")
    login(page, cluster_api.url, cluster_api.token)
    toggle = page.locator('tr.dag[data-dag="example"] button.toggle')
    assert toggle.get_attribute("aria-checked") == "false"
    shoot(page, "cluster-dag-list-paused.png")
    toggle.click()
    page.wait_for_selector("#modal h2:has-text('Unpause example?')")
    assert "catchup is on" in page.inner_text("#modal")
    shoot(page, "cluster-unpause-dialog.png")
    confirm(page)
    page.wait_for_selector('tr.dag[data-dag="example"] button.toggle[aria-checked="true"]')
    assert k8s_api.get(DAGS, "example", "default")["spec"]["paused"] is False
    shoot(page, "cluster-dag-list-active.png")

    page.goto(f"{cluster_api.url}/ui/dags/example/grid")
    page.wait_for_function(  # the catchup: one scheduled run per past day, each turning green
        """(days) => { const runs = [...document.querySelectorAll('table.grid th.run-scheduled')];
           return runs.length >= days && runs.every(th => th.dataset.state === 'success'); }""",
        arg=CATCHUP_DAYS, timeout=3 * WAIT)
    wait_state(page, "load", CODES["success"])
    shoot(page, "cluster-grid-example-green.png")

    page.goto(f"{cluster_api.url}/ui/")
    page.locator('tr.dag[data-dag="example"] button.toggle').click()
    page.wait_for_selector("#modal h2:has-text('Pause example?')")
    confirm(page)
    page.wait_for_selector('tr.dag[data-dag="example"] button.toggle[aria-checked="false"]')
    assert k8s_api.get(DAGS, "example", "default")["spec"]["paused"] is True
    shoot(page, "cluster-dag-list-paused-again.png")

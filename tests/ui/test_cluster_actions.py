"""The UI's actions on the emulated cluster, in headless Chromium: clear a failed task with its downstream, trigger
with conf, mark a task, start a backfill, read why a task waits, pause and unpause a DAG from the list, each through
its confirmation dialog. ``kubedag api --cluster`` with the UI mounted runs on the Kubernetes API emulator beside the
real controller and the fake kubelet (the fixtures of tests/ui/test_cluster_flows.py); the admin token may do
everything. Each flow waits for what a user would see (no timed assertion); screenshots of every page go to the
artifacts directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.api_cluster.conftest import (  # noqa: F401 - the cluster fixtures, shared with the API's cluster tests
    BACKFILLS, DAGRUNS, DAGS, auth, cluster_api, controller, dag, k8s_crd_files, kube)
from tests.api_cluster.test_airflow_client_cluster import validated
from tests.k8s.conftest import _no_leaks  # noqa: F401 - every emulator thread and pod process must end
from tests.k8s.emulator.fixtures import fake_kubelet, k8s_api, k8s_api_options  # noqa: F401
from tests.ui.conftest import artifacts_dir
from tests.ui.test_cluster_flows import cluster_api_routes, login  # noqa: F401 - the UI served beside the API
from tests.ui.test_local_flows import CODES, WAIT, cell, confirm, wait_state

CATCHUP_DAYS = 3


def trigger(page, url: str, dag_id: str, conf: str | None = None) -> None:
    """Open the DAG's grid and its trigger dialog, set the conf (if given) and confirm."""
    page.goto(f"{url}/ui/dags/{dag_id}/grid")
    page.click("button:has-text('Trigger')")
    page.wait_for_selector("#modal textarea[name=conf]")
    if conf is not None:
        page.fill("#modal textarea[name=conf]", conf)
    confirm(page)


def test_a_failed_tasks_log_then_clear_it_with_downstream_and_watch_it_rerun(page, cluster_api, k8s_api, tmp_path):
    shots = artifacts_dir()
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
    page.screenshot(path=shots / "cluster-grid-flaky-failed.png", full_page=True)
    cell(page, "check").click()
    page.wait_for_selector("#panel pre.log:has-text('checking for')", timeout=WAIT)
    assert "exit code 1" in page.inner_text("#panel .why")
    assert "1 of 1 (0 retries)" in page.inner_text("#panel dl.facts")   # no retry: Airflow's max_tries is 0
    page.screenshot(path=shots / "cluster-failed-task-log.png", full_page=True)

    marker.write_text("ok")
    assert page.is_checked("#panel input[name=downstream]")             # clear's default: with downstream
    page.click("#panel button:has-text('Clear…')")
    page.wait_for_selector("#modal table.preview")
    cleared = page.locator("#modal table.preview tbody tr td:first-child").all_inner_texts()
    assert sorted(cleared) == ["check", "report"]
    page.screenshot(path=shots / "cluster-clear-dialog.png")
    confirm(page)
    wait_state(page, "check", CODES["success"])
    wait_state(page, "report", CODES["success"])
    page.wait_for_selector('table.grid th.run[data-state="success"]')
    assert page.locator("table.grid th.run").count() == 1                # the same run, rerun
    page.screenshot(path=shots / "cluster-grid-flaky-rerun.png", full_page=True)
    cell(page, "check").click()                                          # the second try's log
    page.wait_for_selector("#panel table.tries tbody tr >> nth=1")
    page.wait_for_selector("#panel pre.log:has-text('checking for')", timeout=WAIT)
    assert page.locator("#panel table.tries tbody tr").count() == 2
    assert "2 of 2" in page.inner_text("#panel dl.facts")   # the clear renewed its retries: try 1 + 0 retries
    page.screenshot(path=shots / "cluster-rerun-task-log.png", full_page=True)


def test_trigger_with_conf_read_why_a_task_waits_and_mark_it(page, cluster_api, k8s_api, tmp_path):
    shots = artifacts_dir()
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
    page.screenshot(path=shots / "cluster-trigger-conf-dialog.png")
    confirm(page)
    wait_state(page, "greet", CODES["success"])
    cell(page, "greet").click()
    page.wait_for_selector("#panel pre.log:has-text('hello the cluster ui')", timeout=WAIT)  # conf reached the pod
    page.screenshot(path=shots / "cluster-conf-in-log.png", full_page=True)
    (run,) = k8s_api.list(DAGRUNS, "default")
    assert run["spec"]["conf"] == {"who": "the cluster ui"}

    wait_state(page, "long", CODES["running"])
    cell(page, "after").click()
    page.wait_for_selector("#panel .why:has-text('trigger rule all_success requires')", timeout=WAIT)
    page.screenshot(path=shots / "cluster-why-waiting.png", full_page=True)
    page.click("#panel button[data-mark=success]")
    page.wait_for_selector("#modal h2:has-text('Mark success')")
    assert page.locator("#modal table.preview tbody tr td:first-child").all_inner_texts() == ["after"]
    page.screenshot(path=shots / "cluster-mark-dialog.png")
    confirm(page)
    wait_state(page, "after", CODES["success"])
    assert page.locator("table.grid th.run").first.get_attribute("data-state") == "running"  # long still runs
    page.screenshot(path=shots / "cluster-marked.png", full_page=True)
    gate.write_text("go")
    wait_state(page, "long", CODES["success"])
    page.wait_for_selector('table.grid th.run[data-state="success"]')


def test_mark_a_running_task_failed_fails_its_run(page, cluster_api, k8s_api, tmp_path):
    gate = tmp_path / "go"
    k8s_api.create(dag("held", [
        {"name": "wait", "command": ["sh", "-c", f"while [ ! -f {gate} ]; do sleep 0.2; done"]},
        {"name": "then", "dependsOn": ["wait"], "command": ["true"]},
    ]))
    validated(k8s_api, "held")
    login(page, cluster_api.url, cluster_api.token)
    trigger(page, cluster_api.url, "held")
    wait_state(page, "wait", CODES["running"])
    cell(page, "then").click()
    page.wait_for_selector("#panel .why:has-text('trigger rule all_success requires')", timeout=WAIT)
    page.click("#panel button[data-mark=failed]")
    page.wait_for_selector("#modal h2:has-text('Mark failed')")
    confirm(page)
    wait_state(page, "then", CODES["failed"])
    page.screenshot(path=artifacts_dir() / "cluster-marked-failed.png", full_page=True)
    gate.write_text("go")
    wait_state(page, "wait", CODES["success"])
    page.wait_for_selector('table.grid th.run[data-state="failed"]')   # a failed leaf fails the run


def test_start_a_backfill_and_watch_its_progress(page, cluster_api, k8s_api):
    k8s_api.create(dag("daily", [{"name": "work", "command": ["sh", "-c", "echo working"]}], schedule="@daily",
                       startDate="2030-01-01T00:00:00Z"))
    validated(k8s_api, "daily")
    login(page, cluster_api.url, cluster_api.token)
    page.goto(f"{cluster_api.url}/ui/dags/daily/grid")
    page.click("button:has-text('Backfill')")
    page.fill("#modal input[name=from_date]", "2026-01-01")
    page.fill("#modal input[name=to_date]", "2026-01-03")
    page.click("#modal button:has-text('Preview')")
    page.wait_for_selector("#modal :text('3 runs to create, 0 existing:')")
    page.screenshot(path=artifacts_dir() / "cluster-backfill-dialog.png")
    confirm(page)
    (backfill,) = k8s_api.list(BACKFILLS, "default")                     # a Backfill object the controller runs
    assert backfill["spec"]["dagName"] == "daily"
    page.wait_for_selector("#backfills :text('3 of 3 runs done')", timeout=WAIT)
    page.wait_for_function("document.querySelectorAll('table.grid th.run[data-state=success]').length === 3",
                           timeout=WAIT)
    assert page.locator("table.grid th.run-backfill").count() == 3
    page.screenshot(path=artifacts_dir() / "cluster-backfill-progress.png", full_page=True)


def test_unpause_a_dag_with_catchup_watch_its_runs_turn_green_then_pause_it(page, cluster_api, k8s_api):
    shots = artifacts_dir()
    start = (datetime.now(UTC) - timedelta(days=CATCHUP_DAYS)).strftime("%Y-%m-%dT00:00:00Z")
    k8s_api.create(dag("example", [
        {"name": "extract", "command": ["sh", "-c", "echo extracting"]},
        {"name": "load", "dependsOn": ["extract"], "command": ["sh", "-c", "echo loading"]},
    ], schedule="@daily", startDate=start, catchup=True, paused=True, description="The example", tags=["example"]))
    validated(k8s_api, "example")
    login(page, cluster_api.url, cluster_api.token)
    toggle = page.locator('tr.dag[data-dag="example"] button.toggle')
    assert toggle.get_attribute("aria-checked") == "false"
    page.screenshot(path=shots / "cluster-dag-list-paused.png", full_page=True)
    toggle.click()
    page.wait_for_selector("#modal h2:has-text('Unpause example?')")
    assert "catchup is on" in page.inner_text("#modal")
    page.screenshot(path=shots / "cluster-unpause-dialog.png")
    confirm(page)
    page.wait_for_selector('tr.dag[data-dag="example"] button.toggle[aria-checked="true"]')
    assert k8s_api.get(DAGS, "example", "default")["spec"]["paused"] is False
    page.screenshot(path=shots / "cluster-dag-list-active.png", full_page=True)

    page.goto(f"{cluster_api.url}/ui/dags/example/grid")
    page.wait_for_function(  # the catchup: one scheduled run per past day, each turning green
        """(days) => { const runs = [...document.querySelectorAll('table.grid th.run-scheduled')];
           return runs.length >= days && runs.every(th => th.dataset.state === 'success'); }""",
        arg=CATCHUP_DAYS, timeout=3 * WAIT)
    wait_state(page, "load", CODES["success"])
    page.screenshot(path=shots / "cluster-grid-example-green.png", full_page=True)

    page.goto(f"{cluster_api.url}/ui/")
    page.locator('tr.dag[data-dag="example"] button.toggle').click()
    page.wait_for_selector("#modal h2:has-text('Pause example?')")
    confirm(page)
    page.wait_for_selector('tr.dag[data-dag="example"] button.toggle[aria-checked="false"]')
    assert k8s_api.get(DAGS, "example", "default")["spec"]["paused"] is True
    page.screenshot(path=shots / "cluster-dag-list-paused-again.png", full_page=True)

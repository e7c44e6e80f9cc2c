"""The UI's flows in local mode, in headless Chromium: ``kubedag scheduler`` and ``kubedag api --token`` (two
subprocesses, as a user starts them) on a DAG folder and its SQLite metadata DB; the UI is at ``/ui/`` of the
API process. Each flow is what a user does with the mouse or keyboard; each waits for what they
would see (no timed assertion). Screenshots of every page go to the artifacts directory."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.ui.conftest import artifacts_dir, free_port

KUBEDAG = str(Path(sys.executable).with_name("kubedag"))
WAIT = 90_000  # milliseconds any one thing may take to show on a loaded machine (not a timing assertion)
TOKEN = "ui-test-token"
CATCHUP_DAYS = 30


def dag(name: str, tasks: list[dict], **spec: object) -> dict:
    return {"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": name},
            "spec": {"schedule": None, "startDate": "2026-01-01T00:00:00Z", "tasks": tasks, **spec}}


@pytest.fixture()
def local(tmp_path, monkeypatch, browser):
    """``(url, folder, marker)``: the scheduler and ``kubedag api`` on a folder of three DAGs; ``marker``: the
    file whose absence fails ``flaky``'s first task."""
    monkeypatch.setenv("KUBEDAG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBEDAG_DATABASE_URL", raising=False)
    folder = tmp_path / "dags"
    folder.mkdir()
    marker = tmp_path / "fixed"
    month_ago = (datetime.now(UTC) - timedelta(days=CATCHUP_DAYS)).strftime("%Y-%m-%dT00:00:00Z")
    docs = [
        dag("example", [
            {"name": "extract", "command": ["sh", "-c", "echo extracting"]},
            {"name": "load", "dependsOn": ["extract"], "command": ["sh", "-c", "echo loading"]},
        ], schedule="@daily", startDate=month_ago, catchup=True, paused=True, description="The example",
            tags=["example"]),
        dag("daily", [{"name": "work", "command": ["true"]}], schedule="@daily", startDate="2030-01-01T00:00:00Z"),
        dag("flaky", [
            {"name": "check", "command": ["sh", "-c", f"echo checking for {marker}; test -f {marker}"]},
            {"name": "report", "dependsOn": ["check"], "command": ["sh", "-c", "echo reporting"]},
        ], params={"who": "nobody"}),
        dag("slow", [
            {"name": "long", "command": ["sleep", "600"]},
            {"name": "after", "dependsOn": ["long"], "command": ["true"]},
            {"name": "greet", "command": ["sh", "-c", "echo hello {{ dag_run.conf.who }}"]},
        ], params={"who": "nobody"}),
    ]
    (folder / "dags.yaml").write_text(yaml.safe_dump_all(docs))
    with serving(folder) as url:
        yield url, folder, marker


@contextlib.contextmanager
def serving(folder: Path) -> Iterator[str]:
    """``kubedag scheduler`` and ``kubedag api --token`` on ``folder`` (as a user starts them): the API's base URL
    once it serves the UI; both stop on exit."""
    env = os.environ.copy()
    scheduler = subprocess.Popen([KUBEDAG, "scheduler", "--dags-folder", str(folder), "--dag-dir-list-interval",
                                  "0.5", "--grace-period", "1"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, env=env)
    port = free_port()
    api = subprocess.Popen([KUBEDAG, "api", "--dags-folder", str(folder), "--token", TOKEN, "--port", str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{url}/ui/login", api)
        yield url
    finally:
        for process in (api, scheduler):
            process.terminate()
            process.wait(30)


def wait_until_serving(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT / 1000
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kubedag api exited: {process.stderr.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("kubedag api did not serve the UI")


def login(page, url: str) -> None:
    page.set_default_timeout(WAIT)  # real processes on a shared machine: patience, not a timing assertion
    page.goto(f"{url}/ui/")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/ui/")


def open_trigger(page, url: str, dag_id: str) -> None:
    """Log in, open the DAG's grid and its trigger dialog."""
    login(page, url)
    page.goto(f"{url}/ui/dags/{dag_id}/grid")
    page.click("button:has-text('Trigger')")
    page.wait_for_selector("#modal textarea[name=conf]")


def confirm(page) -> None:
    """Press the dialog's confirming button and wait for its "Done"."""
    page.click("#modal button.primary, #modal button.danger")
    page.wait_for_selector("#modal h2:has-text('Done')", timeout=WAIT)
    page.keyboard.press("Escape")


def cell(page, task: str, column: int = -1):
    """The grid cell of ``task`` in run ``column`` (-1: the newest)."""
    return page.locator(f'table.grid tr[data-task="{task}"] td').nth(column)


def wait_state(page, task: str, state_code: str, column: int = -1) -> None:
    page.wait_for_function(
        """([task, code, col]) => { const tds = document.querySelectorAll(`table.grid tr[data-task="${task}"] td`);
           const td = tds[col < 0 ? tds.length + col : col]; return td && td.className.startsWith(code); }""",
        arg=[task, state_code, column], timeout=WAIT)


def preview_backfill(page, url: str, dag_id: str, from_date: str, to_date: str) -> None:
    """Open the DAG's grid and its backfill dialog, fill in the dates and ask for the preview."""
    page.goto(f"{url}/ui/dags/{dag_id}/grid")
    page.click("button:has-text('Backfill')")
    page.fill("#modal input[name=from_date]", from_date)
    page.fill("#modal input[name=to_date]", to_date)
    page.click("#modal button:has-text('Preview')")


CODES = {"success": "c", "failed": "e", "upstream_failed": "h", "running": "b", "none": "m"}


def test_unpause_the_example_and_watch_its_run_turn_green(page, local):
    url, _, _ = local
    shots = artifacts_dir()
    login(page, url)
    row = page.locator('tr.dag[data-dag="example"]')
    assert row.locator("button.toggle").get_attribute("aria-checked") == "false"
    page.screenshot(path=shots / "local-dag-list.png", full_page=True)
    row.locator("button.toggle").click()
    page.wait_for_selector("#modal h2:has-text('Unpause example?')")
    page.screenshot(path=shots / "local-unpause-dialog.png")
    confirm(page)
    page.goto(f"{url}/ui/dags/example/grid?runs=50")
    page.wait_for_selector('table.grid th.run-scheduled[data-state="success"]', timeout=WAIT)
    wait_state(page, "load", CODES["success"])
    page.screenshot(path=shots / "local-grid-example-green.png", full_page=True)
    # the catchup: one scheduled run per day of the last 30, each turning green
    page.wait_for_function(
        """(days) => { const runs = [...document.querySelectorAll('table.grid th.run')];
           return runs.length >= days - 1 && runs.every(th => th.dataset.state === 'success'); }""",
        arg=CATCHUP_DAYS, timeout=3 * WAIT)
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.screenshot(path=shots / "local-grid-example-30-day-catchup-1920.png")
    page.goto(f"{url}/ui/dags/example/graph")
    page.wait_for_selector("#graph .node")
    page.screenshot(path=shots / "local-graph-example-1920.png")
    for chart in ("gantt", "durations"):
        page.goto(f"{url}/ui/dags/example/{chart}")
        page.wait_for_function("Chart.getChart(document.getElementById('chart')) !== undefined")
        page.screenshot(path=shots / f"local-{chart}-example-1920.png")


def test_start_a_backfill_and_watch_its_progress(page, local):
    url, _, _ = local
    login(page, url)
    preview_backfill(page, url, "daily", "2026-01-01", "2026-01-03")
    page.wait_for_selector("#modal :text('3 runs to create, 0 existing:')")
    page.screenshot(path=artifacts_dir() / "local-backfill-dialog.png")
    confirm(page)
    page.wait_for_selector("#backfills :text('3 of 3 runs done')", timeout=WAIT)
    page.wait_for_function("document.querySelectorAll('table.grid th.run[data-state=success]').length === 3",
                           timeout=WAIT)
    assert page.locator("table.grid th.run").count() == 3
    page.screenshot(path=artifacts_dir() / "local-backfill-progress.png", full_page=True)


def test_failed_task_log_then_clear_with_downstream_reruns_it(page, local):
    url, _, marker = local
    shots = artifacts_dir()
    open_trigger(page, url, "flaky")
    confirm(page)
    wait_state(page, "check", CODES["failed"])
    wait_state(page, "report", CODES["upstream_failed"])
    cell(page, "check").click()
    page.wait_for_selector("#panel pre.log:has-text('checking for')", timeout=WAIT)
    assert "Why: exit code 1" in page.inner_text("#panel .why")
    page.screenshot(path=shots / "local-failed-task-log.png", full_page=True)
    marker.write_text("ok")
    page.check("#panel input[name=downstream]")
    page.click("#panel button:has-text('Clear…')")
    page.wait_for_selector("#modal table.preview")
    assert page.locator("#modal table.preview tbody tr").count() == 2        # check and report
    page.screenshot(path=shots / "local-clear-dialog.png")
    confirm(page)
    wait_state(page, "check", CODES["success"])
    wait_state(page, "report", CODES["success"])
    page.screenshot(path=shots / "local-grid-flaky-rerun.png", full_page=True)


def test_trigger_with_conf_mark_a_task_and_read_the_why_of_a_waiting_one(page, local):
    url, _, _ = local
    shots = artifacts_dir()
    open_trigger(page, url, "slow")
    area = page.locator("#modal textarea[name=conf]")
    assert '"who": "nobody"' in area.input_value()                          # prefilled from params
    area.fill("{'who': 'ui'}")                                              # not JSON: refused in the form
    assert page.locator("#modal button[type=submit]").is_disabled()
    assert "not valid JSON" in page.inner_text("#modal [data-json-error]")
    area.fill('{"who": "ui"}')
    page.screenshot(path=shots / "local-trigger-dialog.png")
    confirm(page)
    wait_state(page, "greet", CODES["success"])
    cell(page, "greet").click()
    page.wait_for_selector("#panel pre.log:has-text('hello ui')", timeout=WAIT)  # the conf reached the task
    wait_state(page, "long", CODES["running"])
    cell(page, "after").click()
    page.wait_for_selector("#panel .why:has-text('trigger rule all_success requires')", timeout=WAIT)
    page.screenshot(path=shots / "local-why-waiting.png", full_page=True)
    page.click("#panel button[data-mark=success]")
    page.wait_for_selector("#modal h2:has-text('Mark success')")
    confirm(page)
    wait_state(page, "after", CODES["success"])
    page.screenshot(path=shots / "local-marked.png", full_page=True)

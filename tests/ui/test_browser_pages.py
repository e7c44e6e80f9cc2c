"""The pages in headless Chromium (from the in-memory catalog): they load their vendored scripts, the grid is
driven with the keyboard, the graph is laid out by dagre, at 1280x800 and 1920x1080. Screenshots go to the
artifacts directory."""

from __future__ import annotations

from fastapi import FastAPI

from kubedag.ui import ui_router
from tests.ui.conftest import Server, artifacts_dir
from tests.ui.memory import MemoryCatalog, Rbac, Services, TokenAuth, chain_dag


def world() -> MemoryCatalog:
    catalog = MemoryCatalog()
    etl = chain_dag("etl", tasks=[
        {"name": "extract", "command": ["true"]},
        {"name": "wait_for_file", "command": ["true"], "sensor": {"pokeInterval": "5s"}, "dependsOn": ["extract"]},
        {"name": "choose", "command": ["true"], "branch": True, "dependsOn": ["wait_for_file"]},
        {"name": "load", "command": ["true"], "dependsOn": ["choose"]},
        {"name": "skip_load", "kind": "empty", "dependsOn": ["choose"]},
        {"name": "report", "command": ["true"], "dependsOn": ["load", "skip_load"],
         "triggerRule": "none_failed_min_one_success"},
    ], description="Extract, wait, load and report", tags=["sales"])
    catalog.add_dag(etl)
    for i in range(12):
        failed = i == 7
        catalog.add_run(etl, i, {"extract": "success", "wait_for_file": "success", "choose": "success",
                                 "load": "failed" if failed else "success", "skip_load": "skipped",
                                 "report": "upstream_failed" if failed else "success"},
                        state="failed" if failed else "success", run_type="manual" if i == 9 else "scheduled")
    catalog.add_run(etl, 12, {"extract": "success", "wait_for_file": "running"}, state="running",
                    reasons={"choose": "waiting: 0 of 1 upstream done, rule all_success"})
    catalog.add_dag(chain_dag("quiet", 4, schedule="30 6 * * 1-5", tags=["ops"]), paused=True)
    catalog.add_dag(None, dag_id="broken", error="spec.tasks[0].command: required")
    return catalog


def serve():
    readers = {("bob", verb, resource) for verb, resource in (("list", "dags"), ("get", "dags"),
                                                                ("list", "dagruns"), ("get", "dagruns"))}
    services = Services(world(), TokenAuth({"t": "alice", "bob-token": "bob"}), Rbac({("alice", "*", "*"), *readers}))
    app = FastAPI()
    app.include_router(ui_router(services))
    return Server(app)


def login(page, url: str, token: str = "t") -> None:
    page.goto(f"{url}/ui/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/ui/")


def test_pages_in_chromium_with_keyboard_and_screenshots(page):
    shots = artifacts_dir()
    with serve() as server:
        login(page, server.url)
        assert page.locator("tr.dag").count() == 3
        page.screenshot(path=shots / "memory-dag-list-1280.png", full_page=True)
        page.fill("input[name=search]", "ops")
        page.wait_for_function("document.querySelectorAll('tr.dag').length === 1")
        assert page.locator("tr.dag").first.get_attribute("data-dag") == "quiet"

        page.goto(f"{server.url}/ui/dags/etl/grid")
        page.focus("table.grid")
        page.keyboard.press("ArrowDown")          # selects the newest run's first task
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")          # choose, in the running run
        page.keyboard.press("Enter")
        page.wait_for_selector("#panel .why")
        assert "waiting: 0 of 1 upstream done, rule all_success" in page.inner_text("#panel .why")
        page.screenshot(path=shots / "memory-grid-panel-1280.png", full_page=True)
        page.hover('table.grid tr[data-task="load"] td >> nth=7')           # the failed load: times on hover
        page.wait_for_selector("#tip:has-text('duration 0:00:42')")
        tip = page.inner_text("#tip")
        assert "failed\ntry 1 of 2\nstart 2026-11-08 00:00:00\nend 2026-11-08 00:00:42" in tip
        page.screenshot(path=shots / "memory-grid-hover-1280.png")
        page.set_viewport_size({"width": 1920, "height": 1080})
        page.screenshot(path=shots / "memory-grid-panel-1920.png")

        page.goto(f"{server.url}/ui/dags/etl/graph")
        page.wait_for_selector("#graph .node")
        assert page.locator("#graph .node").count() == 6
        assert page.locator("#graph text.rule").all_text_contents() == ["rule: none_failed_min_one_success"]
        assert page.locator("#graph .node.k-sensor").count() == 1
        page.focus('#graph .node[data-task="wait_for_file"]')
        page.keyboard.press("Enter")
        page.wait_for_selector("#panel .ti")
        page.screenshot(path=shots / "memory-graph-1920.png")


def test_log_in_and_be_refused_an_action_the_identity_rbac_does_not_allow(page):
    with serve() as server:
        login(page, server.url, "bob-token")
        page.goto(f"{server.url}/ui/dags/etl/grid")              # bob may read
        page.click("button:has-text('Trigger')")
        page.wait_for_selector("#modal h2:has-text('Forbidden')")
        assert "bob may not create dagruns" in page.inner_text("#modal")
        page.screenshot(path=artifacts_dir() / "memory-refused-trigger.png")
        page.keyboard.press("Escape")
        page.click('table.grid tr[data-task="load"] td >> nth=7')  # the failed load
        page.wait_for_selector("#panel #log:has-text('bob may not get pods/log')")  # the rest of the panel shows
        page.click("#panel button:has-text('Clear…')")
        page.wait_for_selector("#modal h2:has-text('Forbidden')")
        assert "bob may not patch dagruns" in page.inner_text("#modal")


def test_gantt_and_duration_charts_are_drawn(page):
    import json as _json
    with serve() as server:
        login(page, server.url)
        page.goto(f"{server.url}/ui/dags/etl/gantt")
        data = _json.loads(page.inner_text("#chart-data") or "null")
        assert {b["task"] for b in data["bars"]} == {"extract", "wait_for_file"}  # the newest run's tries
        page.wait_for_function("Chart.getChart(document.getElementById('chart')) !== undefined")
        page.screenshot(path=artifacts_dir() / "memory-gantt-1280.png", full_page=True)
        page.goto(f"{server.url}/ui/dags/etl/durations")
        page.wait_for_function("Chart.getChart(document.getElementById('chart')) !== undefined")
        bars = page.evaluate("Chart.getChart(document.getElementById('chart')).data.datasets[0].data.length")
        assert bars == 13
        page.screenshot(path=artifacts_dir() / "memory-durations-1280.png", full_page=True)

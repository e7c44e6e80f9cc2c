"""The live log in headless Chromium, in local mode (``kubedag scheduler`` and ``kubedag api`` as a user starts
them): a running task's lines appear in the task instance panel while it runs (streamed), then its final log.
The task prints three lines, then waits for a file the test creates once it has seen them, so "before the task
ends" is a fact of the test, not a race."""

from __future__ import annotations

import pytest
import yaml

from tests.ui.conftest import artifacts_dir
from tests.ui.test_local_flows import WAIT, cell, confirm, dag, open_trigger, serving


@pytest.fixture()
def talker(tmp_path, monkeypatch, browser):
    """``(url, release)``: the scheduler and the API on a folder with DAG ``talker``, whose task ``talk`` prints
    ``step 1..3``, waits for ``release`` to exist, prints ``done`` and succeeds."""
    monkeypatch.setenv("KUBEDAG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBEDAG_DATABASE_URL", raising=False)
    folder = tmp_path / "dags"
    folder.mkdir()
    release = tmp_path / "release"
    script = (f"for i in 1 2 3; do echo step $i; sleep 0.3; done; "
              f"while [ ! -f {release} ]; do sleep 0.2; done; echo done")
    (folder / "talker.yaml").write_text(yaml.safe_dump(dag("talker", [
        {"name": "talk", "command": ["sh", "-c", script]}])))
    try:
        with serving(folder) as url:
            yield url, release
    finally:
        release.write_text("go")


def test_a_running_tasks_log_streams_into_the_panel_then_shows_the_final_log(page, talker):
    url, release = talker
    shots = artifacts_dir()
    streams = []
    page.on("request", lambda r: streams.append(r.url) if "/log/stream" in r.url else None)
    open_trigger(page, url, "talker")
    confirm(page)
    page.wait_for_function("""() => { const td = document.querySelector('table.grid tr[data-task="talk"] td');
                                      return td && td.className.startsWith('b'); }""", timeout=WAIT)  # running
    cell(page, "talk").click()
    page.wait_for_selector("#panel pre.log:has-text('step 3')", timeout=WAIT)
    log = page.inner_text("#panel pre.log")
    lines = log.splitlines()
    assert lines[-3:] == ["step 1", "step 2", "step 3"]                 # shown while the task still runs
    page.wait_for_selector("#log [data-live]:text-is('live, streaming')", timeout=WAIT)  # the panel may re-read itself
    assert streams, "the panel did not open the log stream"
    page.mouse.move(5, 5)                                                 # no tooltip over the picture
    page.locator("#log").scroll_into_view_if_needed()
    page.screenshot(path=shots / "local-log-streaming.png")
    release.write_text("go")
    # the stream's end re-reads the panel (its state, then the finished try's log, no longer live)
    page.wait_for_selector("#panel .why .state-label[data-state=success]", timeout=WAIT)
    page.wait_for_selector("#panel pre.log:has-text('done')", timeout=WAIT)
    assert page.locator("#log [data-live]").count() == 0
    assert page.inner_text("#panel pre.log").splitlines()[-4:] == ["step 1", "step 2", "step 3", "done"]
    page.locator("#log").scroll_into_view_if_needed()
    page.screenshot(path=shots / "local-log-streamed-final.png")


def test_when_the_stream_cannot_be_opened_the_log_is_polled_instead(page):
    from fastapi import FastAPI  # noqa: PLC0415 - the in-memory world of the stream's unit tests

    from kubedag.ui import ui_router  # noqa: PLC0415
    from tests.ui.conftest import Server  # noqa: PLC0415
    from tests.ui.memory import Rbac, Services, TokenAuth, chain_dag  # noqa: PLC0415
    from tests.ui.test_log_stream import Growing  # noqa: PLC0415
    catalog = Growing(lines=10**9)
    dag_ = chain_dag("etl", 2)
    catalog.add_dag(dag_)
    catalog.add_run(dag_, 0, {"t000": "running"}, run_type="manual", state="running")
    app = FastAPI()
    app.include_router(ui_router(Services(catalog, TokenAuth({"t": "alice"}), Rbac({("alice", "*", "*")}))))
    with Server(app) as server:
        page.set_extra_http_headers({"Authorization": "Bearer t"})
        page.route("**/log/stream*", lambda route: route.abort())       # a proxy that refuses event streams
        page.goto(f"{server.url}/ui/dags/etl/grid")
        page.locator('table.grid tr[data-task="t000"] td').last.click()
        page.wait_for_selector("#log [data-live]:has-text('live, refreshing')")
        reads = catalog.reads
        page.wait_for_function("n => document.querySelector('#panel pre.log').textContent.includes(`line ${n}\n`)",
                               arg=reads + 1)                            # new lines keep coming, by polling
        page.locator("#log").scroll_into_view_if_needed()
        page.screenshot(path=artifacts_dir() / "memory-log-polled-fallback.png")

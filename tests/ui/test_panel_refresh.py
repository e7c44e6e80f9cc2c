"""The open task instance panel stays current, in headless Chromium, in local mode (``kubedag scheduler`` and
``kubedag api`` as a user starts them): when the try whose log it streams ends, its state, tries table (end,
exit code) and why change without reopening it; after an action done from it (mark), it shows the new state.
The task ``talk`` waits for a file the test creates, so "while it runs" is a fact of the test, not a race."""

from __future__ import annotations

import pytest
import yaml

from tests.ui.conftest import artifacts_dir
from tests.ui.test_local_flows import CODES, WAIT, cell, confirm, dag, open_trigger, serving, wait_state

EXIT = 3
SKIPPED = "i"  # the grid cell class of skipped (views.STATE_CODES)


@pytest.fixture()
def waiter(tmp_path, monkeypatch, browser):
    """``(url, release)``: the scheduler and the API on a folder with DAG ``waiter``: ``talk`` prints a line,
    waits for ``release`` to exist, then exits with :data:`EXIT` (no retry: it fails); ``after`` depends on it."""
    monkeypatch.setenv("KUBEDAG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBEDAG_DATABASE_URL", raising=False)
    folder = tmp_path / "dags"
    folder.mkdir()
    release = tmp_path / "release"
    script = f"echo waiting; while [ ! -f {release} ]; do sleep 0.2; done; echo leaving; exit {EXIT}"
    (folder / "waiter.yaml").write_text(yaml.safe_dump(dag("waiter", [
        {"name": "talk", "command": ["sh", "-c", script]},
        {"name": "after", "dependsOn": ["talk"], "command": ["true"]}])))
    try:
        with serving(folder) as url:
            yield url, release
    finally:
        release.write_text("go")


def tries_row(page) -> list[str]:
    """The cells of the panel's last try row: try, state, start, end, duration, exit, host, reason."""
    return page.locator("#panel table.tries tbody tr").last.locator("td").all_inner_texts()


def start(page, url: str) -> None:
    """Trigger ``waiter`` and wait until ``talk`` runs."""
    open_trigger(page, url, "waiter")
    confirm(page)
    wait_state(page, "talk", CODES["running"])


def test_the_open_panel_shows_the_final_state_and_exit_code_when_the_try_ends(page, waiter):
    url, release = waiter
    start(page, url)
    cell(page, "talk").click()
    page.wait_for_selector("#log [data-live]:has-text('live, streaming')", timeout=WAIT)
    assert page.inner_text("#panel .why .state-label") == "running"
    assert tries_row(page)[1] == "running"
    assert tries_row(page)[5] == ""                                         # no exit code yet
    release.write_text("go")
    page.wait_for_selector("#panel .why .state-label[data-state=failed]", timeout=WAIT)  # not reopened
    row = tries_row(page)
    assert row[1] == "failed"
    assert row[5] == str(EXIT)
    assert row[3].strip()                                                   # an end time
    assert f"exit code {EXIT}" in page.inner_text("#panel .why")
    assert page.inner_text("#panel pre.log").splitlines()[-2:] == ["waiting", "leaving"]
    wait_state(page, "talk", CODES["failed"])                              # the grid too
    page.mouse.move(5, 5)
    page.locator("#panel table.tries").scroll_into_view_if_needed()
    page.screenshot(path=artifacts_dir() / "local-panel-after-try-ended.png")


def test_marking_from_the_open_panel_shows_the_new_state_in_it(page, waiter):
    url, _ = waiter
    start(page, url)
    cell(page, "after").click()
    page.wait_for_selector("#panel .why .state-label:has-text('no status')", timeout=WAIT)
    page.click("#panel button[data-mark=skipped]")
    page.wait_for_selector("#modal h2:has-text('Mark skipped')")
    confirm(page)
    page.wait_for_selector("#panel .why .state-label[data-state=skipped]", timeout=WAIT)  # not reopened
    assert page.inner_text("#panel h2").endswith("after")
    wait_state(page, "after", SKIPPED)                           # the grid too
    page.mouse.move(5, 5)
    page.screenshot(path=artifacts_dir() / "local-panel-after-mark.png", full_page=True)

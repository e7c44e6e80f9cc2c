"""The task instance panel follows what the user chose, in headless Chromium, in local mode (``kubedag scheduler``
and ``kubedag api`` as a user starts them): an older try picked in its tries table shows that try's log *and* the
command, args and env that try was launched with (recorded per try, migration 0007); after "Delete run" the panel
says the run is gone and the grid drops its column."""

from __future__ import annotations

import pytest
import yaml

from tests.ui.conftest import artifacts_dir
from tests.ui.test_local_flows import CODES, WAIT, cell, confirm, dag, open_trigger, serving, wait_state

ROLL = "echo try {{ ti.try_number }}; test {{ ti.try_number }} -ge 2"  # fails its first try, passes its second


@pytest.fixture()
def served(tmp_path, monkeypatch, browser):
    """The scheduler and the API on a folder with DAG ``retrier``: ``roll`` fails its first try and is retried
    after 1 s; ``after`` depends on it."""
    monkeypatch.setenv("KUBEDAG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBEDAG_DATABASE_URL", raising=False)
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "retrier.yaml").write_text(yaml.safe_dump(dag("retrier", [
        {"name": "roll", "command": ["sh", "-c", ROLL], "retries": 1, "retryDelay": "1s"},
        {"name": "after", "dependsOn": ["roll"], "command": ["true"]}])))
    with serving(folder) as url:
        yield url


def rendered(page) -> str:
    return page.inner_text("#panel dl.facts.wide")


def test_an_older_try_chosen_in_the_panel_shows_its_own_rendered_fields_and_log(page, served):
    open_trigger(page, served, "retrier")
    confirm(page)
    wait_state(page, "roll", CODES["success"])
    cell(page, "roll").click()
    page.wait_for_selector("#panel pre.log:has-text('try 2')", timeout=WAIT)
    assert page.locator("#panel table.tries tbody tr").count() == 2
    assert "echo try 2; test 2 -ge 2" in rendered(page)                    # the current try, as launched
    assert "KUBEDAG_TRY_NUMBER=2" in rendered(page)
    page.locator("#panel table.tries tbody tr").first.locator("a").click()  # try 1
    page.wait_for_selector("#panel pre.log:has-text('try 1')", timeout=WAIT)
    assert "echo try 1; test 1 -ge 2" in rendered(page)                    # try 1's, not the current try's
    assert "(try 1)" in page.inner_text("#panel")
    assert "KUBEDAG_TRY_NUMBER=1" in rendered(page)
    assert "try 2" not in rendered(page)
    assert page.locator("#panel table.tries tbody tr[aria-current=true] a").inner_text() == "1"
    page.mouse.move(5, 5)
    page.locator("#panel dl.facts.wide").scroll_into_view_if_needed()
    page.screenshot(path=artifacts_dir() / "local-panel-older-try-rendered.png")
    page.locator("#panel table.tries tbody tr").last.locator("a").click()  # and back to try 2
    page.wait_for_selector("#panel h3:has-text('(try 2)')", timeout=WAIT)
    assert "echo try 2; test 2 -ge 2" in rendered(page)


def test_after_delete_run_the_panel_says_the_run_is_gone_and_the_grid_drops_it(page, served):
    open_trigger(page, served, "retrier")
    confirm(page)
    wait_state(page, "after", CODES["success"])
    run_id = page.locator("table.grid th.run").last.get_attribute("data-run")
    cell(page, "after").click()
    page.wait_for_selector("#panel h2:has-text('after')", timeout=WAIT)
    page.click("#panel button:has-text('Delete run…')")
    page.wait_for_selector("#modal h2:has-text('Delete run')")
    confirm(page)
    page.wait_for_selector("#panel [role=status]:has-text('deleted')", timeout=WAIT)
    assert run_id in page.inner_text("#panel")
    assert page.locator("#panel button:has-text('Delete run…')").count() == 0   # no action on a run that is gone
    page.wait_for_function("document.querySelectorAll('table.grid th.run').length === 0", timeout=WAIT)
    page.mouse.move(5, 5)
    page.screenshot(path=artifacts_dir() / "local-panel-after-delete-run.png", full_page=True)

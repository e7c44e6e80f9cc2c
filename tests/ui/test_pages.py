"""The UI's pages rendered from an in-memory catalog, through the HTTP routes a browser calls."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kubedag.ui import ui_router, views
from tests.ui.memory import MemoryCatalog, Rbac, Services, TokenAuth, chain_dag

ALICE = {"Authorization": "Bearer alice-token"}


@pytest.fixture()
def world():
    catalog = MemoryCatalog()
    dag = chain_dag("etl", 3, description="Load the shop's sales", tags=["sales", "daily"])
    catalog.add_dag(dag)
    catalog.add_run(dag, 0, {"t000": "success", "t001": "success", "t002": "success"})
    catalog.add_run(dag, 1, {"t000": "success", "t001": "failed", "t002": "upstream_failed"}, state="failed")
    catalog.add_run(dag, 2, {"t000": "running"}, run_type="manual", state="running",
                    reasons={"t001": "waiting: 0 of 1 upstream done, rule all_success"})
    catalog.add_dag(chain_dag("quiet", 2, schedule="30 6 * * 1-5", tags=["ops"]), paused=True)
    catalog.add_dag(None, dag_id="broken", error="spec.tasks[0].name: field required")
    rbac = Rbac({("alice", "*", "*"), ("bob", "list", "dags")})
    services = Services(catalog, TokenAuth({"alice-token": "alice", "bob-token": "bob"}), rbac)
    app = FastAPI()
    app.include_router(ui_router(services))
    return TestClient(app), catalog, rbac


def test_dag_list_shows_each_dag_with_schedule_state_dots_and_the_invalid_badge(world):
    client, _, _ = world
    page = client.get("/ui/", headers=ALICE)
    assert page.status_code == 200
    html = page.text
    assert "Load the shop&#39;s sales" in html and ">sales<" in html
    assert "<code>0 0 * * *</code>" in html and "At 00:00" in html          # @daily, cron and words
    assert "At 06:30, Monday through Friday" in html
    assert html.count('class="dot"') == 3                                   # etl's three runs
    assert 'title="scheduled__2026-11-02T00:00:00+00:00: failed"' in html
    assert 'class="badge invalid"' in html and "spec.tasks[0].name: field required" in html
    assert 'aria-label="Unpause quiet"' in html and 'aria-label="Pause etl"' in html


@pytest.mark.parametrize(("query", "shown", "hidden"), [
    ("search=shop", ["etl"], ["quiet", "broken"]),
    ("paused=paused", ["quiet"], ["etl"]),
    ("failed=true", ["etl"], ["quiet"]),
    ("tag=ops", ["quiet"], ["etl"]),
])
def test_dag_list_search_and_filters(world, query, shown, hidden):
    client, _, _ = world
    rows = client.get(f"/ui/?{query}", headers={**ALICE, "HX-Request": "true", "HX-Target": "dag-rows"}).text
    assert rows.startswith("<tbody")                                      # the fragment only
    for dag_id in shown:
        assert f'data-dag="{dag_id}"' in rows
    for dag_id in hidden:
        assert f'data-dag="{dag_id}"' not in rows


def test_grid_has_runs_as_columns_tasks_as_rows_and_outlines_scheduled_runs(world):
    client, _, _ = world
    html = client.get("/ui/dags/etl/grid", headers=ALICE).text
    heads = re.findall(r'<th scope="col" class="run run-(\w+)" data-run="([^"]+)"', html)
    assert [h[0] for h in heads] == ["scheduled", "scheduled", "manual"]  # oldest first
    rows = re.findall(r'<tr data-task="(t\d+)">.*?</tr>', html, re.S)
    assert rows == ["t000", "t001", "t002"]
    codes = views.STATE_CODES
    t001 = re.search(r'<tr data-task="t001">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r"<td class=(\w)>", t001) == [codes["success"], codes["failed"], codes["none"]]
    assert "no status" in html and "upstream_failed" in html               # the legend


def test_grid_poll_answers_204_while_nothing_changed_and_the_new_grid_after(world):
    client, catalog, _ = world
    headers = {**ALICE, "HX-Request": "true", "HX-Target": "grid"}
    first = client.get("/ui/dags/etl/grid", headers=headers)
    version = re.search(r"&(?:amp;)?v=(\w+)", first.text).group(1)
    assert client.get(f"/ui/dags/etl/grid?v={version}", headers=headers).status_code == 204
    dag = catalog.infos["etl"].dag
    catalog.add_run(dag, 3, {"t000": "queued"}, run_type="manual", state="queued")
    again = client.get(f"/ui/dags/etl/grid?v={version}", headers=headers)
    assert again.status_code == 200 and again.text.count('class="run run-') == 4


def test_task_instance_panel_shows_the_why_first_then_tries_and_log(world):
    client, _, _ = world
    run = "manual__2026-11-03T00:00:00+00:00"
    html = client.get(f"/ui/dags/etl/runs/{run}/tasks/t001", headers={**ALICE, "HX-Request": "true"}).text
    assert html.index("Why:") < html.index("<h3>Tries</h3>")
    assert "waiting: 0 of 1 upstream done, rule all_success" in html
    failed = client.get("/ui/dags/etl/runs/scheduled__2026-11-02T00:00:00+00:00/tasks/t001", headers=ALICE).text
    assert "<td>1</td>" in failed and "host-1" in failed                   # exit code, host
    log = client.get("/ui/dags/etl/runs/scheduled__2026-11-02T00:00:00+00:00/tasks/t001/log?try_number=1",
                     headers=ALICE).text
    assert "log of t001 try 1" in log


def test_graph_page_carries_kinds_states_and_non_default_trigger_rules(world):
    client, catalog, _ = world
    dag = chain_dag("shapes", tasks=[
        {"name": "wait", "command": ["true"], "sensor": {"pokeInterval": "5s"}},
        {"name": "pick", "dependsOn": ["wait"], "command": ["true"], "branch": True},
        {"name": "done", "dependsOn": ["pick"], "kind": "empty", "triggerRule": "none_failed"},
    ])
    catalog.add_dag(dag)
    catalog.add_run(dag, 0, {"wait": "success", "pick": "running"}, state="running")
    html = client.get("/ui/dags/shapes/graph", headers=ALICE).text
    data = re.search(r'<script type="application/json" id="graph-data">(.*?)</script>', html, re.S).group(1)
    import json
    graph = json.loads(data)
    assert {n["id"]: (n["kind"], n["state"]) for n in graph["nodes"]} == {
        "wait": ("sensor", "success"), "pick": ("branch", "running"), "done": ("empty", "none")}
    assert {(e["source"], e["target"], e["rule"]) for e in graph["edges"]} == {
        ("wait", "pick", None), ("pick", "done", "none_failed")}
    assert "/static/vendor/dagre.min.js" in html
    assert client.get("/ui/static/vendor/dagre.min.js").headers["content-type"].startswith("text/javascript")


def test_no_credentials_gives_the_login_page_and_a_missing_verb_a_403(world):
    client, _, rbac = world
    assert client.get("/ui/").status_code == 401 and "Log in" in client.get("/ui/").text
    assert client.get("/ui/", headers={"Authorization": "Bearer bob-token"}).status_code == 200
    refused = client.get("/ui/dags/etl/grid", headers={"Authorization": "Bearer bob-token"})
    assert refused.status_code == 403 and "bob may not list dagruns" in refused.text
    assert ("bob", "list", "dagruns", None) in rbac.asked


def test_login_sets_an_httponly_cookie_that_later_requests_use(world):
    client, _, _ = world
    bad = client.post("/ui/login", data={"token": "nope"}, follow_redirects=False)
    assert bad.status_code == 401 and "invalid bearer token" in bad.text
    good = client.post("/ui/login", data={"token": "alice-token"}, follow_redirects=False)
    assert good.status_code == 303 and "httponly" in good.headers["set-cookie"].lower()
    assert "samesite=strict" in good.headers["set-cookie"].lower()
    assert client.get("/ui/dags/etl/grid").status_code == 200


def test_static_files_refuse_paths_outside_the_static_dir(world):
    client, _, _ = world
    assert client.get("/ui/static/../pages.py").status_code == 404
    assert client.get("/ui/static/vendor/..%2F..%2Fpages.py").status_code == 404
    assert client.get("/ui/static/ui.css").status_code == 200


def test_schedule_words():
    assert views.schedule_words(None) == "Never, external triggers only"
    assert views.schedule_words("@hourly") == "Every hour"
    assert views.schedule_words("1 day, 0:00:00") == "Every 1 day, 0:00:00"


def test_backfill_progress_of_the_dag(world):
    from datetime import UTC, datetime

    from kubedag.app.catalog import BackfillInfo
    client, catalog, _ = world
    catalog.backfills = lambda dag_id=None: [BackfillInfo(  # type: ignore[method-assign]
        "etl-bf-1", "etl", datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 30, tzinfo=UTC),
        runs_total=30, runs_done=12)]
    html = client.get("/ui/dags/etl/backfills", headers={**ALICE, "HX-Request": "true"}).text
    assert '<progress max="30" value="12">' in html and "12 of 30 runs done" in html
    assert 'hx-get="/ui/dags/etl/backfills"' in client.get("/ui/dags/etl/grid", headers=ALICE).text


def test_the_services_scope_and_locate_decide_what_an_identity_sees_and_where_it_is_authorised(world):
    from kubedag.app.operations import NotFound
    client, catalog, rbac = world

    class OnlyQuiet:
        """bob's view: only the DAG 'quiet' (as a cluster's scope hides the namespaces bob may not list)."""

        def __getattr__(self, name):
            return getattr(catalog, name)

        def dags(self):
            return [d for d in catalog.dags() if d.dag_id == "quiet"]

        def dag(self, dag_id):
            if dag_id != "quiet":
                raise NotFound(f"no DAG {dag_id!r}")
            return catalog.dag(dag_id)

    app = FastAPI()
    scoped = Services(catalog, TokenAuth({"bob-token": "bob"}), rbac,
                      scope=lambda who: OnlyQuiet() if who.username == "bob" else catalog,
                      locate=lambda dag_id: ("team-a", dag_id))
    rbac.grants.add(("bob", "list", "dagruns"))
    app.include_router(ui_router(scoped))
    bob = TestClient(app, headers={"Authorization": "Bearer bob-token"})
    listing = bob.get("/ui/").text
    assert 'data-dag="quiet"' in listing and 'data-dag="etl"' not in listing
    assert bob.get("/ui/dags/etl/grid").status_code == 404
    assert bob.get("/ui/dags/quiet/grid").status_code == 200
    assert ("bob", "list", "dagruns", "team-a") in rbac.asked


def test_the_why_of_a_task_without_a_reason_comes_from_the_engine(world):
    client, _, _ = world
    run = "manual__2026-11-03T00:00:00+00:00"                # t000 running, t001 has a reason, t002 none
    html = client.get(f"/ui/dags/etl/runs/{run}/tasks/t002", headers={**ALICE, "HX-Request": "true"}).text
    assert ("trigger rule all_success requires all upstream tasks to have succeeded, but found 1 not yet "
            "succeeded (upstream: 0 done of 1)") in html


def test_a_bad_query_field_is_named_in_a_400_page(world):
    client, _, _ = world
    bad = client.get("/ui/dags/etl/grid?runs=many", headers=ALICE)
    assert bad.status_code == 400 and "runs: " in bad.text


def test_schedule_tab_lists_what_unpausing_creates_and_the_next_runs(world):
    client, catalog, _ = world
    html = client.get("/ui/dags/quiet/schedule", headers=ALICE).text     # paused, no run, catchup on, weekdays
    # clock: 2026-12-11; start 2026-11-01: every weekday 06:30 since, whose interval has ended, is due
    assert "Unpausing the DAG creates these at once" in html
    due = re.search(r'aria-label="Due runs">(.*?)</table>', html, re.S).group(1)
    assert due.count("<tr>") - 1 == 28       # logical dates: the weekdays Nov 2 - Dec 9 (the last interval ends Dec 10)
    assert "scheduled__2026-11-03T06:30:00+00:00" in due
    upcoming = re.search(r'aria-label="Upcoming runs">(.*?)</table>', html, re.S).group(1)
    assert upcoming.count("<tr>") - 1 == 10


def test_pools_and_health_pages(world):
    client, _, _ = world
    pools = client.get("/ui/pools", headers=ALICE).text
    assert '<tr data-pool="default_pool"><td>default_pool</td><td>128</td>' in pools
    health = client.get("/ui/health", headers=ALICE).text
    assert "Metadata DB" in health and "healthy" in health


def test_gantt_and_durations_data_in_seconds():
    from datetime import UTC, datetime, timedelta

    from kubedag.app.catalog import RunInfo, TryInfo
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    run = RunInfo("d", "r", "manual", "running", t0, start_date=t0, queued_at=t0 - timedelta(seconds=3))
    tries = {"a": [TryInfo("d", "r", "a", 1, "failed", t0 + timedelta(seconds=1), t0 + timedelta(seconds=4),
                           queued_at=t0 + timedelta(seconds=0.5)),
                   TryInfo("d", "r", "a", 2, "running", t0 + timedelta(seconds=10))], "b": []}
    data = views.gantt_data(run, ["a", "b"], tries, now=t0 + timedelta(seconds=12))
    assert data["tasks"] == ["a", "b"]
    assert [(b["try"], b["queued"], b["start"], b["end"], b["color"]) for b in data["bars"]] == [
        (1, 0.5, 1.0, 4.0, "red"), (2, None, 10.0, 12.0, "lime")]
    bars = views.durations_data([run], now=t0 + timedelta(seconds=12))["runs"]
    assert [(b["duration"], b["queued"], b["color"]) for b in bars] == [(12.0, 3.0, "lime")]


def test_backfill_pause_and_cancel_dialogs_call_the_backfills_port(world):
    from datetime import UTC, datetime

    from kubedag.app.catalog import BackfillInfo
    client, catalog, _ = world
    info = BackfillInfo("7", "etl", datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 30, tzinfo=UTC),
                        runs_total=30, runs_done=12)
    catalog.backfill = lambda backfill_id: info  # type: ignore[method-assign]
    catalog.backfills = lambda dag_id=None: [info]  # type: ignore[method-assign]
    calls = []

    class Backfills:
        def set_paused(self, backfill_id, paused):
            calls.append(("paused", backfill_id, paused))

        def cancel(self, backfill_id):
            calls.append(("cancel", backfill_id))

    services = Services(catalog, TokenAuth({"alice-token": "alice"}), Rbac({("alice", "*", "*")}),
                        backfills=Backfills())
    app = FastAPI()
    app.include_router(ui_router(services))
    alice = TestClient(app, headers={**ALICE, "HX-Request": "true"})
    section = alice.get("/ui/dags/etl/backfills").text
    assert "/ui/dags/etl/backfills/7/pause" in section and "/ui/dags/etl/backfills/7/cancel" in section
    dialog = alice.get("/ui/dags/etl/backfills/7/cancel").text
    assert "Cancel backfill 7?" in dialog and "12 of 30 runs done" in dialog and "queued runs are removed" in dialog
    assert "Backfill 7:" in alice.post("/ui/dags/etl/backfills/7/cancel").text
    alice.post("/ui/dags/etl/backfills/7/pause")
    assert calls == [("cancel", "7"), ("paused", "7", True)]
    assert alice.post("/ui/dags/etl/backfills/7/explode").status_code == 400


def test_hovering_a_grid_cell_shows_try_times_duration_and_reason(world):
    client, _, _ = world

    def hover(run: str, task: str, headers=ALICE):
        return client.get(f"/ui/dags/etl/runs/{run}/tasks/{task}/hover", headers=headers)

    assert hover("scheduled__2026-11-02T00:00:00+00:00", "t001").json()["lines"] == [
        "try 1 of 2", "start 2026-11-02 00:00:00", "end 2026-11-02 00:00:42", "duration 0:00:42"]
    assert hover("manual__2026-11-03T00:00:00+00:00", "t001").json()["lines"] == [
        "not tried yet", "reason: waiting: 0 of 1 upstream done, rule all_success"]
    assert hover("manual__2026-11-03T00:00:00+00:00", "t000").json()["lines"] == [   # running: up to now
        "try 1 of 2", "start 2026-11-03 00:00:00", "duration 38 days, 0:00:00 so far"]
    assert hover("manual__2026-11-03T00:00:00+00:00", "nope").status_code == 404
    refused = hover("manual__2026-11-03T00:00:00+00:00", "t000", {"Authorization": "Bearer bob-token"})
    assert refused.status_code == 403 and "bob may not get dagruns" in refused.text

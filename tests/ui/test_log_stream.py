"""The task instance panel's live log stream (server-sent events, :mod:`kubedag.ui.stream`) over an in-memory
catalog whose running try writes a line at every read, then ends with its archived log."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kubedag.app.operations import OperationError
from kubedag.ui import stream, ui_router
from tests.ui.memory import MemoryCatalog, Rbac, Services, TokenAuth, chain_dag

ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}
RUN = "manual__2026-11-01T00:00:00+00:00"
URL = f"/ui/dags/etl/runs/{RUN}/tasks/t000/log"


@dataclass
class Growing(MemoryCatalog):
    """A catalog whose try 1 of ``t000`` is running: each log read adds ``line <n>`` (and half of the next line,
    without its newline: what a reader sees mid-write); after ``lines`` reads the try succeeds and its log is the
    archived one. ``unreadable``: the reads (by number) that fail with "log unavailable"."""

    lines: int = 3
    reads: int = 0
    unreadable: tuple[int, ...] = ()

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        self.reads += 1
        if self.reads in self.unreadable:
            raise OperationError("log unavailable: the pod is being scheduled")
        key = (dag_id, run_id, task_id)
        if self.reads >= self.lines:
            self.try_rows[key] = [replace(t, state="success") for t in self.try_rows[key]]
        if self.try_rows[key][-1].state != "running":
            return "".join(f"line {i}\n" for i in range(1, self.lines + 1)) + "archived, exit 0"
        return "".join(f"line {i}\n" for i in range(1, self.reads + 1)) + f"line {self.reads + 1} half"


@pytest.fixture()
def world(monkeypatch):
    monkeypatch.setattr(stream, "TICK_SECONDS", 0.01)
    catalog = Growing()
    dag = chain_dag("etl", 2)
    catalog.add_dag(dag)
    catalog.add_run(dag, 0, {"t000": "running"}, run_type="manual", state="running")
    rbac = Rbac({("alice", "*", "*"), ("bob", "get", "dags"), ("bob", "get", "dagruns")})
    app = FastAPI()
    app.include_router(ui_router(Services(catalog, TokenAuth({"alice-token": "alice", "bob-token": "bob"}), rbac)))
    return TestClient(app), catalog, rbac


def events(client: TestClient, headers: dict[str, str]) -> list[tuple[str, dict]]:
    """The stream's events, in order, as ``(name, data)``, read until the server closes it."""
    out, name = [], None
    with client.stream("GET", f"{URL}/stream?try_number=1", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                out.append((name, json.loads(line[len("data: "):])))
    return out


def test_the_stream_sends_each_complete_line_as_it_appears_then_the_archived_log_and_the_end(world):
    client, catalog, _ = world
    catalog.lines = 4
    got = events(client, ALICE)
    assert got[0] == ("reset", {"text": "line 1\n"})                     # the half line is held back
    assert got[1:3] == [("append", {"text": "line 2\n"}), ("append", {"text": "line 3\n"})]
    assert got[-2] == ("append", {"text": "archived, exit 0"})          # the final log's rest, last line whole
    assert got[-1] == ("end", {"state": "success"})
    assert "".join(d["text"] for _, d in got[:-1]) == "line 1\nline 2\nline 3\nline 4\narchived, exit 0"
    assert not any("half" in json.dumps(data) for _, data in got)


def test_a_log_unreadable_for_a_while_is_reported_once_and_the_stream_goes_on(world):
    client, catalog, _ = world
    catalog.unreadable = (1, 2)
    got = events(client, ALICE)
    assert got[0] == ("problem", {"message": "log unavailable: the pod is being scheduled"})
    assert [name for name, _ in got].count("problem") == 1
    assert got[-1] == ("end", {"state": "success"})
    assert "archived, exit 0" in "".join(d.get("text", "") for _, d in got)


def test_a_finished_try_streams_its_archived_log_at_once_and_ends(world):
    client, catalog, _ = world
    key = ("etl", RUN, "t000")
    catalog.try_rows[key] = [replace(t, state="failed") for t in catalog.try_rows[key]]
    assert events(client, ALICE) == [("reset", {"text": "line 1\nline 2\nline 3\narchived, exit 0"}),
                                     ("end", {"state": "failed"})]


def test_the_stream_is_refused_to_whoever_may_not_read_pod_logs(world):
    client, catalog, rbac = world
    response = client.get(f"{URL}/stream?try_number=1", headers=BOB)
    assert response.status_code == 403 and "may not get pods/log" in response.text
    assert catalog.reads == 0 and ("bob", "get", "pods/log", None) in rbac.asked


def test_a_missing_try_ends_the_stream_with_the_reason(world):
    client, _, _ = world
    with client.stream("GET", f"{URL}/stream?try_number=7", headers=ALICE) as response:
        body = "".join(response.iter_text())
    assert "no try 7 of task 't000'" in body and "event: end" in body


def test_the_stream_stops_after_its_maximum_duration_with_a_timeout_event(world, monkeypatch):
    client, catalog, _ = world
    catalog.lines = 10_000
    monkeypatch.setattr(stream, "MAX_SECONDS", 0.0)
    got = events(client, ALICE)
    assert got == [("reset", {"text": "line 1\n"}), ("timeout", {"seconds": 0.0})]


def test_the_log_view_of_a_running_try_offers_the_stream_and_polls_only_as_the_fallback(world):
    client, _, _ = world
    html = client.get(f"{URL}?try_number=1", headers={**ALICE, "HX-Request": "true"}).text
    assert 'data-stream="/ui/dags/etl/runs/' in html and '/tasks/t000/log/stream?try_number=1"' in html
    assert "hx-trigger" not in html
    polled = client.get(f"{URL}?try_number=1&poll=1", headers={**ALICE, "HX-Request": "true"}).text
    assert 'hx-trigger="every 2s"' in polled and "data-stream" not in polled


def test_stopping_the_api_server_ends_an_open_stream(world):
    import threading  # noqa: PLC0415 - only this test serves for real

    import httpx  # noqa: PLC0415

    from kubedag.api.app import serve  # noqa: PLC0415
    from tests.ui.conftest import free_port  # noqa: PLC0415
    client, catalog, _ = world
    catalog.lines = 10**9                                                # the try never ends by itself
    port = free_port()
    run, stop = serve(client.app, "127.0.0.1", port)
    server = threading.Thread(target=run, daemon=True)
    server.start()
    first = threading.Event()

    def read() -> None:
        for _ in range(200):  # the server may not listen yet
            try:
                with httpx.stream("GET", f"http://127.0.0.1:{port}{URL}/stream?try_number=1", headers=ALICE,
                                  timeout=60) as response:
                    for line in response.iter_lines():
                        if line.startswith("event: "):
                            first.set()
                return
            except httpx.ConnectError:
                threading.Event().wait(0.05)
            except httpx.HTTPError:
                return
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert first.wait(60), "the stream sent nothing"
    stop()
    server.join(60)
    assert not server.is_alive(), "kubedag api did not stop while a log stream was open"

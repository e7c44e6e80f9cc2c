"""The live log stream on the emulated cluster: the real controller runs a task whose pod (the fake kubelet's
local process) prints a secret variable and three lines, then waits for a file; the stream, served by uvicorn
over :class:`kubedag.k8s.catalog.ClusterCatalog`, sends the pod log's lines, masked, before the task ends, then
the final log and the end."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI

from kubedag.app import operations as ops
from kubedag.k8s.catalog import ClusterCatalog
from kubedag.k8s.kubeapi import ClusterRuns
from kubedag.ui import ui_router
from tests.api_cluster.conftest import controller, dag, k8s_crd_files, kube  # noqa: F401 - cluster fixtures
from tests.api_cluster.test_catalog_cluster import ready
from tests.controller.harness import wait_until
from tests.k8s.conftest import _no_leaks  # noqa: F401 - every emulator thread and pod process must end
from tests.k8s.emulator.fixtures import fake_kubelet, k8s_api, k8s_api_options  # noqa: F401
from tests.ui.conftest import Server
from tests.ui.memory import Rbac, Services, TokenAuth

SECRET = "sup3r-s3cret-value"


def test_a_running_pods_log_streams_masked_then_ends_with_the_final_log(k8s_api, kube, controller, tmp_path):
    release = tmp_path / "release"
    k8s_api.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "default"},
                    "stringData": {"api_token": SECRET}})
    script = ('echo "token is {{ var.value.api_token }}"; for i in 1 2 3; do echo step $i; done; '
              f"while [ ! -f {release} ]; do sleep 0.2; done; echo done")
    k8s_api.create(dag("talker", [{"name": "talk", "command": ["sh", "-c", script]}],
                       variablesFrom=[{"secretRef": {"name": "creds"}}]))
    ready(k8s_api, "talker")
    catalog = ClusterCatalog(kube)
    run = ops.trigger(ClusterRuns(kube), "talker", logical_date=datetime(2026, 11, 1, tzinfo=UTC))
    wait_until(lambda: [t.state for t in catalog.tries("talker", run.run_id, "talk")] == ["running"], timeout=60,
               what="the task running")
    app = FastAPI()
    app.include_router(ui_router(Services(catalog, TokenAuth({"t": "alice"}), Rbac({("alice", "*", "*")}))))
    got: list[tuple[str, dict]] = []
    try:
        with Server(app) as server, httpx.stream(
                "GET", f"{server.url}/ui/dags/talker/runs/{run.run_id}/tasks/talk/log/stream?try_number=1",
                headers={"Authorization": "Bearer t"}, timeout=120) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            name = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    name = line[len("event: "):]
                elif line.startswith("data: "):
                    got.append((name, json.loads(line[len("data: "):])))
                    text = shown(got)
                    if "step 3\n" in text and not release.exists():
                        assert "done" not in text.splitlines()           # seen while the pod still runs
                        release.write_text("go")
    finally:
        release.write_text("go")
    text = shown(got)
    assert "token is ***" in text and SECRET not in json.dumps(got)
    assert text.splitlines()[-4:] == ["step 1", "step 2", "step 3", "done"]
    assert got[-1] == ("end", {"state": "success"})


def shown(events: list[tuple[str, dict]]) -> str:
    """The log as the page shows it after ``events`` (a reset replaces it, an append adds to it)."""
    text = ""
    for name, data in events:
        text = data["text"] if name == "reset" else text + data["text"] if name == "append" else text
    return text

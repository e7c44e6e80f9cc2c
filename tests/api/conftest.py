"""A real ``kubedag standalone`` (scheduler + REST API under uvicorn) on a temporary DAG folder and KUBEDAG_HOME,
for the end-to-end tests driving it with the official Airflow client, curl and schemathesis."""

from __future__ import annotations

import os
import socket
import subprocess
import textwrap
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubedag.api.auth import hash_password
from tests.local.test_scheduler import KUBEDAG, wait_for

TOKEN = "e2e-token"

DAGS = {
    "greet.yaml": """\
        apiVersion: kubedag.io/v1alpha1
        kind: DAG
        metadata: {name: greet}
        spec:
          tags: [demo]
          tasks:
            - name: hello
              command: [sh, -c, "echo hello {{ dag_run.conf.who }}; echo token is $API_TOKEN"]
              env: {API_TOKEN: "{{ var.value.api_token }}"}
            - name: bye
              dependsOn: [hello]
              command: [sh, -c, "echo bye"]
          variablesFrom:
            - secretRef: {name: greet-secrets}
        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: greet-secrets}
        stringData: {api_token: sup3r-s3cret-value}
        """,
    "flaky.yaml": """\
        apiVersion: kubedag.io/v1alpha1
        kind: DAG
        metadata: {name: flaky}
        spec:
          tasks:
            - name: first
              command: [sh, -c, "test -f {marker}"]
            - name: after
              dependsOn: [first]
              command: [sh, -c, "echo after"]
        """,
    "daily.yaml": """\
        apiVersion: kubedag.io/v1alpha1
        kind: DAG
        metadata: {name: daily}
        spec:
          schedule: "@daily"
          startDate: "2026-01-01T00:00:00Z"
          catchup: false
          paused: true
          tasks:
            - name: work
              command: [sh, -c, "echo {{ ds }}"]
        """,
    "broken.yaml": """\
        apiVersion: kubedag.io/v1alpha1
        kind: DAG
        metadata: {name: broken}
        spec:
          tasks: []
        """,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Standalone:
    url: str
    token: str
    folder: Path
    marker: Path
    process: subprocess.Popen


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """``kubedag standalone`` with its REST API on a free port, bearer token :data:`TOKEN` and a basic-auth user
    ``seed``/``seed-pw``."""
    root = tmp_path_factory.mktemp("standalone")
    folder, marker = root / "dags", root / "marker"
    folder.mkdir()
    for name, text in DAGS.items():
        (folder / name).write_text(textwrap.dedent(text).replace("{marker}", str(marker)))
    users = root / "users"
    users.write_text(f"seed:{hash_password('seed-pw')}\n")
    env = {**os.environ, "KUBEDAG_HOME": str(root / "home")}
    env.pop("KUBEDAG_DATABASE_URL", None)
    port = free_port()
    log = open(root / "standalone.log", "w")  # noqa: SIM115 - closed after the process
    process = subprocess.Popen([KUBEDAG, "standalone", "--dags-folder", str(folder), "--api-port", str(port),
                                "--api-token", TOKEN, "--api-users", str(users), "--grace-period", "1"],
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(url) or process.poll() is not None, "the API to be ready")
        assert process.poll() is None, (root / "standalone.log").read_text()
        yield Standalone(url, TOKEN, folder, marker, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()

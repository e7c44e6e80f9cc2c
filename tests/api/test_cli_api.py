"""``kubedag api`` as a user starts it: never unauthenticated beyond loopback, a generated token printed at
start-up and required afterwards, clear errors for bad options."""

from __future__ import annotations

import os
import re
import subprocess
import urllib.error
import urllib.request

import pytest

from tests.api.conftest import DAGS, free_port
from tests.local.test_scheduler import KUBEDAG, wait_for


@pytest.fixture
def env(tmp_path):
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "greet.yaml").write_text(DAGS["greet.yaml"].replace("\n        ", "\n").lstrip())
    environ = {**os.environ, "KUBEDAG_HOME": str(tmp_path / "home")}
    environ.pop("KUBEDAG_DATABASE_URL", None)
    return folder, environ


def test_refuses_to_serve_beyond_loopback_without_authentication(env, tmp_path):
    folder, environ = env
    done = subprocess.run([KUBEDAG, "api", "--dags-folder", str(folder), "--host", "0.0.0.0"], env=environ,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--host 0.0.0.0: refusing to serve beyond loopback without authentication" in done.stderr
    bad_users = tmp_path / "users"
    bad_users.write_text("ops:not-a-hash\n")
    done = subprocess.run([KUBEDAG, "api", "--dags-folder", str(folder), "--users", str(bad_users)], env=environ,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr.strip().splitlines()[-1]) == (
        2, f"error: --users: {bad_users}:1: expected 'username:<bcrypt hash>'")
    done = subprocess.run([KUBEDAG, "api"], env=environ, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--dags-folder is required in local mode" in done.stderr


def status(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_generated_token_is_printed_and_required(env, tmp_path):
    folder, environ = env
    port = free_port()
    log = tmp_path / "api.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([KUBEDAG, "api", "--dags-folder", str(folder), "--port", str(port),
                                 "--generate-token"], env=environ, stderr=out, stdout=out)
    try:
        line = wait_for(lambda: re.search(r"API token \(send 'Authorization: Bearer <token>'\): (\S+)",
                                          log.read_text()), "the token line")
        token = line.group(1)
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _up(f"{base}/healthz"), "the server")
        assert status(f"{base}/api/v2/dags") == 401
        assert status(f"{base}/api/v2/dags", "wrong") == 401
        assert status(f"{base}/api/v2/dags", token) == 200
        assert status(f"{base}/api/v2/monitor/health") == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _up(url: str) -> bool:
    try:
        return status(url) == 200
    except OSError:
        return False

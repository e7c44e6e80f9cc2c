"""The seeds' Airflow 2 calls, as written, against a real ``kubedag standalone``: ``curl -u ID:PW -X POST
…/api/v1/dags/{dag_id}/dagRuns -d '{"conf":{}}'`` (basic auth, no Content-Type header) and ``curl …/health``;
plus the 401 a wrong password gets. Uses the curl program when installed, else urllib with the same request."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

from tests.api.conftest import wait_for


CLIENTS = ["curl", "urllib"] if shutil.which("curl") else ["urllib"]
client = CLIENTS[0]


def curl(*args: str) -> tuple[int, dict]:
    """``curl ARGS`` (``-s -w '\\n%{http_code}'`` added): the status and the JSON body (via urllib when
    :data:`client` is ``urllib``)."""
    if client == "curl":
        out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True, text=True,
                             check=True).stdout
        body, _, code = out.rpartition("\n")
        return int(code), json.loads(body)
    return _urllib(*args)


def _urllib(*args: str) -> tuple[int, dict]:
    """The same request as curl would make: ``-u`` basic auth, ``-X`` method, ``-d`` form-encoded body."""
    opts, rest, items = {}, [], iter(args)
    for arg in items:
        if arg in ("-u", "-X", "-d"):
            opts[arg] = next(items)
        else:
            rest.append(arg)
    (url,) = rest
    headers = {}
    if "-u" in opts:
        headers["Authorization"] = "Basic " + base64.b64encode(opts["-u"].encode()).decode()
    data = opts["-d"].encode() if "-d" in opts else None
    if data is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, headers=headers, method=opts.get("-X", "GET"))
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.fixture(params=CLIENTS)
def using(request, monkeypatch):
    monkeypatch.setattr(__import__(__name__, fromlist=["client"]), "client", request.param)
    return request.param


def test_seed_trigger_with_basic_auth_runs_the_dag(standalone, using):
    code, run = curl("-u", "seed:seed-pw", "-X", "POST", f"{standalone.url}/api/v1/dags/greet/dagRuns",
                     "-d", '{"conf":{"who":"seeds"}}')
    assert code == 200, run
    assert (run["dag_id"], run["state"], run["conf"], run["external_trigger"]) == (
        "greet", "queued", {"who": "seeds"}, True)

    def state() -> str | None:
        _, listed = curl("-u", "seed:seed-pw", f"{standalone.url}/api/v1/dags/greet/dagRuns")
        found = [r["state"] for r in listed["dag_runs"] if r["dag_run_id"] == run["dag_run_id"]]
        return found[0] if found and found[0] in ("success", "failed") else None

    assert wait_for(state, "the seed's run") == "success"
    code, empty = curl("-u", "seed:seed-pw", "-X", "POST", f"{standalone.url}/api/v1/dags/flaky/dagRuns",
                       "-d", '{"conf":{}}')
    assert (code, empty["conf"]) == (200, {})


def test_seed_health_and_a_wrong_password(standalone, using):
    code, health = curl(f"{standalone.url}/health")
    assert code == 200
    assert health["metadatabase"] == {"status": "healthy"} and health["scheduler"]["status"] == "healthy"
    code, denied = curl("-u", "seed:wrong", "-X", "POST", f"{standalone.url}/api/v1/dags/greet/dagRuns",
                        "-d", '{"conf":{}}')
    assert (code, denied) == (401, {"detail": "invalid username or password"})
    code, missing = curl("-u", "seed:seed-pw", "-X", "POST", f"{standalone.url}/api/v1/dags/nope/dagRuns",
                         "-d", '{"conf":{}}')
    assert code == 404 and "nope" in missing["detail"]

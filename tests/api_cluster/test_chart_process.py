"""``kubedag api`` as the Helm chart runs it: the API Deployment rendered by Helm's engine (tests/helm/chart.py),
its container's command and args run as a process with its database env resolved from the rendered Secret, on
the emulator (TokenReview/SubjectAccessReview answered by :class:`tests.k8s.emulator.auth.EmulatedAuth`), beside
a ``kubedag controller --leader-elect`` process whose Lease the chart names: the DAG list with a Kubernetes token,
and the health document's scheduler from that Lease (healthy naming the holder, then unhealthy once stale)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api_cluster.conftest import OTHER, dag, grant_admin
from tests.controller.harness import wait_until

chart = pytest.importorskip("tests.helm.chart", reason="helm-python-sdk is not installed")

FULLNAME = "kubedag-controller"
"""The release's full name: the controller's Lease name (``kubedag.k8s.leases.DEFAULT_LEASE_NAME``, what
:class:`tests.ha.replicas.ControllerProcess` elects on) and the chart's ``--leader-lease``."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_container(db_url: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The chart's API container for a release in ``default``: its command + args, and its env with every
    ``secretKeyRef`` resolved (the database URL from ``database.existingSecret``, the user's Secret, which holds
    ``db_url`` here: the chart refuses a non-PostgreSQL ``database.url``)."""
    secrets = {("kubedag-db", "url"): db_url}
    rendered = chart.render({"fullnameOverride": FULLNAME, "database": {"existingSecret": "kubedag-db"},
                             "api": {"enabled": True, "port": port, "extraNamespaces": [OTHER]}},
                            namespace="default")
    deployment = rendered.one("Deployment", f"{FULLNAME}-api")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {}
    for entry in container["env"]:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = secrets[(ref["name"], ref["key"])]
    return container["command"] + container["args"], env


def get(url: str, token: str, parse: Any = json.loads) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, parse(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, parse(exc.read() or b"null")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def charted_api(k8s_api: Any, auth: Any, kube: Any, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """``kubedag api`` run with exactly the chart's args: ``(url, admin token, db url)``."""
    db_url = f"sqlite:///{tmp_path / 'kubedag.db'}"
    port = free_port()
    argv, env = api_container(db_url, port)
    assert argv[:3] == ["kubedag", "api", "--cluster"]
    assert f"--leader-lease=default/{FULLNAME}" in argv and f"--extra-namespace={OTHER}" in argv
    log = open(tmp_path / "api.log", "wb")  # noqa: SIM115 - closed below
    # The in-cluster configuration is the emulator's kubeconfig here; the rest of the env is the chart's.
    env = {**os.environ, **env, "KUBECONFIG": str(k8s_api.kubeconfig(tmp_path / "kubeconfig")),
           "KUBEDAG_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "kubedag.cli.main", *argv[1:]], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    token = auth.add_token("admin")
    grant_admin(auth, "user:admin")
    try:
        wait_until(lambda: process.poll() is not None or answers(url), timeout=60, what="the API to listen")
        assert process.poll() is None, (tmp_path / "api.log").read_text()
        yield url, token, db_url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def scheduler_health(url: str, token: str) -> dict[str, Any]:
    """The scheduler of Airflow's health document (its exact fields), and ``page``: the UI's health page, where
    the reason (``detail``: the holder, or why unhealthy) is shown."""
    status, body = get(f"{url}/api/v2/monitor/health", token)
    assert status == 200, body
    status, page = get(f"{url}/ui/health", token, parse=bytes.decode)
    assert status == 200, page
    return {**body["scheduler"], "page": page}


def test_the_charts_api_process_lists_dags_and_reports_the_controllers_lease(k8s_api, charted_api, tmp_path):
    from tests.ha.replicas import ControllerProcess  # the ha tests' controller process, with leader election

    url, token, db_url = charted_api
    k8s_api.create(dag("etl", [{"name": "extract", "command": ["true"]}]))
    k8s_api.create(dag("report", [{"name": "send", "command": ["true"]}], namespace=OTHER))

    status, body = get(f"{url}/api/v2/dags", token)
    assert status == 200, body
    assert [d["dag_id"] for d in body["dags"]] == ["etl", f"{OTHER}.report"]
    assert get(f"{url}/api/v2/dags", "not-a-token")[0] == 401

    assert scheduler_health(url, token)["status"] == "unhealthy"  # no controller has run yet
    controller = ControllerProcess(k8s_api.kubeconfig(tmp_path / "kubeconfig-controller"), db_url, "pod-a",
                                   tmp_path, ("3s", "2s", "500ms"))
    try:
        healthy = wait_until(lambda: (h := scheduler_health(url, token))["status"] == "healthy" and h,
                             timeout=60, what="the controller healthy in the health document")
        assert "leader: pod-a_" in healthy["page"]
        assert healthy["latest_scheduler_heartbeat"]
        controller.kill()  # SIGKILL: the Lease stays held, its renewals stop
        stale = wait_until(lambda: (h := scheduler_health(url, token))["status"] == "unhealthy" and h,
                           timeout=60, what="the stale Lease reported")
    finally:
        controller.stop()
    assert "leader pod-a_" in stale["page"] and "is stale: Lease default/kubedag-controller last renewed" in stale["page"]
    assert stale["latest_scheduler_heartbeat"]  # the last renewal, still shown

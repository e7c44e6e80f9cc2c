"""Benchmark of the REST API on a cluster (run: ``.venv/bin/python benchmarks/api_cluster.py [--runs 10000]``).

The API server runs as it does in a cluster, in its own process (uvicorn, the cluster's ports of
``kubedag.k8s.api_ports``, its TokenReview and SubjectAccessReview answered by the emulator), against the
emulated API server of ``tests/k8s/emulator`` in this process. No controller runs: the figures are the API's
own. Prints:

* trigger -> DAGRun created: ``POST /api/v2/dags/{dag_id}/dagRuns`` (it returns once the DAGRun object exists
  on the API server), p50 / p95 / max over ``--triggers`` requests;
* list-runs of a DAG with ``--runs`` DAGRuns (each with a finished status): ``GET /api/v2/dags/{dag_id}/dagRuns``
  (a page of 100, newest first), p50 / p95 / max over ``--lists`` requests;
* the API server process's RSS after the listings (``VmRSS``) and its peak (``VmHWM``).

Figures depend on the machine; nothing here asserts a target.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NS = "default"
DAG = "bench"


def serve(kubeconfig: str, port: int) -> None:
    """The API server process: ``kubedag api --cluster`` as composed for the tests (tests/api_cluster)."""
    from kubedag.api import create_app
    from kubedag.api.app import serve as uvicorn_serve
    from kubedag.k8s.kubeapi import connect
    from kubedag.cli.api_cluster import cluster_services

    services = cluster_services(connect(kubeconfig, namespace=NS))
    run, _ = uvicorn_serve(create_app(services), "127.0.0.1", port)
    run()


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return (f"p50 {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
            f"max {ordered[-1] * 1000:.1f} ms (n={len(ordered)})")


def request(url: str, token: str, method: str = "GET", body: Any = None) -> tuple[float, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as response:
        payload = json.loads(response.read())
    return time.perf_counter() - start, payload


def memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000, help="DAGRuns of the listed DAG")
    parser.add_argument("--triggers", type=int, default=100, help="triggers timed")
    parser.add_argument("--lists", type=int, default=20, help="listings timed")
    parser.add_argument("--serve", nargs=2, metavar=("KUBECONFIG", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return

    from kubedag.core import naming as names
    from tests.k8s.emulator.auth import EmulatedAuth
    from tests.k8s.emulator.server import EmulatedApiServer

    crds = sorted((ROOT / "crds").glob("*.yaml"))
    with tempfile.TemporaryDirectory() as tmp, EmulatedApiServer(crd_files=crds, journal_limit=1000) as api:
        auth = EmulatedAuth.install(api)
        token = auth.add_token("bench")
        auth.grant("user:bench", ["*"], ["*"], api_groups=["kubedag.io", ""])
        for name in (DAG, "triggered"):
            api.create({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": name, "namespace": NS},
                        "spec": {"schedule": "@daily", "startDate": "2000-01-01",
                                 "tasks": [{"name": "a", "image": "busybox", "command": ["true"]}]}})
        start = time.perf_counter()
        first = datetime(2000, 1, 1, tzinfo=timezone.utc)
        for i in range(args.runs):
            logical = first + timedelta(days=i)
            run_id = f"scheduled__{logical.isoformat()}"
            obj = api.create({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAGRun", "metadata": {
                "name": names.run_name(DAG, run_id), "namespace": NS, "labels": names.run_labels(DAG)},
                "spec": {"dagName": DAG, "runId": run_id, "runType": "scheduled", "logicalDate": logical.isoformat()}})
            api.patch("kubedag.io/v1alpha1/dagruns", obj["metadata"]["name"], {"status": {
                "phase": "success", "startedAt": (logical + timedelta(days=1)).isoformat().replace("+00:00", "Z"),
                "finishedAt": (logical + timedelta(days=1, minutes=5)).isoformat().replace("+00:00", "Z"),
                "tasks": {"a": {"s": "success", "t": 1}}}}, NS, subresource="status")
        print(f"created {args.runs} DAGRuns of DAG {DAG} in {time.perf_counter() - start:.1f} s", flush=True)

        kubeconfig = str(api.kubeconfig(Path(tmp) / "kubeconfig"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([sys.executable, __file__, "--serve", kubeconfig, str(port)],
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"{url}/healthz", timeout=2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            triggers = []
            base = datetime(2030, 1, 1, tzinfo=timezone.utc)
            for i in range(args.triggers):
                when = (base + timedelta(minutes=i)).isoformat()
                took, run = request(f"{url}/api/v2/dags/triggered/dagRuns", token, "POST",
                                    {"logical_date": when, "conf": {"i": i}})
                assert api.get("kubedag.io/v1alpha1/dagruns", names.run_name("triggered", run["dag_run_id"]), NS)
                triggers.append(took)
            print(f"trigger -> DAGRun created ({args.triggers} POST /api/v2/dags/triggered/dagRuns): "
                  f"{percentiles(triggers)}")
            lists = []
            for _ in range(args.lists):
                took, page = request(f"{url}/api/v2/dags/{DAG}/dagRuns?limit=100&order_by=-logical_date", token)
                assert page["total_entries"] == args.runs and len(page["dag_runs"]) == min(100, args.runs)
                lists.append(took)
            print(f"list-runs of a DAG with {args.runs} runs (GET .../dagRuns?limit=100&order_by=-logical_date): "
                  f"{percentiles(lists)}")
            rss, peak = memory(server.pid)
            print(f"API server process RSS {rss / 1024:.0f} MiB (peak {peak / 1024:.0f} MiB)")
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()

"""Benchmark of the REST API in local mode (run: ``.venv/bin/python benchmarks/api.py [--runs 10000]``).

``kubedag api`` runs as a user starts it (its own process, uvicorn, SQLite metadata DB in a temporary
KUBEDAG_HOME, a one-DAG folder), with ``--runs`` finished runs of that DAG written into the DB first. Prints:

* trigger -> DAGRun created: latency of ``POST /api/v2/dags/{dag_id}/dagRuns`` (it answers once the run's row
  is committed), p50 / p95 over ``--samples`` requests;
* list runs of the DAG with ``--runs`` runs: ``GET /api/v2/dags/{dag_id}/dagRuns`` (default page of 50, first
  page; and newest first ``order_by=-logical_date`` with a ``state`` filter), p50 / p95;
* the API server's RSS (``VmRSS``) after the requests, and its peak (``VmHWM``).

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

ROOT = Path(__file__).resolve().parents[1]
KUBEDAG = str(Path(sys.executable).with_name("kubedag"))
DAG = """\
apiVersion: kubedag.io/v1alpha1
kind: DAG
metadata: {name: bench}
spec:
  schedule: "@hourly"
  startDate: "2020-01-01T00:00:00Z"
  catchup: false
  paused: true
  tasks:
    - name: only
      command: ["true"]
"""


def fill(database_url: str, runs: int) -> None:
    """Write ``runs`` finished hourly runs of ``bench`` (alternately success/failed) straight into the DB."""
    import sqlalchemy as sa

    from kubedag.store.db import open_store
    from kubedag.store.models import DagRow, DagRunRow

    _, sessions = open_store(database_url)
    start = datetime(2020, 1, 1, tzinfo=timezone.utc)
    with sessions.begin() as session:
        if session.get(DagRow, "bench") is None:
            session.add(DagRow(dag_id="bench", spec={}, is_paused=True))
        session.flush()
        rows = []
        for n in range(runs):
            when = start + timedelta(hours=n)
            rows.append({"dag_id": "bench", "run_id": f"scheduled__{when.isoformat()}", "run_type": "scheduled",
                         "state": "success" if n % 2 else "failed", "logical_date": when,
                         "data_interval_start": when - timedelta(hours=1), "data_interval_end": when, "conf": {},
                         "queued_at": when, "start_date": when, "end_date": when + timedelta(minutes=1)})
        session.execute(sa.insert(DagRunRow), rows)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(request: urllib.request.Request) -> float:
    """Seconds one request takes (its body read); raises for a non-2xx answer."""
    began = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        response.read()
    return time.perf_counter() - began


def rss(pid: int) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of a process, KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def pct(values: list[float]) -> str:
    """``p50 / p95`` in milliseconds."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms / p95 {p95 * 1000:.1f} ms (n={len(ordered)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs of the DAG in the DB before listing")
    parser.add_argument("--samples", type=int, default=200, help="requests per measured call")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home, folder = Path(tmp) / "home", Path(tmp) / "dags"
        folder.mkdir()
        (folder / "bench.yaml").write_text(DAG)
        url = f"sqlite:///{home}/kubedag.db"
        home.mkdir()
        began = time.perf_counter()
        fill(url, args.runs)
        print(f"wrote {args.runs} runs in {time.perf_counter() - began:.1f} s")
        port = free_port()
        env = {**os.environ, "KUBEDAG_HOME": str(home), "KUBEDAG_DATABASE_URL": url}
        server = subprocess.Popen([KUBEDAG, "api", "--dags-folder", str(folder), "--port", str(port)], env=env,
                                  stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    timed(urllib.request.Request(f"{base}/readyz"))
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("kubedag api did not start") from None
                    time.sleep(0.2)
            print(f"API server started; RSS {rss(server.pid)[0] / 1024:.1f} MiB before any request")
            listing = f"{base}/api/v2/dags/bench/dagRuns"
            for _ in range(5):  # warm-up (imports, caches)
                timed(urllib.request.Request(listing))
            first_page = [timed(urllib.request.Request(listing)) for _ in range(args.samples)]
            filtered = [timed(urllib.request.Request(f"{listing}?order_by=-logical_date&state=success&limit=100"))
                        for _ in range(args.samples)]
            triggers = []
            for n in range(args.samples):
                body = json.dumps({"dag_run_id": f"bench-{n}", "logical_date": f"2030-01-01T00:00:{n % 60:02d}.{n:06d}Z",
                                   "conf": {"n": n}}).encode()
                triggers.append(timed(urllib.request.Request(f"{listing}", data=body, method="POST",
                                                             headers={"Content-Type": "application/json"})))
            now, peak = rss(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"trigger -> DAGRun created (POST dagRuns):                {pct(triggers)}")
    print(f"list runs of a DAG with {args.runs} runs, first page of 50: {pct(first_page)}")
    print(f"  newest first, state=success, limit 100:                {pct(filtered)}")
    print(f"API server RSS: {now / 1024:.1f} MiB now, {peak / 1024:.1f} MiB peak")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "controller"))
    main()

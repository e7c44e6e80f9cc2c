"""Benchmarks of the functional core and the local executor. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/engine.py [--quick]

1. ``plan()``: one pass over DAGs of 1,000 and 10,000 tasks, wide (every task a root, all joined by
   one sink) and chained (each task depends on the one before), at the start of a run (nothing done)
   and in the middle (first half succeeded), median of several calls.
2. ``kubedag dags test`` on a 200-task chain of ``true``: per-task overhead = (wall time - the tasks'
   own run time) / tasks, where a task's run time is its try's start-to-end as recorded.
3. ``kubedag dags test`` on a 50-task chain of ``true``: wall time (Airflow 2.10: 9.7 s); and on a
   50-task chain where each task appends ``date +%s.%N`` to a file, the gap between consecutive
   stamps: a task's end to its successor's start as the tasks themselves see it, an upper bound that
   includes starting ``sh`` and ``date`` (Airflow 2.10: 0.72 s median).
4. Peak RSS of ``dags test`` (runner + DB writer) with 32 tasks running at once (Airflow's scheduler: 1.9-3.5 GiB).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from kubedag.core import engine
from kubedag.core.spec.dag import DAG, Task
from kubedag.core.states import RunType, TaskInstanceState

UTC = timezone.utc
KUBEDAG = str(Path(sys.executable).with_name("kubedag"))


def make_dag(n: int, shape: str) -> DAG:
    tasks: dict[str, Task] = {}
    if shape == "chain":
        for i in range(n):
            tasks[f"t{i}"] = Task(task_id=f"t{i}", command=("true",), upstream=(f"t{i - 1}",) if i else ())
    else:
        for i in range(n - 1):
            tasks[f"t{i}"] = Task(task_id=f"t{i}", command=("true",))
        tasks["sink"] = Task(task_id="sink", command=("true",), upstream=tuple(f"t{i}" for i in range(n - 1)))
    return DAG(dag_id=f"{shape}-{n}", tasks=tasks, max_active_tasks=n)


def bench_plan(n: int, shape: str, repeat: int) -> tuple[float, float]:
    dag = make_dag(n, shape)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    run = engine.DagRun(dag_id=dag.dag_id, run_id="manual__x", run_type=RunType.MANUAL, logical_date=now,
                        data_interval_start=now, data_interval_end=now)
    ids = list(dag.tasks)
    half = {t: engine.TaskInstance(task_id=t, state=TaskInstanceState.SUCCESS, try_number=1, start_date=now, end_date=now)
            for t in ids[: n // 2]}
    results = []
    for tis in ({}, half):
        samples = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            engine.plan(dag, run, tis, now)
            samples.append(time.perf_counter() - t0)
        results.append(statistics.median(samples))
    return results[0], results[1]


def chain_manifest(path: Path, n: int, name: str, parallel: bool = False, stamps: Path | None = None) -> None:
    lines = ["apiVersion: kubedag.io/v1alpha1", "kind: DAG", f"metadata: {{name: {name}}}", "spec:",
             f"  maxActiveTasks: {max(n, 1)}", "  tasks:"]
    for i in range(n):
        command = '["sleep", "2"]' if parallel else '["true"]'
        if stamps is not None:
            command = f'["sh", "-c", "date +%s.%N >> {stamps}"]'
        lines.append(f"    - name: t{i}\n      command: {command}")
        if i and not parallel:
            lines.append(f"      dependsOn: [t{i - 1}]")
    path.write_text("\n".join(lines) + "\n")


def parse(ts: str) -> datetime:  # noqa: D103
    return datetime.fromisoformat(ts)


def run_dags_test(manifest: Path, home: Path) -> tuple[float, dict]:
    env = {**os.environ, "KUBEDAG_HOME": str(home)}
    env.pop("KUBEDAG_DATABASE_URL", None)
    t0 = time.perf_counter()
    proc = subprocess.run([KUBEDAG, "dags", "test", str(manifest), "--logical-date", "2026-11-01", "-o", "json"],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"dags test failed:\n{proc.stderr}")
    return wall, json.loads(proc.stdout)


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss_while_running(manifest: Path, home: Path) -> int:
    """Sample every 20 ms the summed RSS (KiB) of the ``dags test`` process and its kubedag children."""
    env = {**os.environ, "KUBEDAG_HOME": str(home)}
    proc = subprocess.Popen([KUBEDAG, "dags", "test", str(manifest), "-o", "json"], stdout=subprocess.DEVNULL, env=env)
    peak = 0
    while proc.poll() is None:
        pids = [proc.pid]
        try:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        except OSError:
            children = []
        for child in children:
            try:
                if b"kubedag" in Path(f"/proc/{child}/cmdline").read_bytes():
                    pids.append(int(child))
            except OSError:
                pass
        peak = max(peak, sum(_rss_kib(p) for p in pids))
        time.sleep(0.02)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7

    print("plan(): one pass (median)             start of run    mid-run")
    for n in (1_000, 10_000):
        for shape in ("wide", "chain"):
            start, mid = bench_plan(n, shape, repeat if n < 10_000 else max(3, repeat // 2))
            print(f"  {n:>6} tasks {shape:<6}               {start * 1e3:8.2f} ms   {mid * 1e3:8.2f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        # warm the DB (creation + migrations happen once per KUBEDAG_HOME)
        chain_manifest(tmpdir / "warm.yaml", 1, "warm")
        run_dags_test(tmpdir / "warm.yaml", tmpdir / "home")

        chain_manifest(tmpdir / "c200.yaml", 200, "chain-200")
        wall, result = run_dags_test(tmpdir / "c200.yaml", tmpdir / "home")
        own = sum((parse(t["end_date"]) - parse(t["start_date"])).total_seconds() for t in result["tasks"])
        print(f"\ndags test, 200-task chain of true: wall {wall:.3f} s, tasks' own run time {own:.3f} s,"
              f" overhead {(wall - own) / 200 * 1e3:.2f} ms per task")

        walls, gaps = [], []
        chain_manifest(tmpdir / "c50.yaml", 50, "chain-50")
        stamps = tmpdir / "stamps.txt"
        chain_manifest(tmpdir / "s50.yaml", 50, "stamps-50", stamps=stamps)
        for _ in range(3 if args.quick else 5):
            wall, result = run_dags_test(tmpdir / "c50.yaml", tmpdir / "home")
            walls.append(wall)
            stamps.unlink(missing_ok=True)
            run_dags_test(tmpdir / "s50.yaml", tmpdir / "home")
            times = [float(line) for line in stamps.read_text().split()]
            gaps += [b - a for a, b in zip(times, times[1:])]
        gaps.sort()
        print(f"dags test, 50-task chain of true:  wall median {statistics.median(walls):.3f} s (target < 0.5 s)")
        print(f"  task end -> successor start: median {statistics.median(gaps) * 1e3:.2f} ms,"
              f" p95 {gaps[int(len(gaps) * 0.95)] * 1e3:.2f} ms, max {gaps[-1] * 1e3:.2f} ms (target < 36 ms)")

        chain_manifest(tmpdir / "p32.yaml", 32, "parallel-32", parallel=True)
        peak = peak_rss_while_running(tmpdir / "p32.yaml", tmpdir / "home")
        print(f"dags test, 32 tasks of `sleep 2` at once: peak RSS of kubedag (runner + DB writer process, "
              f"task processes excluded) {peak / 1024:.1f} MiB (target < 200 MiB)")


if __name__ == "__main__":
    main()

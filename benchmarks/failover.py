"""Failover benchmark of the controller's hot standby (run: ``.venv/bin/python benchmarks/failover.py``).

Two ``kubedag controller --leader-elect`` processes (SQLite metadata DB, client-go's default timing 15 s /
10 s / 2 s unless told otherwise) run against the API emulator of ``tests/k8s/emulator`` and its fake kubelet.
``--runs`` DAGRuns of a chain of ``sleep`` tasks keep pods coming. Then, ``--kills`` times: wait until the
leader has created a pod for every active run since it took over, stop it (``--signal KILL``: SIGKILL, the Lease
is left to expire; ``TERM``: SIGTERM, the Lease is released) and start a fresh replica in its place (as the
Deployment would), and time, from the signal, on the API server:

* ``ended``: the old leader's process has exited (SIGTERM: its graceful stop, bounded by 10 s);
* ``takeover``: the Lease naming the new holder;
* ``first pod``: the first pod created after the kill;
* ``every run``: every active run has had a pod created after the kill (its first reconcile by the new leader
  has happened; each run's pod of before the kill finishes within a second, so each needs a new one);
* ``first round`` (from the takeover, not the signal): from the moment the new leader starts reconciling to the
  start of the first reconcile of the last of its active runs, as the new leader logs it (``the first reconcile
  of every one of the N active runs began within S``), with how many runs its warm standby had ready
  (``N runs warm, M of them current``: read after the old leader stopped writing; their first pass opens nothing).

``--restart``: one replica without leader election instead, SIGKILLed and started again (no standby); then
``first round`` is from the new process's start to the last ``opened DAGRun`` log line (first pass) of the runs,
and ``every run`` from its start as well.

Prints median and max of each, and the tries started more than once (from the DB; must be 0). Figures depend on
the machine; nothing here asserts a target.
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from kubedag.core import naming as names  # noqa: E402
from tests.controller.harness import wait_until  # noqa: E402
from tests.ha.replicas import ControllerProcess, holder  # noqa: E402
from tests.k8s.emulator import server as emulator_server  # noqa: E402
from tests.k8s.emulator.kubelet import FakeKubelet  # noqa: E402
from tests.k8s.emulator.server import EmulatedApiServer  # noqa: E402

NS = "default"


class PodClock:
    """Monotonic time of each pod creation the API server accepted, with its run's name."""

    def __init__(self) -> None:
        self.created: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    def install(self) -> None:
        emulator = emulator_server.KubeApiEmulator
        original = emulator.op_create
        clock = self

        def op_create(self: Any, rt: Any, namespace: Any, body: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, rt, namespace, body, *args, **kwargs)
            if getattr(rt, "plural", None) == "pods" and isinstance(body, dict):
                run = ((body.get("metadata") or {}).get("labels") or {}).get(names.LABEL_RUN, "")
                with clock.lock:
                    clock.created.append((time.monotonic(), run))
            return result

        emulator.op_create = op_create

    def since(self, t: float) -> list[tuple[float, str]]:
        with self.lock:
            return [(when, run) for when, run in self.created if when > t]


def chain(length: int, seconds: str) -> dict[str, Any]:
    tasks = [{"name": f"t{i:03d}", "command": ["sleep", seconds], **({"dependsOn": [f"t{i - 1:03d}"]} if i else {})}
             for i in range(length)]
    return {"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "chain", "namespace": NS},
            "spec": {"defaults": {"image": "busybox:1.36"}, "maxActiveRuns": 1000, "maxActiveTasks": 1000,
                     "tasks": tasks}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20, help="DAGRuns active at once")
    parser.add_argument("--signal", choices=("KILL", "TERM"), default="KILL")
    parser.add_argument("--timing", default="15s,10s,2s", help="lease duration, renew deadline, retry period")
    parser.add_argument("--tasks", type=int, default=400, help="tasks of the chain each run goes through")
    parser.add_argument("--task-seconds", default="0.5", help="how long each task's pod runs")
    parser.add_argument("--restart", action="store_true", help="one replica without leader election, restarted")
    parser.add_argument("--workdir", type=Path, help="keep the controllers' logs and the DB here (default: a temporary directory)")
    args = parser.parse_args()
    timing = tuple(args.timing.split(","))
    sig = signal.SIGKILL if args.signal == "KILL" else signal.SIGTERM
    crds = sorted((ROOT / "crds").glob("*.yaml"))
    clock = PodClock()
    clock.install()
    takeovers, firsts, everys, exits, rounds, currents = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as scratch, EmulatedApiServer(crd_files=crds, journal_limit=200) as api, \
            FakeKubelet(api.url, workdir=Path(scratch)):
        work = args.workdir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        db_url = f"sqlite:///{work / 'kubedag.db'}"
        kubeconfig = api.kubeconfig(work / "kubeconfig")
        api.create(chain(args.tasks, args.task_seconds))
        elect = not args.restart
        replicas = {name: ControllerProcess(kubeconfig, db_url, name, work, timing, leader_elect=elect) for name in ("r0",)}
        if elect:
            wait_until(lambda: holder(api) == "r0", 60, "r0 leads")
            replicas["r1"] = ControllerProcess(kubeconfig, db_url, "r1", work, timing)
        for i in range(args.runs):
            api.create({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAGRun",
                        "metadata": {"name": f"chain-{i}", "namespace": NS},
                        "spec": {"dagName": "chain", "logicalDate": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z"}})
        started = time.monotonic()
        serial = 2
        try:
            for kill in range(args.kills):
                for gone in [n for n, r in replicas.items() if r.proc.poll() is not None]:  # lost its Lease (exit 1)
                    print(f"replica {gone} exited by itself (rc {replicas[gone].wait()}); starting r{serial}", flush=True)
                    del replicas[gone]
                    replicas[f"r{serial}"] = ControllerProcess(kubeconfig, db_url, f"r{serial}", work, timing)
                    serial += 1
                leader = wait_until(lambda: holder(api), 120, "a leader") if elect else next(iter(replicas))
                runs = wait_until(lambda: (seen := {run for _, run in clock.since(0)}) and len(seen) >= args.runs and seen,
                                120, "a pod for each run")
                wait_until(lambda: {run for _, run in clock.since(started)} >= runs, 120, "a pod for every run")
                t0 = time.monotonic()
                replicas[leader].proc.send_signal(sig)
                replicas[leader].wait(30)
                exits.append(time.monotonic() - t0)
                del replicas[leader]
                name = f"r{serial}"
                serial += 1
                spawned = time.time()
                replicas[name] = ControllerProcess(kubeconfig, db_url, name, work, timing, leader_elect=elect)
                if not elect:
                    every = _every_run(clock, t0, runs)
                    everys.append(every - t0)
                    took = wait_until(lambda: _opened(work / f"controller-{name}.log", runs, spawned), 120, "every run opened")
                    rounds.append(took)
                    print(f"restart {kill + 1:2d}: every run got a pod {every - t0:5.2f}s after the kill, the last was opened "
                          f"{took:5.2f}s after the start", flush=True)
                    started = t0
                    continue
                new = wait_until(lambda: (h := holder(api)) not in (None, leader) and h, 120, "a new leader")
                takeovers.append(time.monotonic() - t0)
                first = wait_until(lambda: clock.since(t0), 120, "a pod after the kill")[0][0]
                firsts.append(first - t0)
                every = _every_run(clock, t0, runs)
                everys.append(every - t0)
                took = wait_until(lambda: _first_round(work / f"controller-{new}.log"), 120, "the first round logged")
                rounds.append(took[0])
                currents.append(took[1])
                print(f"kill {kill + 1:2d} ({args.signal} {leader} -> {new}): ended {exits[-1]:5.2f}s, takeover {takeovers[-1]:5.2f}s, "
                      f"first pod {firsts[-1]:5.2f}s, every run {everys[-1]:5.2f}s; first round {took[0]:5.2f}s after "
                      f"the takeover ({took[2]} active runs, {took[1]} warm and current)", flush=True)
                started = t0
        finally:
            for replica in replicas.values():
                replica.proc.send_signal(signal.SIGTERM)
            for replica in replicas.values():
                try:
                    replica.wait(20)
                except Exception:  # noqa: BLE001 - a benchmark's teardown
                    replica.stop()
        engine = sa.create_engine(db_url)
        with engine.connect() as conn:
            twice = conn.execute(sa.text("select count(*) from task_instance where try_number > 1")).scalar()
            tries = conn.execute(sa.text("select count(*) from task_instance")).scalar()
        engine.dispose()
    if not elect:
        print(f"\n{args.kills} x SIGKILL and restart, {args.runs} active runs: every run got a pod (from the kill) median "
              f"{statistics.median(everys):.2f}s max {max(everys):.2f}s; start -> last run opened median "
              f"{statistics.median(rounds):.2f}s max {max(rounds):.2f}s; tries started more than once: {twice} of {tries}")
        return
    print(f"\n{args.kills} x SIG{args.signal} of the leader, {args.runs} active runs, lease timing {args.timing}:")
    for label, values in (("old leader's process ended", exits), ("takeover (Lease has a new holder)", takeovers), ("first pod created", firsts),
                          ("every active run got a pod", everys),
                          ("takeover -> last first reconcile", rounds)):
        print(f"  {label:36s} median {statistics.median(values):6.2f}s  max {max(values):6.2f}s")
    print(f"  runs whose memory was warm and current at takeover: median {statistics.median(currents)} of {args.runs}")
    print(f"  tries started more than once: {twice} (of {tries} task instances)")


def _first_round(log_file: Path) -> tuple[float, int, int] | None:
    """``(seconds, current, active)`` from a new leader's log: how long after its takeover the first reconcile of
    its last active run began, how many runs were warm and current, how many active; None until logged."""
    text = log_file.read_text(errors="replace") if log_file.exists() else ""
    took = re.search(r"(\d+) runs warm, (\d+) of them current", text)
    done = re.search(r"every one of the (\d+) active runs began within ([0-9.]+)s", text)
    return None if took is None or done is None else (float(done.group(2)), int(took.group(2)), int(done.group(1)))


def _opened(log_file: Path, runs: set[str], spawned: float) -> float | None:
    """Seconds from ``spawned`` (wall clock) to the last ``opened DAGRun`` line of ``runs`` in a restarted
    controller's log (its first pass of each); None until every run is there."""
    text = log_file.read_text(errors="replace") if log_file.exists() else ""
    opened = {m.group(2): m.group(1) for m in re.finditer(r"^(\S+ \S+) INFO kubedag.controller: opened DAGRun \S+/(\S+) ", text, re.M)}
    if not runs <= set(opened):
        return None
    return max(datetime.strptime(opened[run], "%Y-%m-%d %H:%M:%S,%f").timestamp() for run in runs) - spawned


def _every_run(clock: PodClock, t0: float, runs: set[str], timeout: float = 120) -> float:
    """When every run of ``runs`` that is still active had its first pod created after ``t0``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        firsts: dict[str, float] = {}
        for when, run in clock.since(t0):
            firsts.setdefault(run, when)
        if runs <= set(firsts):
            return max(firsts[run] for run in runs)
        time.sleep(0.2)
    raise TimeoutError(f"not every run got a pod within {timeout}s")


if __name__ == "__main__":
    main()

"""Benchmark of the Kubernetes controller (run: ``.venv/bin/python benchmarks/controller.py [--server real]``).

The controller runs as it does in a cluster: its own process (``kubedag controller``, SQLite metadata DB),
talking HTTP to the emulated API server of ``tests/k8s/emulator`` (``--server emulator``, the default) or
HTTPS to a real control plane (``--server real``: kube-apiserver, etcd, kube-scheduler and
kube-controller-manager from ``scripts/controlplane``, built first; see ``benchmarks/real_server.py``).
The fake kubelet runs every pod's command (``true``: an instant pod) as a local process. Prints, for a
200-task fan-out (one root, 199 children) and a 50-task chain:

* successor latency: from the kubelet's status write that makes a pod ``Succeeded`` to the API server
  receiving the creation of a successor's pod (for the fan-out, every child counts from the root's
  completion), p50 / p95 / max;
* wall time from the DAGRun's creation to its ``success`` phase;
* the controller's API requests per task instance (its own requests plus kopf's watches);
* the controller process's peak RSS (``VmHWM``);

and the size of a finished 5,000-task DAGRun's status as the API server stores it (compact JSON). On the real
server it also runs a 1,000-task fan-out with ``maxActiveTasks`` 1,000 and the controller's default client
limit (``--api-qps 50``), and prints the pods created per second. Figures depend on the machine; nothing
here asserts a target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.k8s.emulator import server as emulator_server  # noqa: E402
from tests.k8s.emulator.kubelet import FakeKubelet  # noqa: E402
from tests.k8s.emulator.server import EmulatedApiServer  # noqa: E402

NS = "default"
DAGRUNS = "kubedag.io/v1alpha1/dagruns"


class Recorder:
    """Times, on the API server, of pod creations and of pods turning Succeeded (monotonic seconds)."""

    def __init__(self) -> None:
        self.created: dict[str, float] = {}
        self.succeeded: dict[str, float] = {}
        self.lock = threading.Lock()

    def install(self) -> None:
        emulator = emulator_server.KubeApiEmulator
        original_create, original_patch = emulator.op_create, emulator.op_patch
        recorder = self

        def op_create(self: Any, rt: Any, namespace: Any, body: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(rt, "plural", None) == "pods" and isinstance(body, dict):
                with recorder.lock:
                    recorder.created.setdefault(body.get("metadata", {}).get("name", ""), time.monotonic())
            return original_create(self, rt, namespace, body, *args, **kwargs)

        def op_patch(self: Any, rt: Any, namespace: Any, name: str, patch: Any, content_type: str, *args: Any, **kwargs: Any) -> Any:
            result = original_patch(self, rt, namespace, name, patch, content_type, *args, **kwargs)
            if getattr(rt, "plural", None) == "pods" and isinstance(patch, dict):
                if (patch.get("status") or {}).get("phase") == "Succeeded":
                    with recorder.lock:
                        recorder.succeeded.setdefault(name, time.monotonic())
            return result

        emulator.op_create, emulator.op_patch = op_create, op_patch


def dag(name: str, shape: str, n: int, max_active_tasks: int = 256) -> dict[str, Any]:
    if shape == "fanout":
        tasks = [{"name": "root", "command": ["true"]}] + [
            {"name": f"t{i}", "command": ["true"], "dependsOn": ["root"]} for i in range(1, n)]
    else:
        tasks = [{"name": "t0", "command": ["true"]}] + [
            {"name": f"t{i}", "command": ["true"], "dependsOn": [f"t{i - 1}"]} for i in range(1, n)]
    return {"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": name, "namespace": NS},
            "spec": {"maxActiveTasks": max_active_tasks, "defaults": {"image": "busybox:1.36"}, "tasks": tasks}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def controller_requests(api: EmulatedApiServer) -> int:
    """Requests the API server received from the controller: its own client's and kopf's (by User-Agent)."""
    agents = api.call(lambda h: dict(h.user_agents))
    return sum(n for agent, n in agents.items() if agent.startswith(("kubedag-controller", "kopf/")))


def vm_hwm(pid: int) -> float:
    """Peak resident set size of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scenario(api: Any, recorder: Any, name: str, shape: str, n: int, requests: Any,
             max_active_tasks: int = 256) -> dict[str, Any]:
    """Run one DAGRun of ``dag(name, shape, n)``; ``requests()`` counts the controller's API requests so far."""
    from kubedag.core import naming as names

    api.create(dag(name, shape, n, max_active_tasks))
    time.sleep(0.5)  # the controller validates the DAG
    before = requests()
    run_name = f"{name}-bench"
    start = time.monotonic()
    api.create({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAGRun",
                "metadata": {"name": run_name, "namespace": NS}, "spec": {"dagName": name}})
    deadline = start + 300
    while True:
        obj = api.get(DAGRUNS, run_name, NS)
        phase = ((obj or {}).get("status") or {}).get("phase")
        if phase in ("success", "failed"):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not finish")
        time.sleep(0.01)
    wall = time.monotonic() - start
    used = requests() - before
    created = recorder.created
    pod = {task: names.pod_name(name, run_name, task, 1) for task in (f"t{i}" for i in range(n))}
    if shape == "fanout":
        pod["root"] = names.pod_name(name, run_name, "root", 1)
        root_done = recorder.succeeded[pod["root"]]
        latencies = [created[pod[f"t{i}"]] - root_done for i in range(1, n)]
        children = sorted(created[pod[f"t{i}"]] for i in range(1, n))
        spread = children[-1] - children[0]
    else:
        latencies = [created[pod[f"t{i}"]] - recorder.succeeded[pod[f"t{i - 1}"]] for i in range(1, n)]
        spread = 0.0
    return {"phase": phase, "wall": wall, "latencies": latencies, "requests_per_ti": used / n,
            "pods_per_second": (n - 2) / spread if spread else float("nan")}


def status_size(tasks: int = 5000) -> int:
    """Bytes of a finished ``tasks``-task DAGRun status (compact JSON), realistic task ids."""
    from datetime import datetime, timezone

    from kubedag.core import engine
    from kubedag.core import naming as names
    from kubedag.k8s import observe
    from kubedag.core.states import DagRunState, RunType, TaskInstanceState

    now = datetime(2026, 11, 1, tzinfo=timezone.utc)
    run_name = names.run_name("supermarket-promotions", "scheduled__2026-11-01T00:00:00+00:00")
    tis = {f"process_supermarket_{i:05d}_partition": engine.TaskInstance(f"process_supermarket_{i:05d}_partition",
                                                                         TaskInstanceState.SUCCESS, 1, now, now)
           for i in range(tasks)}
    run = engine.DagRun("supermarket-promotions", "scheduled__2026-11-01T00:00:00+00:00", RunType.SCHEDULED, now, now,
                        now, DagRunState.SUCCESS, now, now)
    status = observe.build_status(run, tis, {t: 1 for t in tis}, lambda t, n: names.pod_suffix(run_name, t, n),
                                  observed_generation=1)
    return len(json.dumps({"status": status.to_k8s()}, separators=(",", ":")))


def run_scenario(recorder: Recorder, name: str, shape: str, n: int) -> dict[str, Any]:
    """One scenario on a fresh emulated cluster and a fresh controller process (nothing left over from another)."""
    crds = sorted((ROOT / "crds").glob("*.yaml"))
    with tempfile.TemporaryDirectory() as tmp, EmulatedApiServer(crd_files=crds, journal_limit=50) as api:
        kubeconfig = api.kubeconfig(Path(tmp) / "kubeconfig")
        with FakeKubelet(api.url, workdir=Path(tmp)):
            return with_controller(kubeconfig, Path(tmp), lambda: scenario(
                api, recorder, name, shape, n, lambda: controller_requests(api)))


def with_controller(kubeconfig: Path, tmp: Path, run: Any, qps: float = 0) -> dict[str, Any]:
    """Run ``run()`` while a ``kubedag controller`` process (SQLite in ``tmp``, client limit ``qps``) serves NS."""
    env = {**os.environ, "KUBEDAG_DATABASE_URL": f"sqlite:///{tmp}/kubedag-{time.monotonic_ns()}.db",
           "KUBEDAG_LOG_LEVEL": "WARNING"}
    kubedag = Path(sys.executable).with_name("kubedag")
    proc = subprocess.Popen([str(kubedag), "controller", "--kubeconfig", str(kubeconfig), "-n", NS,
                             "--liveness-port", "0", "--api-qps", str(qps)], env=env)
    try:
        time.sleep(2.0)  # start-up: imports, migrations, kopf's initial listing
        result = run()
        result["rss"] = vm_hwm(proc.pid)
        result["qps"] = qps
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return result


def real_results() -> dict[str, dict[str, Any]]:
    """The scenarios on one real control plane, a fresh controller process each."""
    from benchmarks.real_server import real_cluster
    from tests.controlplane.servers import clean_namespace as clean

    results = {}
    with real_cluster() as (api, recorder, kubeconfig), tempfile.TemporaryDirectory() as tmp:
        for label, name, shape, n, tasks, qps in (("200-task fan-out", "fanout", "fanout", 200, 256, 0),
                                                   ("50-task chain", "chain", "chain", 50, 256, 0),
                                                   ("1,000-task fan-out", "wide", "fanout", 1000, 1000, 50)):
            results[label] = with_controller(kubeconfig, Path(tmp), lambda: scenario(
                api, recorder, name, shape, n, recorder.requests, tasks), qps)
            clean(api)  # the next controller starts on an empty namespace, as on a fresh emulator
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--server", choices=("emulator", "real"), default="emulator")
    args = parser.parse_args()
    if args.server == "real":
        results = real_results()
        print("kubedag controller against a real control plane (kube-apiserver v1.36.5, etcd, kube-scheduler; "
              "fake kubelet, instant pods), this machine")
    else:
        recorder = Recorder()
        recorder.install()
        results = {
            "200-task fan-out": run_scenario(recorder, "fanout", "fanout", 200),
            "50-task chain": run_scenario(recorder, "chain", "chain", 50),
        }
        print("kubedag controller against the API emulator (fake kubelet, instant pods), this machine")
    for label, r in results.items():
        ms = [x * 1000 for x in r["latencies"]]
        rate = f"; {r['pods_per_second']:.0f} pods created per second (--api-qps {r['qps']:g})" if r["qps"] else ""
        print(f"{label}: {r['phase']}, wall {r['wall']:.2f} s; successor latency p50 {statistics.median(ms):.1f} ms, "
              f"p95 {percentile(ms, 0.95):.1f} ms, max {max(ms):.1f} ms; "
              f"{r['requests_per_ti']:.2f} API requests per task instance; controller peak RSS {r['rss']:.0f} MiB{rate}")
    print(f"5,000-task DAGRun status: {status_size():,} bytes (etcd's limit: 1,572,864)")


if __name__ == "__main__":
    main()

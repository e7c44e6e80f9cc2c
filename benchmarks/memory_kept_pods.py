"""Controller memory as finished pods accumulate (issue 13: "memory flat with 10,000 finished pods kept").

Run: ``.venv/bin/python benchmarks/memory_kept_pods.py [--runs 10 --tasks 1000]``. ``kubedag controller`` runs as
its own process (SQLite) against the API emulator, with ``--pod-retention 2h`` so every finished pod is kept.
The pods are not run one by one (the fake kubelet starts about a process per second here under load): for each run,
``--tasks`` pods of try 1 are made as the controller would name them, already ``Succeeded`` on a second node
(``kept-node``) whose log endpoint is the fake kubelet's (their logs are files on its disk), then the DAGRun is
created: the controller launches every task, takes each 409 as "exists", observes the pods ``Succeeded``, reads
and archives their logs and hands them to the retention queue. After each run the controller's RSS (``VmRSS``)
is printed with the number of pods kept; then after ``--idle`` seconds; then after a restart with every pod still
kept (how long a new one-task run takes, RSS). Figures depend on the machine; nothing here asserts.

``--restart-runs N [M ...]`` (issue 13, "Bounded recovery"): while the controller is stopped, N one-task DAGRuns
are created (then it is stopped again and M more, ...); the restarted controller (log level INFO) then has N active runs and every kept pod. Printed: the seconds
from the process's start to each run's first pass (its ``opened DAGRun`` log line: median, max), to each run's
first pod (the emulator's clock of accepted pod creations), and until every run succeeded; then whether any try
ran twice (a pod of try 2) or was called lost (``pod deleted`` in a reason). ``--pod-retention 0s`` deletes every
finished pod at once (what of the RSS growth is the kept pods and what the finished runs).
"""
from __future__ import annotations

import argparse
import logging
import re
import statistics
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from datetime import datetime

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.failover import PodClock  # noqa: E402
from kubedag.core import naming as names  # noqa: E402
from tests.k8s.emulator.kubelet import FakeKubelet  # noqa: E402
from tests.k8s.emulator.node import node_manifest, node_status  # noqa: E402
from tests.k8s.emulator.server import EmulatedApiServer, rfc3339  # noqa: E402

NS = 'default'
DAGRUNS = 'kubedag.io/v1alpha1/dagruns'


def rss_mib(pid: int) -> float:
    """The process's resident set (``VmRSS``), MiB."""
    for line in pathlib.Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    return 0.0


def start_controller(kubeconfig: pathlib.Path, db: pathlib.Path, log: pathlib.Path, retention: str,
                     level: str = 'WARNING') -> subprocess.Popen[bytes]:
    env = {**os.environ, 'KUBEDAG_DATABASE_URL': f'sqlite:///{db}', 'KUBEDAG_LOG_LEVEL': level,
           'KUBEDAG_POD_RETENTION': retention, 'KUBEDAG_RUN_HISTORY_LIMIT': '0'}
    kubedag = pathlib.Path(sys.executable).with_name('kubedag')
    profile = ['-m', 'cProfile', '-o', os.environ['KUBEDAG_BENCH_PROFILE']] if level == 'INFO' and os.environ.get('KUBEDAG_BENCH_PROFILE') else []
    return subprocess.Popen([sys.executable, *profile, str(kubedag), 'controller', '--kubeconfig', str(kubeconfig), '-n', NS, '--liveness-port', '0'],
                            env=env, stdout=log.open('ab'), stderr=subprocess.STDOUT)


def finished_pods(api: EmulatedApiServer, kubelet: FakeKubelet, run: str, tasks: int) -> None:
    """The pods of try 1 of every task of ``run``, ``Succeeded`` on ``kept-node``, each with a one-line log on the
    fake kubelet's disk."""
    now = rfc3339()
    for i in range(tasks):
        task_id = f't{i}'
        name = names.pod_name('kept', run, task_id, 1)
        pod = api.create({'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {
            'name': name, 'namespace': NS, 'labels': names.pod_labels('kept', run, task_id, 1)},
            'spec': {'nodeName': 'kept-node', 'restartPolicy': 'Never',
                     'containers': [{'name': 'base', 'image': 'busybox:1.36', 'command': ['true']}]}})
        api.patch('v1/pods', name, {'status': {'phase': 'Succeeded', 'startTime': now, 'containerStatuses': [{
            'name': 'base', 'image': 'busybox:1.36', 'imageID': '', 'ready': False, 'restartCount': 0,
            'state': {'terminated': {'exitCode': 0, 'reason': 'Completed', 'startedAt': now, 'finishedAt': now}}}]}},
            NS, subresource='status')
        log = kubelet.log_dir(NS, name, pod['metadata']['uid']) / 'base.log'
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f'{run} {task_id}: done\n')


def restart(api: EmulatedApiServer, kubeconfig: pathlib.Path, db: pathlib.Path, log: pathlib.Path,
            args: argparse.Namespace, clock: PodClock, n: int, day: int) -> subprocess.Popen[bytes]:
    """Create ``n`` one-task runs (of ``day``, 1-28) while the controller is stopped, start it again and print how
    long after its start each run had its first pass and its first pod, and when every run had succeeded."""
    runs = [f'after-restart-{day}-{i}' for i in range(n)]
    if api.get('kubedag.io/v1alpha1/dags', 'probe', NS) is None:
        most = max(args.restart_runs)
        api.create({'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'DAG', 'metadata': {'name': 'probe', 'namespace': NS},
                    'spec': {'defaults': {'image': 'busybox:1.36'}, 'maxActiveRuns': most, 'maxActiveTasks': most,
                             'tasks': [{'name': 'p', 'command': ['true']}]}})
    for i, name in enumerate(runs):
        api.create({'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'DAGRun', 'metadata': {'name': name, 'namespace': NS},
                    'spec': {'dagName': 'probe', 'logicalDate': f'2027-01-{day:02d}T00:{i // 60:02d}:{i % 60:02d}Z'}})
    log_start = log.stat().st_size
    spawned, t0 = time.time(), time.monotonic()
    proc = start_controller(kubeconfig, db, log, args.pod_retention, level='INFO')
    wait(lambda: all(((api.get(DAGRUNS, name, NS) or {}).get('status') or {}).get('phase') == 'success' for name in runs),
         1800, 'the runs after the restart')
    done = time.monotonic() - t0
    kept = sum(1 for p in api.list('v1/pods', NS) if not p['metadata']['name'].startswith('probe-'))
    firsts: dict[str, float] = {}
    for when, run in clock.since(t0):
        firsts.setdefault(run, when - t0)
    with log.open('rb') as f:
        f.seek(log_start)
        text = f.read().decode(errors='replace')
    opened = {m.group(2): datetime.strptime(m.group(1), '%Y-%m-%d %H:%M:%S,%f').timestamp() - spawned
              for m in re.finditer(r'^(\S+ \S+) INFO kubedag.controller: opened DAGRun \S+/(\S+) ', text, re.M)}
    print(f'restart with {kept} pods kept and {len(runs)} active one-task runs '
          f'(load average {os.getloadavg()[0]:.1f}):', flush=True)
    for what, times in (('first pass', [opened[r] for r in runs if r in opened]),
                        ('first pod', [firsts[r] for r in runs if r in firsts])):
        print(f'  {what} of each run after the start: median {statistics.median(times):.1f}s, max {max(times):.1f}s '
              f'({len(times)} of {len(runs)})' if times else f'  {what}: none', flush=True)
    print(f'  every run succeeded {done:.1f}s after the start; RSS {rss_mib(proc.pid):.0f} MiB', flush=True)
    twice = [p['metadata']['name'] for p in api.list('v1/pods', NS)
             if (p['metadata'].get('labels') or {}).get(names.LABEL_TRY) not in (None, '1')]
    lost = text.count('pod deleted') + sum(str((api.get(DAGRUNS, f'kept-{i}', NS) or {}).get('status')).count('pod deleted')
                                           for i in range(args.runs))
    for line in text.splitlines():
        if 'first passes ended' in line or 'first reconcile of every' in line:
            print('  controller:', line.split(': ', 1)[-1], flush=True)
    print(f'  tries run twice: {len(twice)}; "pod deleted" mentions: {lost}', flush=True)
    if day == len(args.restart_runs):
        time.sleep(30)
        print(f'RSS 30s later: {rss_mib(proc.pid):.0f} MiB; log GETs: '
              f'{sum(1 for r in api.handler["get"] if r.url.path.endswith("/log"))} (journal capped)', flush=True)
    return proc


def wait(check, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except TimeoutError:  # the emulator's loop is busy (serving the controller): ask again
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--runs', type=int, default=10)
    parser.add_argument('--tasks', type=int, default=1000)
    parser.add_argument('--idle', type=float, default=60)
    parser.add_argument('--active', type=int, default=100, help="the DAG's maxActiveTasks (launches at once)")
    parser.add_argument('--pod-retention', default='2h', help="the controller's --pod-retention (0s: no pod is kept)")
    parser.add_argument('--restart-runs', type=int, nargs='+', default=[1],
                        help='one-task runs active at a restart; several numbers: one restart each, in turn')
    parser.add_argument('--save-log', type=pathlib.Path, help="copy the controller's log there at the end")
    args = parser.parse_args()
    logging.getLogger('tests.k8s.emulator').setLevel(logging.CRITICAL)  # log proxies cut short by a busy client
    with tempfile.TemporaryDirectory(prefix='kubedag-memory-') as tmp_name, \
            EmulatedApiServer(crd_files=sorted((ROOT / 'crds').glob('*.yaml')), journal_limit=1000) as api:
        tmp = pathlib.Path(tmp_name)
        (tmp / 'work').mkdir()
        with FakeKubelet(api.url, workdir=tmp / 'work', root=tmp / 'kubelet') as kubelet:
            api.create(node_manifest('kept-node'))  # its log endpoint is the fake kubelet's
            api.patch('v1/nodes', 'kept-node', node_status('kept-node', kubelet.port, rfc3339()), subresource='status')
            kubeconfig, db, log = api.kubeconfig(tmp / 'kubeconfig'), tmp / 'kubedag.db', tmp / 'controller.log'
            api.create({'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'DAG', 'metadata': {'name': 'kept', 'namespace': NS},
                        'spec': {'defaults': {'image': 'busybox:1.36'}, 'maxActiveTasks': args.active, 'maxActiveRuns': 1,
                                 'tasks': [{'name': f't{i}', 'command': ['true']} for i in range(args.tasks)]}})
            proc = start_controller(kubeconfig, db, log, args.pod_retention)
            try:
                time.sleep(5)
                print(f'{"pods kept":>10} {"RSS MiB":>8}  (controller pid {proc.pid})', flush=True)
                print(f'{0:>10} {rss_mib(proc.pid):>8.0f}', flush=True)
                started = time.monotonic()
                for i in range(args.runs):
                    name = f'kept-{i}'
                    finished_pods(api, kubelet, name, args.tasks)
                    api.create({'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'DAGRun',
                                'metadata': {'name': name, 'namespace': NS},
                                'spec': {'dagName': 'kept', 'logicalDate': f'2026-01-{i + 1:02d}T00:00:00Z'}})
                    wait(lambda: ((api.get(DAGRUNS, name, NS) or {}).get('status') or {}).get('phase') in ('success', 'failed'),
                         1800, f'{name} finished')
                    kept = sum(1 for p in api.list('v1/pods', NS) if not p['metadata']['name'].startswith('probe-'))
                    print(f'{kept:>10} {rss_mib(proc.pid):>8.0f}  ({time.monotonic() - started:.0f}s)', flush=True)
                time.sleep(args.idle)
                print(f'{len(api.list("v1/pods", NS)):>10} {rss_mib(proc.pid):>8.0f}  after {args.idle:.0f}s idle', flush=True)
                clock = PodClock()
                clock.install()
                for day, n in enumerate(args.restart_runs, start=1):
                    proc.terminate()
                    proc.wait(60)
                    proc = restart(api, kubeconfig, db, log, args, clock, n, day)
            finally:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                if args.save_log is not None:
                    args.save_log.write_bytes(log.read_bytes())


if __name__ == '__main__':
    main()

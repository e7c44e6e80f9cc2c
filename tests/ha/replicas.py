"""Controller replicas for the hot-standby tests and ``benchmarks/failover.py``: in-process (a thread each, told
apart by their bearer token in the emulator's request journal) or as ``kubedag controller`` processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubedag.k8s.client import Connection
from kubedag.k8s.leader import LeaderElection
from kubedag.k8s.leases import parse_lease
from tests.controller.harness import NS, RunningController

LEASE = 'coordination.k8s.io/v1/leases'
WRITES = ('POST', 'PUT', 'PATCH', 'DELETE')


class Replica(RunningController):
    """A controller thread whose requests carry ``Bearer <name>`` (the emulator accepts any token), with leader
    election on a Lease in ``default`` (short durations: ``timing`` = (lease duration, renew deadline, retry))."""

    def __init__(self, api: Any, db_url: str, name: str, timing: tuple[float, float, float] = (3.0, 2.0, 0.5),
                 **config: Any) -> None:
        election = LeaderElection(namespace=NS, identity=f'{name}_test', lease_duration=timing[0],
                                  renew_deadline=timing[1], retry_period=timing[2])
        super().__init__(_AsUser(api, name), db_url, leader_election=election, **config)
        self.name = name


@dataclass
class _AsUser:
    """The emulator seen with another bearer token."""

    api: Any
    token: str

    @property
    def url(self) -> str:
        return self.api.url

    def connection(self) -> Connection:
        return Connection(server=self.api.url, token=self.token)


def holder(api: Any) -> str | None:
    """The pod part of the controller Lease's holder (``a`` for ``a_test``), or None."""
    lease = api.get(LEASE, 'kubedag-controller', NS)
    info = None if lease is None else parse_lease(lease)
    return None if info is None else info.pod_name()


def writes(api: Any) -> list[tuple[int, str, str, str]]:
    """Every write request the emulator received, in arrival order: (id, token, method, path); Lease writes and
    the fake kubelet's (no token) left out."""
    out = []
    for request in list(api.handler._requests):
        token = (request.headers.get('Authorization') or '').removeprefix('Bearer ')
        if request.method in WRITES and token and '/leases/' not in request.url.path and \
                not request.url.path.endswith('/leases'):
            out.append((request.id, token, request.method, request.url.path))
    return out


def cut_off_from_lease(monkeypatch: Any, name: str) -> None:
    """From now on the emulator answers 503 to every Lease request of replica ``name`` (its other requests, pod
    creations and status writes included, still go through): it can no longer renew."""
    from tests.k8s.emulator import errors
    from tests.k8s.emulator import server as emulator_server

    original = emulator_server.KubeApiEmulator._dispatch

    async def dispatch(self: Any, request: Any) -> Any:
        if '/leases' in request.url.path and request.headers.get('Authorization') == f'Bearer {name}':
            raise errors.StatusError(503, 'ServiceUnavailable', f'{name} is cut off from its Lease')
        return await original(self, request)

    monkeypatch.setattr(emulator_server.KubeApiEmulator, '_dispatch', dispatch)


class ControllerProcess:
    """``kubedag controller --leader-elect`` (``leader_elect=False``: without) as a process (``kill()`` is SIGKILL,
    ``terminate()`` SIGTERM)."""

    def __init__(self, kubeconfig: Path, db_url: str, name: str, log_dir: Path,
                 timing: tuple[str, str, str] = ('15s', '10s', '2s'), *, leader_elect: bool = True) -> None:
        self.name = name
        env = {**os.environ, 'POD_NAME': name, 'KUBECONFIG': str(kubeconfig)}
        self.log = open(log_dir / f'controller-{name}.log', 'ab')  # noqa: SIM115 - closed by wait()
        election = ['--leader-elect', '--leader-elect-lease-duration', timing[0], '--leader-elect-renew-deadline',
                    timing[1], '--leader-elect-retry-period', timing[2], '--leader-elect-lease-namespace', NS]
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'kubedag.cli.main', 'controller', '-n', NS, '--database-url', db_url,
             '--liveness-port', '0', '--pod-retention', '10m', *(election if leader_elect else [])],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.wait()

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float | None = None) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        elif not self.log.closed:
            self.log.close()

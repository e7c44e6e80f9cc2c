"""`kubedag scheduler` as a process, shared by the tests that run it (tests/local, tests/metrics): a temporary
KUBEDAG_HOME (``home``), the ``scheduler_process`` fixture that starts schedulers on a DAG folder and stops
every one still running at the end, and the helpers that wait for and read what they did."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

KUBEDAG = str(Path(sys.executable).with_name("kubedag"))
WAIT = 90.0  # seconds any one condition may take on a loaded machine (not a timing assertion)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """KUBEDAG_HOME in tmp_path (the SQLite metadata DB and the logs), no KUBEDAG_DATABASE_URL."""
    monkeypatch.setenv("KUBEDAG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBEDAG_DATABASE_URL", raising=False)
    return tmp_path / "home"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    """``condition()``'s first truthy value, polled for up to :data:`WAIT` seconds (an ``OSError``, a server not
    listening yet, counts as falsy)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            value = condition()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def db_rows(sql: str, url: str | None = None) -> list[tuple]:
    """The rows of ``sql`` on the metadata DB ``url`` (default: KUBEDAG_HOME's)."""
    import sqlalchemy as sa

    from kubedag.store.db import open_store

    engine, _ = open_store(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def fresh_db(postgres_url: str, name: str) -> str:
    """The URL of database ``name``, created empty (dropped first) on the server of the admin URL ``postgres_url``."""
    import sqlalchemy as sa

    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)


class SchedulerProcess:
    """``kubedag scheduler --dags-folder FOLDER --dag-dir-list-interval 0.5 [--metrics-port PORT] EXTRA...``.

    ``metrics``: serve /metrics and the probes at :attr:`url`. :meth:`stop` sends a signal and returns the output
    (stdout and stderr together) once it exited; :meth:`kill` is ``kill -9``."""

    def __init__(self, folder: Path, *extra: str, metrics: bool = False, command: str = "scheduler") -> None:
        self.port = free_port() if metrics else 0
        self.url = f"http://127.0.0.1:{self.port}"
        args = [KUBEDAG, command, "--dags-folder", str(folder)]
        if command == "scheduler":
            args += ["--dag-dir-list-interval", "0.5"]
        if metrics:
            args += ["--metrics-port", str(self.port)]
        self.process = subprocess.Popen([*args, *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=os.environ.copy())
        self.output = ""

    @property
    def pid(self) -> int:
        """The scheduler's pid."""
        return self.process.pid

    def running(self) -> bool:
        """Whether the process has not exited."""
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> str:
        """Send ``sig`` (if it still runs), wait for the exit; its output."""
        if self.running():
            self.process.send_signal(sig)
        out, _ = self.process.communicate(timeout=WAIT)
        self.output += out or ""
        return self.output

    def kill(self) -> None:
        """SIGKILL, as ``kill -9`` (its tries' process groups live on)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def scheduler_process() -> Iterator[Callable[..., SchedulerProcess]]:
    """``start(folder, *extra, metrics=False, command="scheduler")`` -> a running :class:`SchedulerProcess`; those
    still running at the end of the test are stopped with SIGTERM."""
    started: list[SchedulerProcess] = []

    def start(folder: Path, *extra: str, metrics: bool = False, command: str = "scheduler") -> SchedulerProcess:
        started.append(SchedulerProcess(folder, *extra, metrics=metrics, command=command))
        return started[-1]

    yield start
    for proc in started:
        if proc.running():
            proc.stop()


def trigger(folder: Path, dag: str, *extra: str) -> None:
    """``kubedag dags trigger DAG --dags-folder FOLDER EXTRA...``, which must succeed."""
    done = subprocess.run([KUBEDAG, "dags", "trigger", dag, "--dags-folder", str(folder), *extra], capture_output=True,
                          text=True, env=os.environ.copy(), timeout=WAIT)
    assert done.returncode == 0, done.stderr


def start_scheduler(folder: Path, *extra: str) -> subprocess.Popen:
    """A :class:`SchedulerProcess`'s ``Popen`` (for tests that signal it themselves)."""
    return SchedulerProcess(folder, *extra).process


@contextmanager
def scheduler_thread(folder: Path, sessions: Any, join: float = WAIT) -> Iterator[tuple[Any, list[str]]]:
    """A local :class:`~kubedag.local.scheduler.Scheduler` over ``sessions`` (the metadata DB's session factory)
    reading ``folder`` every 0.2 s, run in a thread: yields ``(scheduler, the lines it said)``; stopped and joined
    (at most ``join`` seconds) on exit."""
    from kubedag.local.scheduler import Scheduler, SchedulerOptions
    from kubedag.store import config
    from kubedag.store.scheduler_store import SqlSchedulerStore

    lines: list[str] = []
    scheduler = Scheduler(SqlSchedulerStore(sessions),
                          SchedulerOptions(folder=folder, logs_dir=config.logs_dir(), dag_dir_list_interval=0.2),
                          say=lines.append)
    thread = threading.Thread(target=scheduler.run)
    thread.start()
    try:
        yield scheduler, lines
    finally:
        scheduler.stop()
        thread.join(timeout=join)
    assert not thread.is_alive(), "the scheduler did not stop"


def queue_manual_run(sessions: Any, dag_id: str, run_id: str = "manual__1", **fields: Any) -> None:
    """Insert a ``queued`` manual run of ``dag_id`` dated 2026-05-01 UTC, as ``kubedag dags trigger`` does
    (``fields``: more columns, e.g. ``conf``)."""
    from kubedag.store import repository

    when = datetime(2026, 5, 1, tzinfo=timezone.utc)
    with sessions.begin() as s:
        repository.create_dag_run(s, dag_id=dag_id, run_id=run_id, run_type="manual", logical_date=when,
                                  data_interval_start=when, data_interval_end=when, **fields)

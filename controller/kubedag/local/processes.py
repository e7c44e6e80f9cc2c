"""Task instance tries as local processes.

Each try runs ``command + args`` (as a Kubernetes container would run them) in its own process group,
so an execution timeout or a cancelled run kills the whole tree, with stdout and stderr appended to
the try's log file. A thread per process waits for it and reports ``(key, exit_code)`` on a queue,
so the runner reacts to a finished task at once instead of polling.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KILL_GRACE_SECONDS = 5.0
"""Seconds between SIGTERM and SIGKILL when a try is killed, like a pod's termination grace period."""


@dataclass
class LocalProcess:
    """One running try. ``key`` is the caller's identifier (e.g. ``(task_id, try_number)``)."""

    key: Any
    popen: subprocess.Popen[bytes]
    log_path: Path
    killed_reason: str | None = field(default=None)

    def kill(self, reason: str, grace_seconds: float = KILL_GRACE_SECONDS) -> None:
        """Send SIGTERM to the process group, then SIGKILL after ``grace_seconds`` if it is still alive."""
        self.killed_reason = reason
        _signal_group(self.popen.pid, signal.SIGTERM)

        def _escalate() -> None:
            try:
                self.popen.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                _signal_group(self.popen.pid, signal.SIGKILL)

        threading.Thread(target=_escalate, daemon=True).start()


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class ProcessLauncher:
    """Starts tries as processes and reports their exits on :attr:`exits` as ``(key, exit_code)``.

    A negative exit code means the process was killed by that signal number, as ``subprocess`` reports.
    """

    def __init__(self) -> None:
        self.exits: queue.Queue[tuple[Any, int]] = queue.Queue()
        self.running: dict[Any, LocalProcess] = {}

    def start(
        self, key: Any, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path
    ) -> LocalProcess:
        """Start ``argv`` with ``env`` (the whole environment) in ``cwd``, appending output to ``log_path``
        (whose folder must exist: the runner creates it once, before writing the try's header).

        Raises:
            OSError: if the program cannot be started (not found, not executable); nothing keeps running.
        """
        with open(log_path, "ab", buffering=0) as log:
            popen = subprocess.Popen(  # noqa: S603 - running the user's task is the point
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        proc = LocalProcess(key=key, popen=popen, log_path=log_path)
        self.running[key] = proc
        threading.Thread(target=self._wait, args=(proc,), daemon=True).start()
        return proc

    def _wait(self, proc: LocalProcess) -> None:
        code = proc.popen.wait()
        self.exits.put((proc.key, code))

    def reap(self, key: Any) -> LocalProcess | None:
        """Forget a finished process and return it (None if unknown)."""
        return self.running.pop(key, None)

    def wait_killed(self, timeout: float = KILL_GRACE_SECONDS + 1.0) -> None:
        """Wait (up to ``timeout`` seconds each) for processes that were killed to be gone."""
        for proc in list(self.running.values()):
            if proc.killed_reason is not None:
                try:
                    proc.popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    _signal_group(proc.popen.pid, signal.SIGKILL)

    def kill_all(self, reason: str) -> None:
        """Kill every running process group (used when the runner is interrupted)."""
        for proc in list(self.running.values()):
            proc.kill(reason, grace_seconds=1.0)

"""Task instance tries as local processes.

Each try runs ``command + args`` (as a Kubernetes container would run them) in its own process group,
so an execution timeout or a cancelled run kills the whole tree, with stdout and stderr appended to
the try's log file. A thread per process waits for it and reports ``(key, exit_code)`` on a queue,
so the runner reacts to a finished task at once instead of polling.

Tries outlive the process that started them (a scheduler killed with ``kill -9`` leaves their process groups
running). To find them again, :meth:`ProcessLauncher.start` can write a *pid file* (``<pid> <start time>``: the
process's start time in clock ticks since boot, from ``/proc``, so a recycled pid is not mistaken for the try)
and run the command under a ``/bin/sh`` wrapper that writes its exit code to an *exit file* when it ends. A
restarted scheduler then :meth:`adopts <ProcessLauncher.adopt>` a try whose process is still alive (it polls the
pid, then reads the exit file) instead of running it twice.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KILL_GRACE_SECONDS = 5.0
"""Seconds between SIGTERM and SIGKILL when a try is killed, like a pod's termination grace period."""
ADOPT_POLL_SECONDS = 0.2
"""How often an adopted process (not our child: it cannot be waited for) is checked for its end."""
LOST_EXIT_CODE = -int(signal.SIGKILL)
"""The exit code reported for an adopted process that ended without writing its exit file (killed)."""

_PID_LINE = 'read -r stat 2>/dev/null < /proc/$$/stat; start() { started=${22}; }; start $stat; echo "$$ $started" > "$KUBEDAG_PID_PATH"'
_EXIT_LINE = 'code=$?; echo "$code" > "$KUBEDAG_EXIT_PATH.tmp" && mv "$KUBEDAG_EXIT_PATH.tmp" "$KUBEDAG_EXIT_PATH"; exit "$code"'
_WRAPPER = f'{_PID_LINE}; "$@"; {_EXIT_LINE}'
"""``sh -c`` script that writes its own pid file to ``$KUBEDAG_PID_PATH`` (``<pid> <start time>``, the start time
field 22 of ``/proc/$$/stat``, empty without ``/proc``) *before* it runs ``"$@"``, then writes the exit code of
``"$@"`` to ``$KUBEDAG_EXIT_PATH`` (atomically). The wrapper writes the pid file, not the scheduler after it
spawned the process: a scheduler killed in between left a try running with no pid file, which the restarted
scheduler failed as lost and ran again while the first process went on."""


def process_start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot, field 22 of ``/proc/<pid>/stat``), "" where
    ``/proc`` does not exist (then only liveness is checked), None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except FileNotFoundError:
        return None if os.path.isdir("/proc") else ("" if pid_alive(pid) else None)
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    if fields and fields[0] == "Z":  # a zombie has ended; only its parent's wait is missing
        return None
    return fields[19] if len(fields) > 19 else ""


def pid_alive(pid: int) -> bool:
    """True if a process ``pid`` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid_file(path: Path) -> tuple[int, str] | None:
    """``(pid, start time)`` from a pid file written by :meth:`ProcessLauncher.start`, None if absent or garbled."""
    try:
        pid_text, _, start = path.read_text(encoding="ascii").strip().partition(" ")
        return int(pid_text), start
    except (OSError, ValueError):
        return None


def read_exit_file(path: Path) -> int | None:
    """The exit code in an exit file (a shell's ``$?``: 128 + N for a process killed by signal N), None if absent."""
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


@dataclass
class LocalProcess:
    """One running try. ``key`` is the caller's identifier (e.g. ``(task_id, try_number)``)."""

    key: Any
    popen: subprocess.Popen[bytes] | None
    log_path: Path
    killed_reason: str | None = field(default=None)
    pid: int = 0
    """The process (group) id; for an adopted process the one read from its pid file."""
    started: float = field(default_factory=time.time)
    """When it started (or was adopted), seconds since the epoch."""

    def __post_init__(self) -> None:
        if self.popen is not None:
            self.pid = self.popen.pid

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (None: forever) for the process to end; True if it has."""
        if self.popen is not None:
            try:
                self.popen.wait(timeout=timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = None if timeout is None else time.monotonic() + timeout
        while pid_alive(self.pid) and process_start_time(self.pid) is not None:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(ADOPT_POLL_SECONDS / 4)
        return True

    def kill(self, reason: str, grace_seconds: float = KILL_GRACE_SECONDS) -> None:
        """Send SIGTERM to the process group, then SIGKILL after ``grace_seconds`` if it is still alive."""
        self.killed_reason = reason
        _signal_group(self.pid, signal.SIGTERM)

        def _escalate() -> None:
            if not self.wait(timeout=grace_seconds):
                _signal_group(self.pid, signal.SIGKILL)

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
        self, key: Any, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path,
        pid_file: Path | None = None, exit_file: Path | None = None,
    ) -> LocalProcess:
        """Start ``argv`` with ``env`` (the whole environment) in ``cwd``, appending output to ``log_path``
        (whose folder must exist: the runner creates it once, before writing the try's header).

        ``pid_file`` and ``exit_file`` (given together): the command runs under a ``/bin/sh`` wrapper that writes
        ``<pid> <start time>`` to ``pid_file`` before the command starts, and the command's exit code to
        ``exit_file`` when it ends (so that a restarted scheduler finds and adopts the process, and learns how it
        ended); a missing program then exits 127 instead of raising.

        Raises:
            OSError: if the program cannot be started (not found, not executable); nothing keeps running.
        """
        argv = list(argv)
        if (pid_file is None) != (exit_file is None):
            raise ValueError("pid_file and exit_file go together: the wrapper writes both")
        if exit_file is not None:
            env = {**env, "KUBEDAG_PID_PATH": str(pid_file), "KUBEDAG_EXIT_PATH": str(exit_file)}
            argv = ["/bin/sh", "-c", _WRAPPER, "kubedag-try", *argv]
        with open(log_path, "ab", buffering=0) as log:
            popen = subprocess.Popen(  # noqa: S603 - running the user's task is the point
                argv,
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

    def adopt(self, key: Any, pid: int, *, log_path: Path, exit_file: Path) -> LocalProcess:
        """Watch a process started by an earlier scheduler (its group outlived it): its exit is reported on
        :attr:`exits` like a child's, with the code in ``exit_file`` (:data:`LOST_EXIT_CODE` if there is none:
        it was killed). Exit codes from the file are a shell's (128 + N after signal N)."""
        proc = LocalProcess(key=key, popen=None, log_path=log_path, pid=pid)
        self.running[key] = proc

        def _watch() -> None:
            proc.wait()
            code = read_exit_file(exit_file)
            self.exits.put((key, LOST_EXIT_CODE if code is None else code))

        threading.Thread(target=_watch, daemon=True).start()
        return proc

    def _wait(self, proc: LocalProcess) -> None:
        assert proc.popen is not None
        code = proc.popen.wait()
        self.exits.put((proc.key, code))

    def reap(self, key: Any) -> LocalProcess | None:
        """Forget a finished process and return it (None if unknown)."""
        return self.running.pop(key, None)

    def wait_killed(self, timeout: float = KILL_GRACE_SECONDS + 1.0) -> None:
        """Wait (up to ``timeout`` seconds each) for processes that were killed to be gone."""
        for proc in list(self.running.values()):
            if proc.killed_reason is not None and not proc.wait(timeout=timeout):
                _signal_group(proc.pid, signal.SIGKILL)

    def kill_all(self, reason: str, grace_seconds: float = 1.0) -> None:
        """Kill every running process group (used when the runner is interrupted): SIGTERM, then SIGKILL after
        ``grace_seconds``."""
        for proc in list(self.running.values()):
            proc.kill(reason, grace_seconds=grace_seconds)

"""A try's process as a restarted scheduler finds it: its pid file (``<pid> <start time>``) and exit file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kubedag.local import processes
from kubedag.local.processes import ProcessLauncher, process_start_time, read_exit_file, read_pid_file

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def wait_for_pid_file(path: Path) -> tuple[int, str]:
    """The pid file's ``(pid, start time)`` once written (the try's process writes it as it starts)."""
    deadline = time.monotonic() + 5
    while (read := read_pid_file(path)) is None or not read[1]:
        assert time.monotonic() < deadline, f"no pid file at {path}"
        time.sleep(0.01)
    return read


def test_a_tries_pid_file_is_written_before_its_command_runs_even_if_the_scheduler_stalls_after_the_spawn(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A scheduler killed (or descheduled) between spawning a try and writing its pid file left a running try that a
    restart could not find: it failed it as lost and ran it again while the first process went on. The process now
    writes its own pid file before the user's command starts. The scheduler's own reads of ``/proc`` are slowed here
    to stand for that stall."""
    real = processes.process_start_time

    def stalled(pid: int) -> str | None:
        time.sleep(1.0)
        return real(pid)

    monkeypatch.setattr(processes, "process_start_time", stalled)
    pid_file, exit_file, log = tmp_path / "try.pid", tmp_path / "try.exit", tmp_path / "try.log"
    launcher = ProcessLauncher()
    proc = launcher.start("try", ["sh", "-c", f"cat {pid_file}; sleep 0.5; exit 3"], env=ENV, cwd=tmp_path,
                          log_path=log, pid_file=pid_file, exit_file=exit_file)
    pid, started = wait_for_pid_file(pid_file)
    assert pid == proc.pid and started == real(proc.pid) and started.isdigit()  # alive: its start time
    assert launcher.exits.get(timeout=10) == ("try", 3)
    assert log.read_text().splitlines()[0] == f"{pid} {started}"  # what the command itself saw: already written
    assert read_exit_file(exit_file) == 3


def test_a_restarted_scheduler_adopts_a_running_try_and_learns_its_exit_code(tmp_path: Path):
    pid_file, exit_file, log = tmp_path / "try.pid", tmp_path / "try.exit", tmp_path / "try.log"
    ProcessLauncher().start("try", ["sh", "-c", "sleep 0.5; exit 7"], env=ENV, cwd=tmp_path, log_path=log,
                            pid_file=pid_file, exit_file=exit_file)  # that scheduler is gone: nothing waits for it
    pid, started = wait_for_pid_file(pid_file)
    assert started == process_start_time(pid)  # alive, and not a recycled pid
    restarted = ProcessLauncher()
    restarted.adopt("try", pid, log_path=log, exit_file=exit_file)
    assert restarted.exits.get(timeout=10) == ("try", 7)


def test_pid_and_exit_files_go_together(tmp_path: Path):
    with pytest.raises(ValueError, match="pid_file and exit_file"):
        ProcessLauncher().start("try", ["true"], env=ENV, cwd=tmp_path, log_path=tmp_path / "log",
                                pid_file=tmp_path / "pid")

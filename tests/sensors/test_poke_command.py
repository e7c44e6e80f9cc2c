"""The /bin/sh poke-mode wrapper, run for real with /bin/sh (dash here, the POSIX shell of the images).

Time is virtual where intervals matter: fake ``date`` and ``sleep`` on PATH read and advance a clock file, so
the backoff and timeout are checked without waiting.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

from kubedag.core.sensors import poke_command

from ._helpers import sensor

COUNTER_CHECK = (
    'n=$(cat "$1" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$1"; '
    '[ "$n" -ge "$2" ] && exit 0; exit 75'
)
"""A check met at its $2-th poke, counting pokes in the file $1."""


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def counter(tmp_path: pathlib.Path, met_at: int) -> list[str]:
    return ["/bin/sh", "-c", COUNTER_CHECK, "check", str(tmp_path / "pokes"), str(met_at)]


@pytest.fixture
def virtual_clock(tmp_path: pathlib.Path) -> dict[str, str]:
    """PATH with a fake ``date`` (prints the clock file) and ``sleep`` (logs and advances it)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    clock, sleeps = tmp_path / "clock", tmp_path / "sleeps"
    clock.write_text("1000\n")
    (bin_dir / "date").write_text(f'#!/bin/sh\ncat "{clock}"\n')
    (bin_dir / "sleep").write_text(
        f'#!/bin/sh\necho "$1" >> "{sleeps}"\nt=$(cat "{clock}")\necho $((t + $1)) > "{clock}"\n'
    )
    for tool in ("date", "sleep"):
        (bin_dir / tool).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLEEPS": str(sleeps)}


def sleeps(env: dict[str, str]) -> list[int]:
    path = pathlib.Path(env["SLEEPS"])
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def test_met_after_three_pokes(tmp_path):
    result = run(poke_command(counter(tmp_path, 3), sensor(pokeInterval=0)))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pokes").read_text().strip() == "3"
    assert result.stderr.splitlines() == [
        "kubedag: poke 1: not met, next in 0s",
        "kubedag: poke 2: not met, next in 0s",
    ]


def test_met_at_once_prints_nothing_and_passes_the_check_output_through():
    result = run(poke_command(["/bin/sh", "-c", "echo found it"], sensor()))
    assert (result.returncode, result.stdout, result.stderr) == (0, "found it\n", "")


def test_timeout_exits_75_after_the_last_not_met_poke(tmp_path):
    result = run(poke_command(counter(tmp_path, 99), sensor(pokeInterval=0, timeout=0)))
    assert result.returncode == 75
    assert (tmp_path / "pokes").read_text().strip() == "1"
    assert result.stderr.strip() == "kubedag: poke 1: not met, timed out after 0s (timeout 0s)"


@pytest.mark.parametrize("code", [1, 3, 74, 76, 127])
def test_any_other_exit_code_is_a_failure_passed_through(tmp_path, code):
    result = run(poke_command(["/bin/sh", "-c", f"exit {code}"], sensor(pokeInterval=0)))
    assert result.returncode == code
    assert result.stderr.strip() == f"kubedag: poke 1: check failed with exit code {code}"


def test_a_missing_program_is_a_failure_not_a_wait(tmp_path):
    result = run(poke_command([str(tmp_path / "no-such-check")], sensor(pokeInterval=0)))
    assert result.returncode == 127


def test_arguments_survive_byte_for_byte(tmp_path):
    tricky = ["a b", "it's", '"quoted"', "$HOME", "$(id)", "`id`", "\\", "", "*", "-n", "line\nbreak", "ü €"]
    out = tmp_path / "argv.json"
    check = [sys.executable, "-c", "import json, sys; json.dump(sys.argv[2:], open(sys.argv[1], 'w'))", str(out)]
    result = run(poke_command([*check, *tricky], sensor()))
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text()) == tricky


def test_argv_is_never_in_the_script():
    command = poke_command(["echo", "$(touch /tmp/pwned)"], sensor())
    assert command[:2] == ["/bin/sh", "-c"] and command[3:] == ["kubedag-poke", "echo", "$(touch /tmp/pwned)"]
    assert "pwned" not in command[2]


def test_empty_argv_is_rejected():
    with pytest.raises(ValueError, match="argv"):
        poke_command([], sensor())


def test_fixed_interval_and_the_last_sleep_cut_to_the_deadline(tmp_path, virtual_clock):
    result = run(poke_command(counter(tmp_path, 99), sensor(pokeInterval="30s", timeout="100s")), virtual_clock)
    assert result.returncode == 75
    assert sleeps(virtual_clock) == [30, 30, 30, 10]
    assert result.stderr.splitlines()[-2:] == [
        "kubedag: poke 4: not met, next in 10s",
        "kubedag: poke 5: not met, timed out after 100s (timeout 100s)",
    ]


def test_exponential_backoff_doubles_up_to_max_wait_and_the_time_left(tmp_path, virtual_clock):
    spec = sensor(pokeInterval="10s", timeout="100s", exponentialBackoff=True, maxWait="30s")
    result = run(poke_command(counter(tmp_path, 99), spec), virtual_clock)
    assert result.returncode == 75
    assert sleeps(virtual_clock) == [10, 20, 30, 30, 10]


def test_exponential_backoff_without_max_wait_and_with_a_zero_interval(tmp_path, virtual_clock):
    result = run(poke_command(counter(tmp_path, 6), sensor(pokeInterval=0, exponentialBackoff=True)), virtual_clock)
    assert result.returncode == 0
    assert sleeps(virtual_clock) == [1, 2, 4, 8, 16]  # Airflow's min_backoff is at least 1 s


def test_sub_second_durations_round_up_to_whole_seconds(tmp_path, virtual_clock):
    result = run(poke_command(counter(tmp_path, 3), sensor(pokeInterval="1500ms")), virtual_clock)
    assert result.returncode == 0
    assert sleeps(virtual_clock) == [2, 2]


def test_met_after_sleeping_counts_as_met(tmp_path, virtual_clock):
    result = run(poke_command(counter(tmp_path, 4), sensor(pokeInterval="1m", timeout="1h")), virtual_clock)
    assert result.returncode == 0
    assert sleeps(virtual_clock) == [60, 60, 60]


def test_sigterm_stops_the_check_and_the_wrapper(tmp_path):
    # A pod being deleted: the shell (PID 1 in the pod, which ignores untrapped signals) gets SIGTERM and
    # must stop its check rather than wait for it.
    pid_file = tmp_path / "check.pid"
    check = ["/bin/sh", "-c", 'echo $$ > "$1.tmp" && mv "$1.tmp" "$1" && exec sleep 1000', "check", str(pid_file)]
    proc = subprocess.Popen(poke_command(check, sensor()), stderr=subprocess.PIPE, text=True)
    try:
        assert _eventually(lambda: pid_file.exists() or proc.poll() is not None)
        check_pid = int(pid_file.read_text())
        proc.terminate()
        assert proc.wait(timeout=20) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _eventually(lambda: _gone(check_pid))


def _eventually(condition, tries: int = 2000) -> bool:
    """Poll ``condition`` every 10 ms, at most ``tries`` times."""
    for _ in range(tries):
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def _gone(pid: int) -> bool:
    """The process ``pid`` has exited (it may linger as a zombie of whoever reaps orphans)."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True

"""kubedag end to end on a kind cluster: ``scripts/e2e`` (build both images, install the Helm chart with the
bundled PostgreSQL, run the supermarket example until a DAGRun succeeds, use the CLI, run the API-server
conformance tests against the cluster).

Needs docker (with a running daemon), kind, kubectl and helm; without any of them the test is skipped and
the reason names what is missing. It takes minutes and deletes its cluster at the end unless
``KEEP_CLUSTER=1`` (the script's other settings, ``E2E_*``, pass through the environment as well).
Deselect it with ``-m "not e2e"``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "e2e"
TOOLS = ("docker", "kind", "kubectl", "helm")
TIMEOUT_S = 60 * 60

pytestmark = pytest.mark.e2e


def missing_prerequisites() -> list[str]:
    """What scripts/e2e needs and this machine lacks, in words."""
    missing = [f"{tool} (not on PATH)" for tool in TOOLS if shutil.which(tool) is None]
    if shutil.which("docker") is not None:
        try:
            info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
            if info.returncode != 0:
                reason = (info.stderr.strip().splitlines() or ["no output"])[-1]
                missing.append(f"a running docker daemon (`docker info`: {reason})")
        except subprocess.TimeoutExpired:
            missing.append("a running docker daemon (`docker info` timed out)")
    return missing


def test_missing_prerequisites_are_named(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    assert missing_prerequisites() == [f"{tool} (not on PATH)" for tool in TOOLS]


def test_script_is_an_executable_bash_script():
    assert SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")
    assert SCRIPT.stat().st_mode & 0o111
    bash = shutil.which("bash")
    if bash:
        subprocess.run([bash, "-n", str(SCRIPT)], check=True)


def test_kind_end_to_end():
    missing = missing_prerequisites()
    if missing:
        pytest.skip("kind end-to-end test needs " + ", ".join(missing))
    # Output is not captured here: pytest shows it on failure, `pytest -s` streams it.
    result = subprocess.run([str(SCRIPT)], cwd=REPO, timeout=TIMEOUT_S, check=False)
    assert result.returncode == 0, f"scripts/e2e exited {result.returncode}; its output is above"

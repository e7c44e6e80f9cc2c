"""The layers are checked by a tool: import-linter's contracts in ``pyproject.toml`` (entry points > adapters >
application > pure core; a core with no I/O library; no import cycles), and no module grows past about 500
lines."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "controller" / "kubedag"
MAX_LINES = 550
# Modules still over the limit, each to be split by issue 9's restructuring; none may be added.
OVERSIZE: set[str] = set()


def test_import_linter_contracts_are_kept():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is a test dependency: run scripts/bootstrap"
    done = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_stays_under_about_500_lines(path):
    rel = str(path.relative_to(PACKAGE))
    lines = len(path.read_text().splitlines())
    if rel in OVERSIZE:
        pytest.xfail(f"{rel} has {lines} lines: still to be split (issue 9)")
    assert lines <= MAX_LINES, f"{rel} has {lines} lines; split it (limit about 500)"

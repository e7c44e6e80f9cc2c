"""The emulator's conformance suite, unchanged, against the real control plane (as a user points it at a cluster)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.controlplane.cluster import ROOT, ControlPlane

pytestmark = pytest.mark.controlplane


def test_the_emulator_conformance_suite_passes_on_the_real_api_server(control_plane: ControlPlane):
    env = {**os.environ, 'KUBEDAG_CONFORMANCE_KUBECONFIG': str(control_plane.kubeconfig)}
    done = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-rs', '-p', 'no:cacheprovider',
                           'tests/k8s/test_emulator_conformance.py'],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stdout[-6000:]
    assert re.search(r'\d+ passed', summary) and 'failed' not in summary, summary
    skipped = [line for line in done.stdout.splitlines() if line.startswith('SKIPPED')]
    # only the @emulator_only tests are skipped, and each says why
    assert all('emulator-only hook' in line for line in skipped), skipped

"""Fixtures of the Kubernetes test-support layer (see tests/k8s/emulator/fixtures.py)."""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from tests.k8s.emulator.fixtures import fake_kubelet, k8s_api, k8s_api_options, k8s_crd_files  # noqa: F401

_OUR_THREADS = ('k8s-api-emulator', 'fake-kubelet', 'kopf-under-test')


def _child_pids() -> set[int]:
    """Direct children of this process, from /proc (Linux)."""
    me, children = os.getpid(), set()
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    fields = f.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me and fields[0] != 'Z':
                children.add(int(entry))
    return children


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    """Every server thread, kopf thread and pod process must be gone once a test's fixtures are torn down."""
    children_before = _child_pids()
    yield
    leaked = [t.name for t in threading.enumerate() if t.is_alive() and t.name.startswith(_OUR_THREADS)]
    assert not leaked, f'threads left running: {leaked}'
    assert not (_child_pids() - children_before), 'pod processes left running'

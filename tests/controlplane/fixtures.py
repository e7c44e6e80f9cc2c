"""
Fixtures of the real control-plane tier (marker ``controlplane``); ``conftest.py`` re-exports them.

* ``control_plane`` (session) — a :class:`ControlPlane` started once per test run from the binary
  ``scripts/controlplane build`` made (``scripts/test`` builds it before pytest runs: the ~20 min Go build
  never runs inside a test). Skipped, with one line saying why, without Go or without the built binary.
* ``real_api`` (session) — a :class:`RealApiServer` with the admin identity.
* ``real_namespace`` — a fresh namespace per test (its ``default`` ServiceAccount ready); afterwards its pods
  are removed at once and the namespace deleted (not awaited).
* ``real_kubelet`` — the fake kubelet (``tests/k8s/emulator/kubelet.py``) as a node of the real control
  plane, per test; its Node is Ready and the scheduler can bind to it.
"""
from __future__ import annotations

import pathlib
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.controlplane.cluster import ControlPlane, RealApiServer, cached_binary_dir, find_go
from tests.k8s.emulator.kubelet import FakeKubelet
from tests.k8s.emulator.node import KubeletAccess

NODE = 'kubedag-fake-node'
T = TypeVar('T')


def skip_reason() -> str | None:
    """Why the tier cannot run here, or None."""
    if cached_binary_dir() is not None:
        return None
    if find_go() is None:
        return 'no Go (>= 1.26) here: the real control-plane tier needs it to build Kubernetes (scripts/controlplane build)'
    return 'the control plane is not built yet: run scripts/controlplane build (scripts/test does, ~20 min the first time)'


@pytest.fixture(scope='session')
def control_plane() -> Iterator[ControlPlane]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    state = pathlib.Path(tempfile.mkdtemp(prefix='kubedag-controlplane-'))
    plane = ControlPlane(state).start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope='session')
def real_api(control_plane: ControlPlane) -> RealApiServer:
    return control_plane.api()


def wait(check: Callable[[], T], timeout: float = 60.0, what: str = 'condition') -> T:
    """Poll ``check()`` until truthy; return its value (TimeoutError naming ``what``)."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f'{what} not reached in {timeout}s')
        time.sleep(0.1)
    return value


def make_namespace(api: RealApiServer, prefix: str = 't') -> str:
    """Create a namespace and wait for its ``default`` ServiceAccount (pods are admitted only then)."""
    name = f'{prefix}-{uuid.uuid4().hex[:8]}'
    api.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': name}})
    wait(lambda: api.get('v1/serviceaccounts', 'default', name), 30, f'the default ServiceAccount of {name}')
    return name


def drop_namespace(api: RealApiServer, name: str) -> None:
    """Remove a namespace's pods at once (no kubelet may be left to confirm them), then delete it."""
    for pod in api.list('v1/pods', name):
        api.request('DELETE', api.path('v1/pods', pod['metadata']['name'], name),
                    {'apiVersion': 'v1', 'kind': 'DeleteOptions', 'gracePeriodSeconds': 0})
    api.request('DELETE', api.path('v1/namespaces', name))


@pytest.fixture
def real_namespace(real_api: RealApiServer) -> Iterator[str]:
    name = make_namespace(real_api)
    yield name
    drop_namespace(real_api, name)


def node_schedulable(api: RealApiServer) -> bool:
    """The Node is Ready and carries no taint (the node lifecycle controller lifts ``not-ready`` once Ready)."""
    node = api.get('v1/nodes', NODE)
    if node is None:
        return False
    ready = any(c['type'] == 'Ready' and c['status'] == 'True' for c in node.get('status', {}).get('conditions', []))
    return ready and not node.get('spec', {}).get('taints')


def start_kubelet(control_plane: ControlPlane, workdir: pathlib.Path) -> FakeKubelet:
    """A fake kubelet with the node identity of ``control_plane``, once its Node is schedulable."""
    kubelet = FakeKubelet(KubeletAccess.from_controlplane(control_plane.state_dir), node_name=NODE, workdir=workdir)
    kubelet.start()
    try:
        wait(lambda: node_schedulable(control_plane.api()), 60, f'node {NODE} Ready without taints')
    except BaseException:
        kubelet.stop()
        raise
    return kubelet


@pytest.fixture
def real_kubelet(control_plane: ControlPlane, tmp_path: pathlib.Path) -> Iterator[FakeKubelet]:
    workdir = tmp_path / 'kubelet'
    workdir.mkdir()
    kubelet = start_kubelet(control_plane, workdir)
    yield kubelet
    kubelet.stop()

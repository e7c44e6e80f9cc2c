"""Fixtures of the behaviour suite: the emulated cluster of the controller's tests (the project's CRDs, a fake
kubelet, a SQLite metadata DB), requested only by the cluster parametrisations."""
from __future__ import annotations

import os
import pathlib
import sys
from collections.abc import Iterator

import pytest

from tests.controller.conftest import k8s_crd_files, sqlite_url  # noqa: F401
from tests.k8s.conftest import _no_leaks  # noqa: F401 - every emulator thread and pod process must end
from tests.k8s.emulator.fixtures import k8s_api, k8s_api_options  # noqa: F401
from tests.k8s.emulator.kubelet import FakeKubelet


@pytest.fixture
def fake_kubelet(k8s_api, tmp_path: pathlib.Path) -> Iterator[FakeKubelet]:  # noqa: F811 - k8s_api is a fixture
    """The emulator's fake kubelet, with the test interpreter's folder first on PATH: a `python` that a pod's shell
    starts (a poke-mode built-in sensor's loop runs ``python -m kubedag.sensors``) is then one with kubedag
    installed, as in kubedag's image (the kubelet itself maps only a pod's first word ``python`` to it)."""
    workdir = tmp_path / 'kubelet'
    workdir.mkdir()
    path = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    with FakeKubelet(k8s_api.url, workdir=workdir, env={'PATH': path}) as kubelet:
        yield kubelet

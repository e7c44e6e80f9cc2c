"""
Pytest fixtures for the emulator and the fake kubelet.

``tests/k8s/conftest.py`` re-exports them; another conftest can do the same::

    from tests.k8s.emulator.fixtures import k8s_api, k8s_api_options, k8s_crd_files, fake_kubelet  # noqa: F401

* ``k8s_crd_files`` — CRD YAML files served from the start (override it to
  load the project's ``crds/*.yaml``); default: the emulator's own test CRD.
* ``k8s_api_options`` — keyword options of :class:`KubeApiEmulator`
  (``bookmark_interval``, ``history_limit``, ``watch_timeout``); default ``{}``.
* ``k8s_api`` — a started :class:`EmulatedApiServer` (function scope: every
  test gets a fresh, empty cluster with the default namespaces).
* ``fake_kubelet`` — a started :class:`FakeKubelet` on that server, working
  in ``tmp_path / 'kubelet'``; stopped (processes killed) before the server.
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from .kubelet import FakeKubelet
from .server import EmulatedApiServer

TEST_CRD = pathlib.Path(__file__).resolve().parent.parent / 'crds' / 'widgets.yaml'


@pytest.fixture
def k8s_crd_files() -> list[pathlib.Path]:
    return [TEST_CRD]


@pytest.fixture
def k8s_api_options() -> dict[str, Any]:
    return {}


@pytest.fixture
def k8s_api(k8s_crd_files: list[pathlib.Path], k8s_api_options: dict[str, Any]) -> Iterator[EmulatedApiServer]:
    with EmulatedApiServer(crd_files=k8s_crd_files, **k8s_api_options) as api:
        yield api


@pytest.fixture
def fake_kubelet(k8s_api: EmulatedApiServer, tmp_path: pathlib.Path) -> Iterator[FakeKubelet]:
    workdir = tmp_path / 'kubelet'
    workdir.mkdir()
    with FakeKubelet(k8s_api.url, workdir=workdir) as kubelet:
        yield kubelet

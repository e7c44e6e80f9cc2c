"""Fixtures of the controller's emulated-cluster tests: the project's CRDs served, a fake kubelet, a DB."""
from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from tests.k8s.conftest import _no_leaks  # noqa: F401 - every thread and pod process must end
from tests.k8s.emulator.fixtures import fake_kubelet, k8s_api, k8s_api_options  # noqa: F401

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def k8s_crd_files() -> list[pathlib.Path]:
    return sorted((ROOT / 'crds').glob('*.yaml'))


@pytest.fixture
def sqlite_url(tmp_path: pathlib.Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'kubedag.db'}"

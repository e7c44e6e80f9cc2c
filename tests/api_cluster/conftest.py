"""Fixtures of the cluster side of the REST API: the emulator serving kubedag's CRDs with TokenReview and
SubjectAccessReview (:class:`tests.k8s.emulator.auth.EmulatedAuth`), the fake kubelet, the real controller in a
thread, and the cluster adapters (:class:`kubedag.k8s.catalog.ClusterCatalog` and friends) on a KubeApi."""
from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from kubedag.k8s.kubeapi import connect
from tests.controller.harness import RunningController
from tests.k8s.conftest import _no_leaks  # noqa: F401 - every emulator thread and pod process must end
from tests.k8s.emulator.auth import EmulatedAuth
from tests.k8s.emulator.fixtures import fake_kubelet, k8s_api, k8s_api_options  # noqa: F401

ROOT = pathlib.Path(__file__).resolve().parents[2]
KUBEDAG = 'kubedag.io/v1alpha1'
DAGS, DAGRUNS, BACKFILLS, POOLS = (f'{KUBEDAG}/{p}' for p in ('dags', 'dagruns', 'backfills', 'pools'))
OTHER = 'team-b'
"""A second namespace the controller watches; the API serves it as ``team-b.<name>``."""


@pytest.fixture
def k8s_crd_files() -> list[pathlib.Path]:
    return sorted((ROOT / 'crds').glob('*.yaml'))


@pytest.fixture
def auth(k8s_api: Any) -> EmulatedAuth:
    """TokenReview and SubjectAccessReview answered from the test's tokens and grants."""
    return EmulatedAuth.install(k8s_api)


@pytest.fixture
def kube(k8s_api: Any, tmp_path: pathlib.Path) -> Iterator[Any]:
    """A :class:`kubedag.k8s.kubeapi.KubeApi` on the emulator, home namespace ``default``; ``team-b`` exists."""
    k8s_api.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': OTHER}})
    with connect(str(k8s_api.kubeconfig(tmp_path / 'kubeconfig')), namespace='default') as api:
        yield api


@pytest.fixture
def controller(k8s_api: Any, fake_kubelet: Any, kube: Any, tmp_path: pathlib.Path) -> Iterator[RunningController]:
    """The controller watching ``default`` and ``team-b``, its history in SQLite."""
    with RunningController(k8s_api, f"sqlite:///{tmp_path / 'kubedag.db'}", namespaces=['default', OTHER]) as running:
        yield running


def dag(name: str, tasks: list[dict[str, Any]], namespace: str = 'default', **spec: Any) -> dict[str, Any]:
    return {'apiVersion': KUBEDAG, 'kind': 'DAG', 'metadata': {'name': name, 'namespace': namespace},
            'spec': {'defaults': {'image': 'busybox:1.36'}, 'tasks': tasks, **spec}}

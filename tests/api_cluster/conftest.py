"""Fixtures of the cluster side of the REST API: the emulator serving kubedag's CRDs with TokenReview and
SubjectAccessReview (:class:`tests.k8s.emulator.auth.EmulatedAuth`), the fake kubelet, the real controller in a
thread, and the cluster adapters (:class:`kubedag.k8s.catalog.ClusterCatalog` and friends) on a KubeApi."""
from __future__ import annotations

import pathlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from kubedag.cli.api_cluster import cluster_history, cluster_services
from kubedag.k8s.kubeapi import connect
from tests.controller.harness import RunningController, wait_until
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


@dataclass
class ClusterApi:
    """``kubedag api --cluster`` served in-process (uvicorn in a thread) on the emulator: ``url``, the admin's
    ``token`` (a TokenReview-accepted token with every kubedag verb), the ``auth`` emulation and the ``kube``
    client of the server."""

    url: str
    token: str
    auth: EmulatedAuth
    kube: Any
    services: Any


def grant_admin(auth: EmulatedAuth, subject: str) -> None:
    """Every verb on every kubedag and core resource, in every namespace (as cluster-admin)."""
    auth.grant(subject, ['*'], ['*'], api_groups=['kubedag.io', ''])


@pytest.fixture
def cluster_api_routes() -> Any:
    """``services -> routers`` served beside the API (none here; the UI tests serve the web UI)."""
    return lambda services: []


@pytest.fixture
def cluster_api(kube: Any, auth: EmulatedAuth, controller: Any, tmp_path: pathlib.Path,
                cluster_api_routes: Any) -> Iterator[ClusterApi]:
    """The API server on the emulator with the controller running and the controller's DB as its history, plus
    ``cluster_api_routes(services)``."""
    import socket
    import threading

    from kubedag.api import create_app
    from kubedag.api.app import serve

    history, close_history = cluster_history(controller.db_url)
    services = cluster_services(kube, history=history, namespaces=(OTHER,))
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    run, stop = serve(create_app(services, extra_routes=cluster_api_routes(services)), '127.0.0.1', port)
    thread = threading.Thread(target=run, name='kopf-under-test-api', daemon=True)
    thread.start()
    token = auth.add_token('admin')
    grant_admin(auth, 'user:admin')
    url = f'http://127.0.0.1:{port}'
    wait_until(lambda: _answers(url), what='the API server to listen')
    try:
        yield ClusterApi(url, token, auth, kube, services)
    finally:
        stop()
        thread.join(10)
        close_history()


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f'{url}/healthz', timeout=2) as response:
            return response.status == 200
    except OSError:
        return False

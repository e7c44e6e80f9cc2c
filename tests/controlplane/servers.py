"""
Server-agnostic fixtures: ``k8s_api`` and ``fake_kubelet`` on the emulator or on the real control plane.

A test directory's conftest imports ``k8s_api``, ``fake_kubelet`` and ``k8s_server`` from here, and opts tests
into the real server with :func:`on_both_servers` from its ``pytest_generate_tests``: those tests then run
twice, ``[emulator]`` and ``[real]`` (marker ``controlplane``; skipped without Go). Test bodies stay as they
are: on the real server ``k8s_api`` is a :class:`RealApiServer` with the emulator's helpers, working in the
namespace ``default`` (the project's CRDs applied once; every DAG, DAGRun, Pool, Backfill, pod, ConfigMap,
Secret and Event a test made is removed before and after it), ``k8s_api.handler['post']`` reads the API server's audit log, and
``fake_kubelet`` is the same fake kubelet joined to the control plane as its node.
"""
from __future__ import annotations

import json
import pathlib
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
import yaml

from tests.controlplane.cluster import ROOT, ControlPlane, RealApiServer
from tests.controlplane.fixtures import start_kubelet, wait
from kubedag.k8s.leader import LeaderElection
from tests.controlplane.rbac import CHART_NAMESPACE, MODES, USED, ChartIdentity, audit_usage, chart_identity
from tests.k8s.emulator import EmulatedApiServer
from tests.k8s.emulator.errors import StatusError
from tests.k8s.emulator.kubelet import FakeKubelet

NS = 'default'
KUBEDAG = 'kubedag.io/v1alpha1'
CLEANED = [f'{KUBEDAG}/{plural}' for plural in ('backfills', 'dagruns', 'dags', 'pools')] + [
    'v1/pods', 'v1/configmaps', 'v1/secrets', 'v1/events']
KEPT = {'kube-root-ca.crt'}  # published into every namespace by the control plane
#: ``real``: the controller as cluster admin; ``rbac-<mode>``: with only the chart's RBAC of that mode.
REAL_SERVERS = ('real', *(f'rbac-{mode}' for mode in MODES))


def on_both_servers(metafunc: pytest.Metafunc, names: Iterable[str]) -> None:
    """Run the tests called ``names`` on the emulator and on the real control plane (call from pytest_generate_tests)."""
    if metafunc.function.__name__ in set(names) and 'k8s_api' in metafunc.fixturenames:
        metafunc.parametrize('k8s_server', ['emulator', *(pytest.param(server, marks=pytest.mark.controlplane)
                                                          for server in REAL_SERVERS)], indirect=True)


class AuditJournal:
    """``journal['post']``: the requests the audit log recorded since it was made, shaped like kmock's journal
    entries as far as the tests read them (``.url.path``, ``.method``; no bodies: the policy is Metadata)."""

    VERBS = {'post': 'create', 'patch': 'patch', 'delete': 'delete', 'put': 'update'}

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def __getitem__(self, method: str) -> list[Any]:
        with self.path.open('rb') as f:
            f.seek(self.offset)
            events = [json.loads(line) for line in f if line.strip()]
        return [types.SimpleNamespace(method=method.upper(), url=types.SimpleNamespace(path=e['requestURI'].split('?')[0]))
                for e in events if e.get('verb') == self.VERBS[method.lower()] and e.get('stage') == 'ResponseComplete'
                and (e.get('responseStatus') or {}).get('code', 0) < 400]


def apply_crds(api: RealApiServer) -> None:
    """Create (or replace) the project's CRDs and wait until they are served."""
    for path in sorted((ROOT / 'crds').glob('*.yaml')):
        crd = yaml.safe_load(path.read_text())
        existing = api.get('apiextensions.k8s.io/v1/customresourcedefinitions', crd['metadata']['name'])
        if existing is None:
            api.create(crd)
        wait(lambda name=crd['metadata']['name']: any(
            c['type'] == 'Established' and c['status'] == 'True' for c in
            ((api.get('apiextensions.k8s.io/v1/customresourcedefinitions', name) or {}).get('status') or {}).get('conditions') or []),
            60, f'CRD {crd["metadata"]["name"]} Established')


def clean_namespace(api: RealApiServer, namespace: str = NS) -> None:
    """Remove what a test made in ``namespace`` (finalizers dropped: no controller is left to remove them)."""
    for resource in CLEANED:
        for obj in api.list(resource, namespace):
            name = obj['metadata']['name']
            if name in KEPT or obj.get('type') == 'kubernetes.io/service-account-token':
                continue
            try:  # the garbage collector or the test's controller may remove it meanwhile
                if obj['metadata'].get('finalizers'):
                    api.patch(resource, name, {'metadata': {'finalizers': None}}, namespace)
                api.request('DELETE', api.path(resource, name, namespace),
                            {'apiVersion': 'v1', 'kind': 'DeleteOptions', 'gracePeriodSeconds': 0,
                             'propagationPolicy': 'Background'})
            except StatusError as e:
                if e.code != 404:
                    raise
    for resource in CLEANED:
        wait(lambda resource=resource: not [o for o in api.list(resource, namespace) if o['metadata']['name'] not in KEPT],
             60, f'{resource} in {namespace} removed')


@pytest.fixture(scope='session')
def _real_with_crds(control_plane: ControlPlane) -> RealApiServer:
    api = control_plane.api()
    apply_crds(api)
    return api


@pytest.fixture(scope='session')
def _chart_identities(_real_with_crds: RealApiServer) -> Callable[[str], ChartIdentity]:
    pytest.importorskip('helm_python', reason='helm-python-sdk (renders the chart) is not installed here')
    made: dict[str, ChartIdentity] = {}

    def identity(mode: str) -> ChartIdentity:
        if mode not in made:
            made[mode] = chart_identity(_real_with_crds, mode)
        return made[mode]
    return identity


@pytest.fixture
def k8s_server(request: pytest.FixtureRequest) -> str:
    """``emulator`` unless a test was opted into both servers (:func:`on_both_servers`)."""
    return getattr(request, 'param', 'emulator')


@pytest.fixture
def k8s_api(k8s_server: str, request: pytest.FixtureRequest, k8s_crd_files: list[pathlib.Path],
            k8s_api_options: dict[str, Any]) -> Iterator[EmulatedApiServer | RealApiServer]:
    """A fresh emulator, or the real control plane's ``default`` namespace emptied before and after the test;
    with ``rbac-<mode>`` the controller's connection carries the chart's ServiceAccount token, and a 403 it
    got fails the test naming the verb and resource."""
    if k8s_server == 'emulator':
        with EmulatedApiServer(crd_files=k8s_crd_files, **k8s_api_options) as api:
            yield api
        return
    control_plane: ControlPlane = request.getfixturevalue('control_plane')
    admin = request.getfixturevalue('_real_with_crds')
    clean_namespace(admin)
    api = RealApiServer(control_plane.kubeconfig)  # this test's: the controller's identity is set on it below
    audit_log = control_plane.state_dir / 'logs' / 'audit.log'
    api.handler = AuditJournal(audit_log)
    identity = None
    if k8s_server.startswith('rbac-'):
        identity = request.getfixturevalue('_chart_identities')(k8s_server.removeprefix('rbac-'))
        api.connection = lambda: identity.connection(api)  # type: ignore[method-assign]
        # as the chart runs it: leader election on a Lease in the release namespace (its verbs are granted there)
        api.controller_config = {'leader_election': LeaderElection(  # the chart's timing (15 s / 10 s / 2 s)
            namespace=CHART_NAMESPACE, name=f'kubedag-{identity.mode}')}
        if identity.mode == 'cluster':
            api.controller_config['namespaces'] = []  # as the chart runs it: the whole cluster
    try:
        yield api
    finally:
        clean_namespace(admin)
        if identity is not None:
            used, forbidden = audit_usage(audit_log, identity.username, api.handler.offset)
            USED.setdefault(identity.mode, set()).update(used)
            assert not forbidden, f'the chart\'s RBAC ({identity.mode}) forbade the controller: {forbidden}'


@pytest.fixture
def fake_kubelet(k8s_server: str, k8s_api: Any, request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[FakeKubelet]:
    """The fake kubelet on the test's server (on the real one, as its node), working in ``tmp_path / 'kubelet'``."""
    workdir = tmp_path / 'kubelet'
    workdir.mkdir()
    if k8s_server == 'emulator':
        with FakeKubelet(k8s_api.url, workdir=workdir) as kubelet:
            yield kubelet
        return
    kubelet = start_kubelet(request.getfixturevalue('control_plane'), workdir)
    try:
        yield kubelet
    finally:
        kubelet.stop()


@pytest.fixture
def controller_on_default(control_plane: ControlPlane, _real_with_crds: RealApiServer,
                          tmp_path: pathlib.Path) -> Iterator[RealApiServer]:
    """The controller (admin identity, SQLite) and the fake kubelet running on the real control plane's ``default``
    namespace, emptied before and after; yields the admin client."""
    from tests.controller.harness import RunningController
    api = _real_with_crds
    clean_namespace(api)
    (tmp_path / 'kubelet').mkdir()
    kubelet = start_kubelet(control_plane, tmp_path / 'kubelet')
    try:
        with RunningController(api, f"sqlite:///{tmp_path / 'kubedag.db'}"):
            yield api
    finally:
        kubelet.stop()
        clean_namespace(api)

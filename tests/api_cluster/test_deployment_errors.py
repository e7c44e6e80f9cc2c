"""The API server's own Kubernetes identity refused (401/403) is a deployment error: 503 naming the permission it
lacks, not 409 (which says the request conflicts with an object); and the health document reads the controller's
Lease at most once every couple of seconds, whatever the request rate."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from fastapi.testclient import TestClient

from kubedag.api import create_app
from kubedag.api.auth import AllowAll, LocalAuthenticator
from kubedag.cli.api_cluster import cluster_services
from kubedag.k8s.controller_health import LEASE_TTL, lease_health
from kubedag.k8s.leases import format_micro_time
from tests.api_cluster.test_unavailable import one_line_503
from tests.k8s.emulator import errors
from tests.k8s.emulator import server as emulator_server

SA = 'system:serviceaccount:kubedag:kubedag-api'
LEASE = 'coordination.k8s.io/v1/leases'


def forbid(monkeypatch, resource: str, verb: str, group: str) -> None:
    """Requests on ``resource`` answered 403 as kube-apiserver's RBAC authorizer answers them."""
    original = emulator_server.KubeApiEmulator._dispatch

    async def dispatch(self, request):
        if f'/{resource}' in request.url.path:
            raise errors.StatusError(
                403, 'Forbidden', f'{resource}.{group} is forbidden: User "{SA}" cannot {verb} resource "{resource}" '
                                  f'in API group "{group}" in the namespace "default"', {'group': group, 'kind': resource})
        return await original(self, request)

    monkeypatch.setattr(emulator_server.KubeApiEmulator, '_dispatch', dispatch)


def test_a_permission_the_api_servers_service_account_lacks_is_503_naming_it(k8s_api, kube, monkeypatch):
    forbid(monkeypatch, 'dags', 'list', 'kubedag.io')
    services = replace(cluster_services(kube), authenticator=LocalAuthenticator('t'), authorizer=AllowAll(), scope=None)
    response = TestClient(create_app(services)).get('/api/v2/dags', headers={'Authorization': 'Bearer t'})
    detail = one_line_503(response, 'deployment error', f'User "{SA}" cannot list resource "dags" in API group '
                                                        '"kubedag.io"', 'ServiceAccount')
    assert 'Bearer' not in detail and ' t ' not in detail


def test_a_token_review_the_service_account_may_not_make_is_503_naming_the_permission(k8s_api, kube, monkeypatch):
    forbid(monkeypatch, 'tokenreviews', 'create', 'authentication.k8s.io')
    response = TestClient(create_app(cluster_services(kube))).get(
        '/api/v2/dags', headers={'Authorization': 'Bearer some-secret-token'})
    detail = one_line_503(response, 'the TokenReview failed: 403', 'create tokenreviews.authentication.k8s.io',
                          'system:auth-delegator')
    assert 'some-secret-token' not in detail


def test_the_health_document_reads_the_lease_once_per_ttl(k8s_api, kube):
    now = datetime.now(timezone.utc)
    k8s_api.create({'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease',
                    'metadata': {'name': 'kubedag-controller', 'namespace': 'default'},
                    'spec': {'holderIdentity': 'controller-0_abc', 'leaseDurationSeconds': 15,
                             'renewTime': format_micro_time(now)}})
    clock = [1000.0]
    health = lease_health(kube.api_client, 'default', monotonic=lambda: clock[0])

    def lease_reads() -> int:
        return sum(1 for r in k8s_api.handler['get'] if r.url.path.endswith('/leases/kubedag-controller'))

    assert [health().status for _ in range(20)] == ['healthy'] * 20
    assert lease_reads() == 1
    k8s_api.patch(LEASE, 'kubedag-controller', {'spec': {'holderIdentity': None}}, 'default')
    clock[0] += LEASE_TTL - 0.1
    assert health().detail == 'leader: controller-0_abc'  # still the cached read
    assert lease_reads() == 1
    clock[0] += 0.2
    released = health()
    assert released.status == 'unhealthy' and 'is released' in released.detail
    assert lease_reads() == 2

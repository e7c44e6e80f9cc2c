"""The REST API's authentication and authorisation on a real kube-apiserver: TokenReview and
SubjectAccessReview answered by the real authenticator and RBAC authorizer, the API server running with only the
RBAC the Helm chart gives it (its ServiceAccount's token), callers with ServiceAccount tokens and RBAC Roles."""
from __future__ import annotations

import pathlib

import pytest
import yaml
from fastapi.testclient import TestClient

from tests.controlplane.cluster import RealApiServer
from tests.controlplane.rbac import RBAC_KINDS

pytestmark = pytest.mark.controlplane
CHART_NAMESPACE = 'kubedag-system'
RELEASE = 'kubedag-restapi'


def token_for(api: RealApiServer, account: str, namespace: str) -> str:
    return api.request('POST', api.path('v1/serviceaccounts', account, namespace, 'token'),
                       {'apiVersion': 'authentication.k8s.io/v1', 'kind': 'TokenRequest', 'spec': {}})['status']['token']


def ensure(api: RealApiServer, plural: str, obj: dict, namespace: str | None = None) -> None:
    if api.get(plural, obj['metadata']['name'], namespace or obj['metadata'].get('namespace')) is None:
        api.create(obj, namespace)


def account(api: RealApiServer, name: str, namespace: str = 'default') -> str:
    ensure(api, 'v1/serviceaccounts', {'apiVersion': 'v1', 'kind': 'ServiceAccount',
                                      'metadata': {'name': name, 'namespace': namespace}})
    return token_for(api, name, namespace)


@pytest.fixture
def api_kubeconfig(_real_with_crds: RealApiServer, tmp_path: pathlib.Path) -> pathlib.Path:
    """The chart's API RBAC applied (release kubedag-restapi, serving `default`); a kubeconfig with the API
    ServiceAccount's token, so the API runs with exactly what the chart grants it."""
    from tests.helm.chart import render

    pytest.importorskip('helm_python', reason='helm-python-sdk (renders the chart) is not installed here')
    api = _real_with_crds
    rendered = render({'database': {'url': 'postgresql://unused@localhost/kubedag'}, 'rbac': {'create': True},
                       'serviceAccount': {'create': False, 'name': 'default'},
                       'api': {'enabled': True, 'namespace': 'default',
                               'basicAuth': {'enabled': True, 'secretName': 'api-users'}}},
                      release=RELEASE, namespace=CHART_NAMESPACE)
    ensure(api, 'v1/namespaces', {'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': CHART_NAMESPACE}})
    for obj in rendered.objects:
        if obj['kind'] in RBAC_KINDS and obj['metadata'].get('labels', {}).get('app.kubernetes.io/component') == 'api':
            namespace = obj['metadata'].get('namespace') or (CHART_NAMESPACE if obj['kind'] == 'ServiceAccount' else None)
            plural = {'ServiceAccount': 'v1/serviceaccounts'}.get(obj['kind']) or \
                f"rbac.authorization.k8s.io/v1/{obj['kind'].lower()}s"
            ensure(api, plural, obj, namespace)
    config = yaml.safe_load(api.kubeconfig(tmp_path / 'api.kubeconfig').read_text())
    config['users'][0]['user'] = {'token': token_for(api, f'{RELEASE}-api', CHART_NAMESPACE)}
    path = tmp_path / 'api.kubeconfig'
    path.write_text(yaml.safe_dump(config))
    return path


def reader_token(api: RealApiServer) -> str:
    """A ServiceAccount ``kubedag-api-reader`` in ``default`` bound to a Role that reads DAGs and DAGRuns and may
    patch only the DAG ``sales``; a token of it."""
    token = account(api, 'kubedag-api-reader')
    ensure(api, 'rbac.authorization.k8s.io/v1/roles', {
        'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'Role',
        'metadata': {'name': 'kubedag-api-reader', 'namespace': 'default'},
        'rules': [{'apiGroups': ['kubedag.io'], 'resources': ['dags', 'dagruns'], 'verbs': ['get', 'list']},
                  {'apiGroups': ['kubedag.io'], 'resources': ['dags'], 'verbs': ['patch'], 'resourceNames': ['sales']}]})
    ensure(api, 'rbac.authorization.k8s.io/v1/rolebindings', {
        'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'RoleBinding',
        'metadata': {'name': 'kubedag-api-reader', 'namespace': 'default'},
        'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'Role', 'name': 'kubedag-api-reader'},
        'subjects': [{'kind': 'ServiceAccount', 'name': 'kubedag-api-reader', 'namespace': 'default'}]})
    return token


def test_tokens_and_rbac_of_the_real_server_decide(_real_with_crds, api_kubeconfig):
    from kubedag.app.catalog import Unauthenticated
    from kubedag.k8s.access import SubjectAccessReviewAuthorizer, TokenReviewAuthenticator
    from kubedag.k8s.kubeapi import connect

    reader = reader_token(_real_with_crds)
    with connect(str(api_kubeconfig), namespace='default') as kube:
        authenticator = TokenReviewAuthenticator(kube.api_client)
        who = authenticator.authenticate(f'Bearer {reader}')
        assert who.username == 'system:serviceaccount:default:kubedag-api-reader'
        assert {'system:serviceaccounts', 'system:serviceaccounts:default', 'system:authenticated'} <= set(who.groups)
        with pytest.raises(Unauthenticated):
            authenticator.authenticate('Bearer ' + reader[:-4] + 'AAAA')
        authorizer = SubjectAccessReviewAuthorizer(kube.api_client)
        assert authorizer.allowed(who, 'list', 'dags', 'default')
        assert authorizer.allowed(who, 'patch', 'dags', 'default', name='sales')
        assert not authorizer.allowed(who, 'patch', 'dags', 'default', name='orders')
        assert not authorizer.allowed(who, 'create', 'dagruns', 'default')
        assert not authorizer.allowed(who, 'list', 'dags', 'kube-system')


def test_the_api_serves_a_role_bound_user_with_only_the_charts_rbac(control_plane, _real_with_crds, api_kubeconfig):
    import bcrypt

    from kubedag.api import create_app
    from kubedag.k8s.kubeapi import connect
    from kubedag.cli.api_cluster import cluster_services
    from tests.controlplane.rbac import audit_usage

    api = _real_with_crds
    reader = reader_token(api)
    audit_log = control_plane.state_dir / 'logs' / 'audit.log'
    offset = audit_log.stat().st_size
    hashed = bcrypt.hashpw(b'pw', bcrypt.gensalt(rounds=4)).decode()
    api.delete('v1/secrets', 'api-users', 'default') if api.get('v1/secrets', 'api-users', 'default') else None
    api.create({'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 'api-users', 'namespace': 'default'},
                'stringData': {'users.yaml': f"- {{username: ops, passwordHash: '{hashed}', "
                                             f"kubernetesUser: 'system:serviceaccount:default:kubedag-api-reader'}}"}})
    if api.get('kubedag.io/v1alpha1/dags', 'api-hello', 'default') is None:
        api.create({'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'DAG',
                    'metadata': {'name': 'api-hello', 'namespace': 'default'},
                    'spec': {'defaults': {'image': 'busybox:1.36'}, 'tasks': [{'name': 'say', 'command': ['true']}]}})
    with connect(str(api_kubeconfig), namespace='default') as kube:
        client = TestClient(create_app(cluster_services(kube, basic_auth_secret='api-users')))
        headers = {'Authorization': f'Bearer {reader}'}
        listed = client.get('/api/v2/dags', headers=headers)
        assert listed.status_code == 200, listed.text
        assert 'api-hello' in [d['dag_id'] for d in listed.json()['dags']]
        assert client.get('/api/v2/dags', auth=('ops', 'pw')).status_code == 200  # the basic user's mapped identity
        refused = client.post('/api/v2/dags/api-hello/dagRuns', json={'logical_date': None}, headers=headers)
        assert refused.status_code == 403
        assert refused.json()['detail'].startswith('system:serviceaccount:default:kubedag-api-reader may not create dagruns')
        assert client.get('/api/v2/dags').status_code == 401
    api.delete('v1/secrets', 'api-users', 'default')
    used, forbidden = audit_usage(audit_log, f'system:serviceaccount:{CHART_NAMESPACE}:{RELEASE}-api', offset)
    assert forbidden == []  # the chart's API RBAC covers every call the API made
    assert {('authentication.k8s.io', 'tokenreviews', 'create'), ('authorization.k8s.io', 'subjectaccessreviews', 'create'),
            ('', 'secrets', 'get'), ('kubedag.io', 'dags', 'list')} <= used


def test_the_api_reads_the_controllers_lease_with_only_the_charts_rbac(_real_with_crds, api_kubeconfig):
    from datetime import datetime, timezone

    from kubedag.k8s.controller_health import lease_health
    from kubedag.k8s.kubeapi import connect
    from kubedag.k8s.leases import format_micro_time

    api = _real_with_crds
    now = format_micro_time(datetime.now(timezone.utc))
    for name in (RELEASE, 'someone-else'):  # the controller's Lease (the chart names it like the release), another
        if api.get('coordination.k8s.io/v1/leases', name, CHART_NAMESPACE) is None:
            api.create({'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease',
                        'metadata': {'name': name, 'namespace': CHART_NAMESPACE},
                        'spec': {'holderIdentity': f'{name}-0_abc', 'leaseDurationSeconds': 3600,
                                 'renewTime': now, 'acquireTime': now}}, CHART_NAMESPACE)
    with connect(str(api_kubeconfig), namespace='default') as kube:
        health = lease_health(kube.api_client, CHART_NAMESPACE, RELEASE)()
        assert (health.status, health.detail) == ('healthy', f'leader: {RELEASE}-0_abc')
        other = lease_health(kube.api_client, CHART_NAMESPACE, 'someone-else')()
        assert other.status == 'unhealthy' and '403' in other.detail  # get by name: that Lease only

"""
The Helm chart's RBAC on the real control plane: the controller runs with its ServiceAccount's token only.

:func:`chart_identity` renders ``helm/kubedag`` (Helm's own engine, ``tests/helm/chart.py``) in one of two
modes — ``namespaced`` (``watchNamespaces: [default]``: a Role and RoleBinding there) or ``cluster``
(cluster-wide ClusterRole) — with its own release name, so both identities coexist. It applies the chart's
ServiceAccount, ClusterRoles, Roles and bindings, and mints a token for the ServiceAccount with the
TokenRequest API. :func:`audit_usage` reads what that identity did from the API server's audit log: the
requests it made (group, resource, verb) and those that were forbidden.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

from tests.controlplane.cluster import RealApiServer

CHART_NAMESPACE = 'kubedag-system'
MODES = {'namespaced': {'watchNamespaces': ['default']}, 'cluster': {}}
RBAC_KINDS = ('ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding')
Use = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)
#: What the controller did with each mode's identity in this test session (filled by the controller tests).
USED: dict[str, set[Use]] = {}


@dataclasses.dataclass
class ChartIdentity:
    """The controller's ServiceAccount of one mode: its user name, a token for it and the rules the chart grants."""

    mode: str
    username: str
    token: str
    granted: set[Use]

    def connection(self, api: RealApiServer) -> Any:
        """The controller's Connection with this identity (no admin rights)."""
        from kubedag.k8s.client import Connection
        return Connection(server=api.url, token=self.token, ca_path=api.ca_file)


def rules_of(objects: list[dict[str, Any]]) -> set[Use]:
    """The (group, resource, verb) triples the Roles and ClusterRoles among ``objects`` grant."""
    granted: set[Use] = set()
    for obj in objects:
        if obj['kind'] in ('ClusterRole', 'Role'):
            for rule in obj['rules']:
                granted |= {(g, r, v) for g in rule['apiGroups'] for r in rule['resources'] for v in rule['verbs']}
    return granted


def chart_identity(api: RealApiServer, mode: str) -> ChartIdentity:
    """Apply the chart's RBAC objects of ``mode`` (idempotent) and mint a ServiceAccount token (TokenRequest)."""
    from tests.helm.chart import render  # needs helm-python-sdk: callers skip without it
    release = f'kubedag-{mode}'
    rendered = render({'database': {'url': 'postgresql://unused@localhost/kubedag'}, **MODES[mode]},
                      release=release, namespace=CHART_NAMESPACE)
    if api.get('v1/namespaces', CHART_NAMESPACE) is None:
        api.create({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': CHART_NAMESPACE}})
    objects = [o for o in rendered.objects if o['kind'] in RBAC_KINDS]
    for obj in objects:
        namespace = obj['metadata'].get('namespace') or (CHART_NAMESPACE if obj['kind'] == 'ServiceAccount' else None)
        plural = {'ServiceAccount': 'v1/serviceaccounts'}.get(obj['kind']) or \
            f"rbac.authorization.k8s.io/v1/{obj['kind'].lower()}s"
        if api.get(plural, obj['metadata']['name'], namespace) is None:
            api.create(obj, namespace)
    account = rendered.one('ServiceAccount')['metadata']['name']
    request = api.request('POST', api.path('v1/serviceaccounts', account, CHART_NAMESPACE, 'token'),
                          {'apiVersion': 'authentication.k8s.io/v1', 'kind': 'TokenRequest',
                           'spec': {'expirationSeconds': 7200}})
    return ChartIdentity(mode, f'system:serviceaccount:{CHART_NAMESPACE}:{account}', request['status']['token'],
                         rules_of(objects))


def audit_usage(audit_log: pathlib.Path, username: str, offset: int = 0) -> tuple[set[Use], list[str]]:
    """What ``username`` did after byte ``offset`` of the audit log: the (group, resource, verb) it used with
    success, and each forbidden request as ``verb group/resource namespace/name``."""
    used: set[Use] = set()
    forbidden: list[str] = []
    with audit_log.open('rb') as f:
        f.seek(offset)
        for line in f:
            event = json.loads(line)
            if event.get('user', {}).get('username') != username or event.get('stage') != 'ResponseComplete':
                continue
            ref = event.get('objectRef') or {}
            resource = ref.get('resource', event.get('requestURI', ''))
            if ref.get('subresource'):
                resource += '/' + ref['subresource']
            code = (event.get('responseStatus') or {}).get('code', 0)
            if code == 403:
                forbidden.append(f"{event['verb']} {ref.get('apiGroup', '')}/{resource} "
                                 f"{ref.get('namespace', '')}/{ref.get('name', '')}")
            elif ref:
                used.add((ref.get('apiGroup', ''), resource, event['verb']))
    return used, forbidden

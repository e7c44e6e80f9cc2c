"""TokenReview and SubjectAccessReview for the emulator, configured by the test (the emulator itself accepts any
request): :class:`EmulatedAuth` answers ``POST /apis/authentication.k8s.io/v1/tokenreviews`` from the tokens a
test registered and ``POST /apis/authorization.k8s.io/v1/subjectaccessreviews`` from RBAC-like grants, as the
real API server's authenticator and RBAC authorizer do::

    auth = EmulatedAuth.install(k8s_api)
    token = auth.add_token('alice', groups=['team-a'])
    auth.grant('user:alice', ['get', 'list'], ['dags', 'dagruns'], namespace='team-a')
    auth.grant('group:ops', ['get'], ['pods/log'], api_groups=[''])         # cluster-wide (a ClusterRoleBinding)
    auth.grant('user:bob', ['patch'], ['dags'], namespace='default', names=['sales'])  # resourceNames

Rules follow RBAC: a subject (``user:<name>``, ``group:<name>``, ``serviceaccount:<ns>:<name>`` = the user
``system:serviceaccount:<ns>:<name>``) is allowed a verb on ``resource`` or ``resource/subresource`` in a namespace
if a grant in that namespace or a cluster-wide one matches; ``names`` limits it to those objects (a list or create
without a name does not match a name-limited grant, as RBAC's ``resourceNames``). ``*`` matches any verb or
resource. ``reviews`` keeps every SubjectAccessReview spec received, for assertions.
"""
from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterable
from typing import Any

TOKENREVIEWS = 'post /apis/authentication.k8s.io/v1/tokenreviews'
SUBJECTACCESSREVIEWS = 'post /apis/authorization.k8s.io/v1/subjectaccessreviews'


@dataclasses.dataclass(frozen=True)
class Grant:
    subject: str
    verbs: frozenset[str]
    resources: frozenset[str]
    api_groups: frozenset[str]
    namespace: str | None
    names: frozenset[str]

    def matches(self, user: str, groups: Iterable[str], attrs: dict[str, Any]) -> bool:
        kind, _, who = self.subject.partition(':')
        if kind == 'user' and who != user or kind == 'group' and who not in set(groups):
            return False
        if kind == 'serviceaccount' and user != f'system:serviceaccount:{who}':
            return False
        resource = attrs.get('resource') or ''
        if attrs.get('subresource'):
            resource = f"{resource}/{attrs['subresource']}"
        if not ({'*', attrs.get('verb')} & self.verbs and {'*', resource} & self.resources
                and {'*', attrs.get('group') or ''} & self.api_groups):
            return False
        if self.namespace is not None and attrs.get('namespace') != self.namespace:
            return False
        return not self.names or attrs.get('name') in self.names


class EmulatedAuth:
    """Tokens and grants of one test; :meth:`install` plugs it into an ``EmulatedApiServer``."""

    def __init__(self) -> None:
        self.tokens: dict[str, dict[str, Any]] = {}
        self.grants: list[Grant] = []
        self.reviews: list[dict[str, Any]] = []
        self.token_reviews = 0

    @classmethod
    def install(cls, api: Any) -> EmulatedAuth:
        auth = cls()
        api.handler[TOKENREVIEWS] << auth.token_review
        api.handler[SUBJECTACCESSREVIEWS] << auth.access_review
        return auth

    def add_token(self, username: str, groups: Iterable[str] = (), token: str | None = None) -> str:
        """Register a token that authenticates as ``username`` (plus ``system:authenticated``); returns it."""
        token = token or secrets.token_urlsafe(24)
        self.tokens[token] = {'username': username, 'uid': f'uid-{username}',
                              'groups': [*groups, 'system:authenticated']}
        return token

    def grant(self, subject: str, verbs: Iterable[str], resources: Iterable[str], *, namespace: str | None = None,
              api_groups: Iterable[str] = ('kubedag.io',), names: Iterable[str] = ()) -> None:
        self.grants.append(Grant(subject, frozenset(verbs), frozenset(resources), frozenset(api_groups), namespace,
                                 frozenset(names)))

    def token_review(self, request: Any) -> dict[str, Any]:
        self.token_reviews += 1
        body = request.data or {}
        user = self.tokens.get(((body.get('spec') or {}).get('token')) or '')
        status: dict[str, Any] = {'authenticated': True, 'user': user} if user else {
            'authenticated': False, 'error': 'invalid bearer token'}
        return {'apiVersion': 'authentication.k8s.io/v1', 'kind': 'TokenReview', 'metadata': {},
                'spec': body.get('spec') or {}, 'status': status}

    def access_review(self, request: Any) -> dict[str, Any]:
        body = request.data or {}
        spec = body.get('spec') or {}
        self.reviews.append(spec)
        attrs = spec.get('resourceAttributes') or {}
        allowed = any(g.matches(spec.get('user') or '', spec.get('groups') or (), attrs) for g in self.grants)
        status = {'allowed': allowed, **({'reason': 'granted by the test'} if allowed else {})}
        return {'apiVersion': 'authorization.k8s.io/v1', 'kind': 'SubjectAccessReview', 'metadata': {},
                'spec': spec, 'status': status}

"""Authentication and authorisation on a cluster (:mod:`kubedag.k8s.access`): bearer tokens checked with a
TokenReview, optional basic-auth users from a Secret with bcrypt hashes, and SubjectAccessReviews, on the
emulator's TokenReview/SubjectAccessReview (:mod:`tests.k8s.emulator.auth`)."""
from __future__ import annotations

import base64

import bcrypt
import pytest

from kubedag.app.catalog import Identity, Unauthenticated
from kubedag.app.operations.ports import OperationError
from kubedag.k8s.access import (
    SubjectAccessReviewAuthorizer, TokenReviewAuthenticator, TtlCache, basic_users_from_secret, parse_users,
)

USERS = """
- username: ci
  passwordHash: {hash}
  kubernetesUser: ci-bot@example.com
  groups: [kubedag-triggerers]
- username: viewer
  passwordHash: {hash}
"""


def basic(user: str, password: str) -> str:
    return 'Basic ' + base64.b64encode(f'{user}:{password}'.encode()).decode()


@pytest.fixture
def users_secret(k8s_api):
    hashed = bcrypt.hashpw(b'pw-of-ci', bcrypt.gensalt(rounds=4)).decode()
    k8s_api.create({'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 'api-users', 'namespace': 'default'},
                    'stringData': {'users.yaml': USERS.format(hash=hashed)}})


def test_a_bearer_token_is_the_identity_the_cluster_gives_it(kube, auth):
    token = auth.add_token('system:serviceaccount:ci:deployer', groups=['system:serviceaccounts'])
    authenticator = TokenReviewAuthenticator(kube.api_client)
    identity = authenticator.authenticate(f'Bearer {token}')
    assert identity == Identity('system:serviceaccount:ci:deployer',
                                ('system:serviceaccounts', 'system:authenticated'),
                                uid='uid-system:serviceaccount:ci:deployer')
    assert authenticator.authenticate(f'bearer  {token} ') == identity
    assert auth.token_reviews == 1  # the second answer came from the cache


@pytest.mark.parametrize(('header', 'message'), [
    (None, 'no credentials'),
    ('', 'no credentials'),
    ('Bearer not-a-known-token', 'did not accept the token'),
    ('Digest abc', 'unsupported Authorization scheme'),
    ('Bearer', 'unsupported Authorization scheme'),
    (basic('ci', 'pw-of-ci'), 'basic authentication is not enabled'),
])
def test_no_or_bad_credentials_are_unauthenticated(kube, auth, header, message):
    with pytest.raises(Unauthenticated, match=message):
        TokenReviewAuthenticator(kube.api_client).authenticate(header)


def test_basic_users_map_to_kubernetes_users_and_groups(kube, auth, users_secret):
    authenticator = TokenReviewAuthenticator(kube.api_client, basic=basic_users_from_secret(kube, 'api-users'))
    assert authenticator.authenticate(basic('ci', 'pw-of-ci')) == Identity('ci-bot@example.com', ('kubedag-triggerers',))
    assert authenticator.authenticate(basic('ci', 'pw-of-ci')).username == 'ci-bot@example.com'  # cached
    for header in (basic('ci', 'wrong'), basic('nobody', 'pw-of-ci'), 'Basic !!!notbase64'):
        with pytest.raises(Unauthenticated) as caught:
            authenticator.authenticate(header)
        assert 'pw-of-ci' not in str(caught.value)
    token = auth.add_token('alice')
    assert authenticator.authenticate(f'Bearer {token}').username == 'alice'  # tokens still work


def test_a_missing_users_secret_is_an_error_not_a_denial(kube, auth):
    authenticator = TokenReviewAuthenticator(kube.api_client, basic=basic_users_from_secret(kube, 'absent'))
    with pytest.raises(OperationError, match='Secret default/absent does not exist'):
        authenticator.authenticate(basic('ci', 'pw'))


@pytest.mark.parametrize(('text', 'message'), [
    ('{}', 'must be a list'),
    ('- {username: a}', r'users.yaml\[0\].passwordHash'),
    ('- {username: "a:b", passwordHash: "$2b$04$x"}', r'users.yaml\[0\].username'),
    ('- {username: a, passwordHash: "$2b$04$x", groups: g}', r'users.yaml\[0\].groups'),
])
def test_a_bad_users_file_names_the_entry_and_field(text, message):
    with pytest.raises(OperationError, match=message):
        parse_users(text)


def test_subject_access_reviews_follow_the_clusters_rbac(kube, auth):
    auth.grant('group:kubedag-triggerers', ['create'], ['dagruns'], namespace='default')
    auth.grant('user:alice', ['patch'], ['dags'], namespace='default', names=['sales'])
    auth.grant('user:alice', ['get'], ['pods/log'], api_groups=[''])
    authorizer = SubjectAccessReviewAuthorizer(kube.api_client)
    ci = Identity('ci-bot@example.com', ('kubedag-triggerers',))
    alice = Identity('alice')

    assert authorizer.allowed(ci, 'create', 'dagruns', 'default')
    assert not authorizer.allowed(ci, 'create', 'dagruns', 'team-b')
    assert not authorizer.allowed(ci, 'delete', 'dagruns', 'default')
    assert authorizer.allowed(alice, 'patch', 'dags', 'default', name='sales')
    assert not authorizer.allowed(alice, 'patch', 'dags', 'default', name='orders')
    assert authorizer.allowed(alice, 'get', 'pods', 'team-b', subresource='log', group='')
    assert not authorizer.allowed(alice, 'get', 'pods', 'team-b', group='')
    review = auth.reviews[0]
    assert review == {'user': 'ci-bot@example.com', 'groups': ['kubedag-triggerers'],
                      'resourceAttributes': {'verb': 'create', 'group': 'kubedag.io', 'resource': 'dagruns',
                                             'namespace': 'default'}}
    asked = len(auth.reviews)
    assert authorizer.allowed(ci, 'create', 'dagruns', 'default') and not authorizer.allowed(ci, 'create', 'dagruns', 'team-b')
    assert len(auth.reviews) == asked  # both answers cached


def test_a_review_that_cannot_be_made_is_an_error(kube, k8s_api):
    k8s_api.handler['post /apis/authorization.k8s.io/v1/subjectaccessreviews'] << 500
    with pytest.raises(OperationError, match='SubjectAccessReview failed: 500'):
        SubjectAccessReviewAuthorizer(kube.api_client).allowed(Identity('x'), 'get', 'dags', 'default')


def test_the_cache_forgets_after_its_ttl_and_keeps_its_size():
    now = [0.0]
    cache = TtlCache(5.0, size=2, clock=lambda: now[0])
    cache.put('a', 1)
    cache.put('b', False)
    assert (cache.get('a'), cache.get('b')) == (1, False)
    cache.put('c', 3)
    assert cache.get('a') is None and cache.get('c') == 3  # the oldest went
    now[0] = 5.0
    assert cache.get('b') is None and cache.get('c') is None

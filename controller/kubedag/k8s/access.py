"""Who may use the REST API on a cluster, decided by the cluster itself: :class:`TokenReviewAuthenticator` and
:class:`SubjectAccessReviewAuthorizer`, the :class:`kubedag.app.catalog.Authenticator` / ``Authorizer`` ports.

* **Bearer tokens** are Kubernetes tokens (a service account's, an OIDC token the API server accepts...), checked
  with a ``TokenReview`` (``authentication.k8s.io/v1``), as ``kube-rbac-proxy`` and the metrics-server do. The
  identity is the review's ``status.user`` (username, uid, groups, extra).
* **Basic auth** (Airflow 2's ``curl -u ID:PW``) is off unless a :class:`BasicUsers` is given: users kept in a
  Secret with bcrypt hashes, each mapped to a Kubernetes user and groups (see :class:`BasicUsers` for the format).
* **Authorisation** is a ``SubjectAccessReview`` (``authorization.k8s.io/v1``) of that identity for the verb,
  resource, subresource, namespace and name, so the cluster's RBAC decides (Airflow's DAG-level access becomes a
  Role limited by namespace or ``resourceNames``).

Both cache their answers a few seconds (a token's for :data:`TOKEN_TTL`, a decision for :data:`DECISION_TTL`),
keyed by a SHA-256 of the credentials, never the credentials themselves, so that a page of the UI costs one
review per distinct question, as the API server's own webhook authenticator/authorizer caches do. Nothing here
logs a token or a password.

The API server's service account needs ``create tokenreviews`` and ``create subjectaccessreviews`` (the
``system:auth-delegator`` ClusterRole) and ``get`` on the basic-auth Secret by name (the Helm chart grants them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import bcrypt
import yaml

from kubedag.app.catalog import Identity, Unauthenticated
from kubedag.app.operations.ports import OperationError, Unavailable

TOKEN_TTL = 10.0
"""Seconds a TokenReview's answer is reused for the same token."""
DECISION_TTL = 5.0
"""Seconds a SubjectAccessReview's answer is reused for the same identity and question."""
USERS_TTL = 30.0
"""Seconds the basic-auth Secret is reused before it is read again (a changed password takes effect then)."""
REQUEST_TIMEOUT = (5.0, 10.0)
"""Connect and read timeouts (seconds) of a review request."""


class TtlCache:
    """A small thread-safe map whose entries expire ``ttl`` seconds after they were put (``clock``: monotonic
    seconds). At most ``size`` entries: the oldest go first."""

    def __init__(self, ttl: float, size: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.size, self._clock = ttl, size, clock
        self._items: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        """The value, or None when absent or expired."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._items[key]
                return None
            return entry[1]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items.pop(key, None)
            while len(self._items) >= self.size:
                del self._items[next(iter(self._items))]
            self._items[key] = (self._clock() + self.ttl, value)


def review_failed(kind: str, exc: Any) -> str:
    """Why a ``kind`` review (``TokenReview``/``SubjectAccessReview``) could not be made, from the official client's
    ApiException ``exc``, one line; a 401/403 is a deployment error naming the permission the API server's
    ServiceAccount lacks (``create`` on the review, granted by the ``system:auth-delegator`` ClusterRole)."""
    if exc.status in (401, 403):
        group = "authentication" if kind == "TokenReview" else "authorization"
        return (f"the {kind} failed: {exc.status} {exc.reason}: the kubedag API server's ServiceAccount may not "
                f"create {kind.lower()}s.{group}.k8s.io (a deployment error: bind it to the system:auth-delegator "
                "ClusterRole, as the Helm chart does)")
    return f"the {kind} failed: {exc.status} {exc.reason}"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _identity(user: Mapping[str, Any]) -> Identity:
    extra = {k: tuple(v or ()) for k, v in (user.get("extra") or {}).items()}
    return Identity(username=str(user.get("username") or ""), groups=tuple(user.get("groups") or ()),
                    uid=user.get("uid") or None, extra=extra)


# ------------------------------------------------------------------------------------------ basic auth
@dataclass(frozen=True)
class BasicUser:
    """One basic-auth user: the bcrypt ``password_hash`` of its password and the Kubernetes identity it acts as."""

    username: str
    password_hash: str
    kubernetes_user: str
    groups: tuple[str, ...] = ()


def parse_users(text: str, source: str = "the basic-auth Secret") -> dict[str, BasicUser]:
    """The users of a ``users.yaml`` document: a list of
    ``{username, passwordHash (bcrypt, $2b$...), kubernetesUser (default: username), groups (default: [])}``.
    Raises OperationError naming the entry and field that is wrong."""
    try:
        entries = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise OperationError(f"{source}: users.yaml is not YAML: {' '.join(str(exc).split())[:200]}") from None
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise OperationError(f"{source}: users.yaml must be a list of users")
    users: dict[str, BasicUser] = {}
    for i, entry in enumerate(entries):
        where = f"{source}: users.yaml[{i}]"
        if not isinstance(entry, dict):
            raise OperationError(f"{where}: must be a mapping")
        name, hashed = entry.get("username"), entry.get("passwordHash")
        if not isinstance(name, str) or not name or ":" in name:
            raise OperationError(f"{where}.username: a non-empty string without ':' is required")
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise OperationError(f"{where}.passwordHash: a bcrypt hash ($2b$...) is required")
        groups = entry.get("groups") or []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise OperationError(f"{where}.groups: a list of strings is required")
        users[name] = BasicUser(name, hashed, str(entry.get("kubernetesUser") or name), tuple(groups))
    return users


class BasicUsers:
    """Basic-auth users read from a Secret (``key``, default ``users.yaml``; see :func:`parse_users`), re-read
    every :data:`USERS_TTL` seconds. ``read_secret()`` returns the Secret as the API sends it (``data`` base64) or
    None. A password is checked with bcrypt; a successful check is remembered for :data:`TOKEN_TTL` seconds
    (under a SHA-256 of user and password) because bcrypt costs ~0.2 s on purpose."""

    def __init__(self, read_secret: Callable[[], Mapping[str, Any] | None], key: str = "users.yaml",
                 source: str = "the basic-auth Secret") -> None:
        self._read, self.key, self.source = read_secret, key, source
        self._users: tuple[float, dict[str, BasicUser]] | None = None
        self._verified = TtlCache(TOKEN_TTL)
        self._lock = threading.Lock()

    def users(self) -> dict[str, BasicUser]:
        with self._lock:
            if self._users is not None and self._users[0] > time.monotonic():
                return self._users[1]
            secret = self._read()
            if secret is None:
                raise OperationError(f"{self.source} does not exist")
            raw = (secret.get("data") or {}).get(self.key)
            if raw is None:
                raise OperationError(f"{self.source} has no key {self.key!r}")
            users = parse_users(base64.b64decode(raw).decode("utf-8", errors="replace"), self.source)
            self._users = (time.monotonic() + USERS_TTL, users)
            return users

    def check(self, username: str, password: str) -> Identity:
        """The identity of ``username`` if ``password`` is right; raises Unauthenticated otherwise."""
        key = _digest("basic", username, password)
        cached = self._verified.get(key)
        if cached is not None:
            return cached
        user = self.users().get(username)
        if user is None or not bcrypt.checkpw(password.encode(), user.password_hash.encode()):
            raise Unauthenticated("invalid username or password")
        identity = Identity(username=user.kubernetes_user, groups=user.groups)
        self._verified.put(key, identity)
        return identity


# ------------------------------------------------------------------------------------------ authentication
class TokenReviewAuthenticator:
    """:class:`kubedag.app.catalog.Authenticator` on a cluster: ``Bearer <token>`` checked with a TokenReview
    (``audiences``: the audiences the token must be for, none by default: the API server's own); ``Basic ...``
    only when ``basic`` users are configured. Raises Unauthenticated (no header, unknown scheme, a token the
    cluster rejects), Unavailable when the review itself fails (the API server unreachable or refusing the
    review: the API answers 503, not 401)."""

    def __init__(self, api_client: Any, *, audiences: Sequence[str] = (), basic: BasicUsers | None = None) -> None:
        from kubernetes import client  # start-up time: the kubernetes client takes ~0.5 s to import

        self._auth = client.AuthenticationV1Api(api_client)
        self.audiences, self.basic = tuple(audiences), basic
        self._cache = TtlCache(TOKEN_TTL)

    def authenticate(self, authorization: str | None) -> Identity:
        """See :class:`kubedag.app.catalog.Authenticator`."""
        if not authorization or not authorization.strip():
            raise Unauthenticated("no credentials: send an Authorization: Bearer <Kubernetes token> header")
        scheme, _, value = authorization.strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and value:
            return self._review(value)
        if scheme == "basic" and value:
            if self.basic is None:
                raise Unauthenticated("basic authentication is not enabled: send a Bearer Kubernetes token")
            try:
                username, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise Unauthenticated("malformed Basic credentials") from None
            return self.basic.check(username, password)
        raise Unauthenticated("unsupported Authorization scheme: send Bearer <Kubernetes token>")

    def _review(self, token: str) -> Identity:
        from kubernetes import client  # start-up time (see __init__)
        from kubernetes.client.exceptions import ApiException

        key = _digest("token", token)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        body = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token, audiences=list(self.audiences) or None))
        try:
            review = self._auth.create_token_review(body, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            raise Unavailable(review_failed("TokenReview", exc)) from None
        except Exception as exc:  # noqa: BLE001 - urllib3/OSError: the API server cannot be reached
            raise Unavailable(f"the TokenReview failed: {type(exc).__name__}") from None
        status = review.status
        if status is None or not status.authenticated or status.user is None:
            raise Unauthenticated("the Kubernetes API server did not accept the token")
        identity = _identity(status.user.to_dict())
        self._cache.put(key, identity)
        return identity


# ------------------------------------------------------------------------------------------ authorisation
class SubjectAccessReviewAuthorizer:
    """:class:`kubedag.app.catalog.Authorizer` on a cluster: one SubjectAccessReview per distinct question
    (identity, verb, group, resource, subresource, namespace, name), cached :data:`DECISION_TTL` seconds.
    Raises Unavailable when the review cannot be made."""

    def __init__(self, api_client: Any, ttl: float = DECISION_TTL) -> None:
        from kubernetes import client  # start-up time: the kubernetes client takes ~0.5 s to import

        self._authz = client.AuthorizationV1Api(api_client)
        self._cache = TtlCache(ttl, size=16384)

    def allowed(self, identity: Identity, verb: str, resource: str, namespace: str | None, *,
                name: str | None = None, subresource: str | None = None, group: str = "kubedag.io") -> bool:
        """See :class:`kubedag.app.catalog.Authorizer`."""
        from kubernetes import client  # start-up time (see __init__)
        from kubernetes.client.exceptions import ApiException

        key = (identity.username, identity.groups, identity.uid, tuple(sorted(identity.extra.items())), verb, group,
               resource, subresource, namespace, name)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        attributes = client.V1ResourceAttributes(verb=verb, group=group, resource=resource, subresource=subresource,
                                                 namespace=namespace, name=name)
        spec = client.V1SubjectAccessReviewSpec(user=identity.username, groups=list(identity.groups) or None,
                                                uid=identity.uid, extra={k: list(v) for k, v in identity.extra.items()} or None,
                                                resource_attributes=attributes)
        try:
            review = self._authz.create_subject_access_review(client.V1SubjectAccessReview(spec=spec),
                                                              _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            raise Unavailable(review_failed("SubjectAccessReview", exc)) from None
        except Exception as exc:  # noqa: BLE001 - urllib3/OSError: the API server cannot be reached
            raise Unavailable(f"the SubjectAccessReview failed: {type(exc).__name__}") from None
        allowed = bool(review.status is not None and review.status.allowed and not review.status.denied)
        self._cache.put(key, allowed)
        return allowed


def basic_users_from_secret(api: Any, name: str, namespace: str | None = None, key: str = "users.yaml") -> BasicUsers:
    """:class:`BasicUsers` read from Secret ``name`` through a :class:`kubedag.k8s.kubeapi.KubeApi` (``get`` by
    name only)."""
    ns = namespace or api.namespace
    return BasicUsers(lambda: api.read_source("Secret", name, ns), key, f"Secret {ns}/{name}")


__all__ = ["BasicUser", "BasicUsers", "SubjectAccessReviewAuthorizer", "TokenReviewAuthenticator", "TtlCache",
           "basic_users_from_secret", "parse_users", "review_failed"]

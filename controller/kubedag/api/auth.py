"""Authentication and authorisation of the REST API.

* :func:`identity` (a FastAPI dependency): the request's :class:`~kubedag.app.catalog.Identity`, from a token
  this server issued at ``/auth/token`` (:class:`IssuedTokens`) or else from the injected
  :class:`~kubedag.app.catalog.Authenticator` (a TokenReview on a cluster, :class:`LocalAuthenticator` locally).
  :class:`~kubedag.app.catalog.Unauthenticated` becomes 401 with ``WWW-Authenticate``.
* :func:`authorize` (a dependency per endpoint): every :class:`~kubedag.api.permissions.Need` of the endpoint
  must be allowed by the :class:`~kubedag.app.catalog.Authorizer`, else 403 naming the first missing one.
* Local mode: :class:`LocalAuthenticator` (a start-up token and/or basic-auth users with bcrypt hashes; nobody
  at all on loopback with neither), :class:`AllowAll`, and :func:`check_bind` (never serve unauthenticated
  beyond loopback).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import bcrypt
from fastapi import Depends, HTTPException, Request

from kubedag.api.permissions import PERMISSIONS
from kubedag.app.catalog import Identity, Unauthenticated
from kubedag.app.operations.ports import OperationError

LOCAL = Identity("local")
"""The identity of a local caller holding the start-up token (or of anyone on loopback with no auth set up)."""


def basic_credentials(authorization: str) -> tuple[str, str]:
    """``(username, password)`` of a ``Basic …`` header. Raises Unauthenticated if it is malformed."""
    try:
        user, sep, password = base64.b64decode(authorization.split(" ", 1)[1], validate=True).decode().partition(":")
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("malformed Basic credentials") from None
    if not sep:
        raise Unauthenticated("malformed Basic credentials (no ':')")
    return user, password


def load_users(path: Path) -> dict[str, bytes]:
    """A users file: one ``username:bcrypt-hash`` per line (``#`` comments and blank lines ignored), as
    ``htpasswd -B`` writes it. Raises ValueError naming the file and line of a bad entry."""
    users: dict[str, bytes] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed.startswith("$2"):
            raise ValueError(f"{path}:{number}: expected 'username:<bcrypt hash>'")
        users[user] = hashed.encode()
    return users


def hash_password(password: str) -> str:
    """A bcrypt hash of ``password`` for a users file."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()


class LocalAuthenticator:
    """The local :class:`~kubedag.app.catalog.Authenticator`: ``Bearer <token>`` (the start-up token, identity
    ``local``) or ``Basic`` with a user of ``users`` (username -> bcrypt hash; identity: the username).
    With neither a token nor users, everyone is ``local`` (only allowed on loopback: :func:`check_bind`)."""

    def __init__(self, token: str | None = None, users: Mapping[str, bytes] | None = None) -> None:
        self.token = token
        self.users = dict(users or {})

    @property
    def enabled(self) -> bool:
        """Whether any authentication is required."""
        return bool(self.token or self.users)

    def authenticate(self, authorization: str | None) -> Identity:
        """See :meth:`kubedag.app.catalog.Authenticator.authenticate`."""
        if not self.enabled:
            return LOCAL
        if not authorization:
            raise Unauthenticated("no credentials: send 'Authorization: Bearer <token>' or basic auth")
        scheme = authorization.split(" ", 1)[0].lower()
        if scheme == "bearer" and self.token:
            if hmac.compare_digest(authorization.split(" ", 1)[-1].strip().encode(), self.token.encode()):
                return LOCAL
            raise Unauthenticated("invalid bearer token")
        if scheme == "basic" and self.users:
            user, password = basic_credentials(authorization)
            hashed = self.users.get(user)
            if hashed is not None and bcrypt.checkpw(password.encode(), hashed):
                return Identity(user)
            raise Unauthenticated("invalid username or password")
        raise Unauthenticated(f"unsupported authorization scheme {scheme!r}")


class AllowAll:
    """The local :class:`~kubedag.app.catalog.Authorizer`: an authenticated identity may do everything."""

    def allowed(self, identity: Identity, verb: str, resource: str, namespace: str | None, *,
                name: str | None = None, subresource: str | None = None, group: str = "kubedag.io") -> bool:
        """Always True."""
        return True


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, auth_enabled: bool) -> None:
    """Refuse to serve without authentication beyond loopback. Raises ValueError naming ``--host``."""
    if not auth_enabled and not is_loopback(host):
        raise ValueError(f"--host {host}: refusing to serve beyond loopback without authentication "
                         "(use --token/--generate-token or --users)")


def new_token() -> str:
    """A random token (32 bytes, URL-safe)."""
    return secrets.token_urlsafe(32)


class IssuedTokens:
    """Tokens issued by ``POST /auth/token`` (Airflow 3's simple auth manager's endpoint): token -> identity,
    each valid ``ttl`` seconds, kept in this process only."""

    def __init__(self, ttl: float = 24 * 3600, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self._clock = ttl, clock
        self._tokens: dict[str, tuple[Identity, float]] = {}
        self._lock = threading.Lock()

    def issue(self, who: Identity) -> str:
        """A new token for ``who``."""
        token = new_token()
        with self._lock:
            now = self._clock()
            self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
            self._tokens[token] = (who, now + self.ttl)
        return token

    def resolve(self, token: str) -> Identity | None:
        """The identity of a live token, else None."""
        with self._lock:
            found = self._tokens.get(token)
        return found[0] if found and found[1] > self._clock() else None


def unauthenticated(detail: str) -> HTTPException:
    """A 401 in Airflow's shape, with the ``WWW-Authenticate`` challenge."""
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer, Basic realm="kubedag"'})


def identity(request: Request) -> Identity:
    """FastAPI dependency: who makes ``request`` (see the module docstring). Raises HTTPException 401."""
    services: Any = request.app.state.services
    header = request.headers.get("authorization")
    if header and header.lower().startswith("bearer "):
        issued = request.app.state.tokens.resolve(header.split(" ", 1)[1].strip())
        if issued is not None:
            return issued
    try:
        return services.authenticator.authenticate(header)
    except Unauthenticated as exc:
        raise unauthenticated(str(exc)) from None


def authorize(operation_id: str) -> Callable[..., Identity]:
    """A FastAPI dependency for the endpoint ``operation_id``: the caller's identity once every permission of
    :data:`~kubedag.api.permissions.PERMISSIONS` ``[operation_id]`` is allowed. Raises HTTPException 403
    naming the missing permission, 401 when unauthenticated, 503 when the authorizer cannot decide (a
    SubjectAccessReview that failed); KeyError at import for an unknown id.
    The namespace and DAG name asked about are the DAG's (:meth:`~kubedag.api.services.ApiServices.where`).
    The identity is left in ``request.state.identity`` for :func:`kubedag.api.routes.common.services`."""
    needs = PERMISSIONS[operation_id]

    def dependency(request: Request, who: Identity = Depends(identity)) -> Identity:
        services: Any = request.app.state.services
        namespace, dag_name = services.where(request.path_params.get("dag_id"))
        for need in needs:
            name = request.path_params.get(need.name_param) if need.name_param else None
            if need.name_param == "dag_id":
                name = dag_name
            try:
                allowed = services.authorizer.allowed(who, need.verb, need.resource, namespace, name=name,
                                                      subresource=need.subresource, group=need.group)
            except OperationError as exc:
                raise HTTPException(503, f"cannot authorise the request now: {exc}") from None
            if not allowed:
                where = f" in namespace {namespace}" if namespace else ""
                raise HTTPException(403, f"{who.username} may not {need.describe()}"
                                         f"{' ' + repr(name) if name else ''}{where}")
        request.state.identity = who
        return who

    dependency.__name__ = f"authorize_{operation_id}"
    return dependency

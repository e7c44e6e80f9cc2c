"""A small asynchronous Kubernetes API client for the controller (aiohttp, plain JSON dicts).

The controller's hot path (observe a pod, create its successors' pods, write one status) must take
milliseconds, so it talks JSON over one pooled aiohttp session instead of the official client's
model objects. Connection settings come from the official ``kubernetes`` package's loaders, as
kubectl finds them (:func:`load_connection`), and the same :class:`Connection` logs kopf in.

Requests are rate limited client-side by a token bucket (:class:`RateLimiter`), as client-go's
``--kube-api-qps`` / ``--kube-api-burst``, and bounded: at most ``limits.concurrency`` in flight and
``limits.queue`` waiting (:mod:`kubedag.k8s.limits`); a call finding the queue full raises :class:`Saturated`
(an ``ApiError`` 429) unsent. Every non-2xx answer raises :class:`ApiError` carrying the API server's
``Status`` (code, reason, message) and the request's verb and path.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kubedag.app import metrics
from kubedag.k8s.limits import AsyncLimiter, QueueFull, RequestLimits

IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
JSON_MERGE = "application/merge-patch+json"
USER_AGENT = "kubedag-controller"
"""The ``User-Agent`` of the controller's own requests (kopf's watches send kopf's)."""
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
LIST_CHUNK = 500
"""Objects a page of a list at most (the controller's own lists and its informers' initial listings)."""
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
"""The Kubernetes verb of a request by HTTP method (a GET of a collection is ``list``: its caller says so)."""


class NotLeader(Exception):
    """A write refused before it was sent: this controller replica no longer holds the leader Lease (the fence of
    :mod:`kubedag.k8s.leader`)."""


class ApiError(Exception):
    """A Kubernetes API error: ``status`` (HTTP code), ``reason`` (e.g. ``AlreadyExists``), ``message``, and the
    request's Kubernetes ``verb`` and URL ``path`` when known."""

    def __init__(self, status: int, reason: str, message: str, *, verb: str | None = None,
                 path: str | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.verb = verb
        self.path = path


class Saturated(ApiError):
    """A call refused unsent because the client's queue was full (:class:`kubedag.k8s.limits.QueueFull`): handled
    as the API server's own 429 (retry later)."""

    @classmethod
    def of(cls, refused: QueueFull) -> Saturated:
        return cls(refused.status, refused.reason, refused.message)


@dataclass(frozen=True)
class Connection:
    """Where and how to reach the API server: ``server`` URL, bearer ``token`` (or ``token_file``, re-read as
    it rotates in a pod), client certificate paths, CA path, ``insecure`` to skip TLS verification, and the
    kubeconfig context's ``namespace``."""

    server: str
    token: str | None = None
    token_file: str | None = None
    ca_path: str | None = None
    cert_path: str | None = None
    key_path: str | None = None
    insecure: bool = False
    namespace: str | None = None

    def bearer(self) -> str | None:
        """The bearer token to send now (re-read from ``token_file`` when there is one)."""
        if self.token_file:
            try:
                return Path(self.token_file).read_text().strip()
            except OSError:
                return self.token
        return self.token

    def ssl_context(self) -> ssl.SSLContext | bool:
        """An SSL context for https servers (False disables verification when ``insecure``)."""
        if not self.server.startswith("https"):
            return False
        if self.insecure:
            return False
        context = ssl.create_default_context(cafile=self.ca_path)
        if self.cert_path:
            context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def kopf_info(self) -> Any:
        """This connection as kopf's ``ConnectionInfo`` (returned from an ``@kopf.on.login`` handler)."""
        import kopf

        token = self.bearer()
        return kopf.ConnectionInfo(
            server=self.server, ca_path=self.ca_path, insecure=self.insecure or None,
            scheme="Bearer" if token else None, token=token,
            certificate_path=self.cert_path, private_key_path=self.key_path,
            default_namespace=self.namespace,
        )


def load_connection(kubeconfig: str | None = None, context: str | None = None) -> Connection:
    """Find the cluster as kubectl does, with the CLI's loader (:func:`kubedag.k8s.kubeapi.load_configuration`):
    ``kubeconfig`` (else ``$KUBECONFIG``, else ``~/.kube/config``) with ``context`` (else its current context);
    with no kubeconfig at all, the in-cluster service account (whose token file is re-read as it rotates).

    Raises:
        kubedag.k8s.kubeapi.KubeError: no usable configuration (no config found, unknown context, bad file).
    """
    from kubedag.k8s.kubeapi import load_configuration

    cfg, namespace, source = load_configuration(kubeconfig, context)
    auth = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    token = None
    if auth:
        prefix = (cfg.api_key_prefix or {}).get("authorization")
        token = auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else auth
        if prefix and prefix.lower() != "bearer":
            token = auth
    in_cluster = source == "in-cluster configuration"
    return Connection(
        server=cfg.host.rstrip("/"), token=token, token_file=str(IN_CLUSTER_TOKEN) if in_cluster else None,
        ca_path=cfg.ssl_ca_cert, cert_path=cfg.cert_file, key_path=cfg.key_file, insecure=not cfg.verify_ssl,
        namespace=namespace,
    )


class RateLimiter:
    """A token bucket: at most ``burst`` requests at once, refilled at ``qps`` a second (client-go's
    ``flowcontrol.NewTokenBucketRateLimiter``). ``qps <= 0`` disables limiting."""

    def __init__(self, qps: float, burst: int) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until a request may be sent."""
        if self.qps <= 0:
            return
        async with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.qps)
            self._stamp = now
            if self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self.qps)
                self._tokens = 1.0
                self._stamp = time.monotonic()
            self._tokens -= 1


def merge_patch_between(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns the object ``old`` into ``new``: changed and added members as in
    ``new`` (objects recursively, lists whole), and every member ``old`` has and ``new`` lacks set to null, so that
    it is removed. ``new`` must hold no null (a merge patch cannot set one); ``{}`` when they are equal."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key in old and old[key] == value:
            continue
        before = old.get(key)
        patch[key] = merge_patch_between(before, value) if isinstance(before, dict) and isinstance(value, dict) \
            else value
    return patch


def resource_path(api_version: str, plural: str, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
    """The URL path of a collection or object: ``/api/v1/namespaces/ns/pods/name/log`` and the like."""
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = base + (f"/namespaces/{quote(namespace)}" if namespace else "") + f"/{plural}"
    if name:
        path += f"/{quote(name)}"
    if sub:
        path += f"/{sub}"
    return path


class KubeClient:
    """JSON requests to the API server over one aiohttp session. Use as ``async with KubeClient(conn) as kc``.

    ``requests`` counts the requests sent (for benchmarks). ``limits``: concurrency and queue bounds
    (:class:`kubedag.k8s.limits.RequestLimits`; default 16 and 1,000), ``name`` labels their metrics. All methods
    raise :class:`ApiError` on an error answer (:class:`Saturated` when the queue is full) and
    ``aiohttp.ClientError`` / ``asyncio.TimeoutError`` when the server is unreachable.
    """

    def __init__(self, connection: Connection, *, qps: float = 50.0, burst: int = 100, timeout: float = 30.0,
                 limits: RequestLimits | None = None, name: str = "controller") -> None:
        self.connection = connection
        self.limiter = RateLimiter(qps, burst)
        self.bounds = AsyncLimiter(limits, name, error=Saturated.of)
        self.timeout = timeout
        self.requests = 0
        self.write_gate: Callable[[], bool] | None = None
        """The fence: when set, every request but a GET is refused (:class:`NotLeader`) while it returns False."""
        self._session: Any = None

    async def __aenter__(self) -> KubeClient:
        import aiohttp

        connector = aiohttp.TCPConnector(ssl=self.connection.ssl_context(), limit=64)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout),
            json_serialize=lambda obj: json.dumps(obj, separators=(",", ":")),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
        content_type: str = "application/json", raw: bool = False, verb: str | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON answer (``raw``: the text). Counted in
        ``kubedag_kube_api_requests_total`` by ``verb`` (default: :data:`VERBS` of ``method``) and HTTP code
        (``<error>`` when no answer came), timed in ``kubedag_kube_api_request_duration_seconds``."""
        if self._session is None:
            raise RuntimeError("KubeClient used outside 'async with'")
        verb = verb or VERBS.get(method, method.lower())
        async with self.bounds.slot(f"{verb} {path}"):
            code = "<error>"
            start = time.perf_counter()
            try:
                answer, code = await self._send(method, path, body, params, content_type, raw)
                return answer
            except ApiError as exc:
                code = str(exc.status)
                exc.verb, exc.path = exc.verb or verb, exc.path or path
                raise
            finally:
                metrics.KUBE_API_REQUESTS.labels(verb, code).inc()
                metrics.KUBE_API_DURATION.labels(verb).observe(time.perf_counter() - start)

    async def _send(self, method: str, path: str, body: Any, params: dict[str, str] | None, content_type: str,
                    raw: bool) -> tuple[Any, str]:
        """One request as :meth:`request` describes it; the answer and its HTTP code."""
        await self.limiter.acquire()
        if method != "GET" and self.write_gate is not None and not self.write_gate():
            raise NotLeader(f"{method} {path} not sent: this controller replica does not hold the leader Lease")
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        token = self.connection.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body, separators=(",", ":"))
        self.requests += 1
        async with self._session.request(method, self.connection.server + path, data=data, params=params, headers=headers) as resp:
            text = await resp.text()
            if resp.status >= 400:
                try:
                    status = json.loads(text)
                except ValueError:
                    status = {}
                raise ApiError(resp.status, status.get("reason") or resp.reason or "Error", status.get("message") or text[:500])
            if raw:
                return text, str(resp.status)
            return (json.loads(text) if text else None), str(resp.status)

    # -- conveniences -------------------------------------------------------------------------------
    async def get(self, api_version: str, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist (404)."""
        try:
            return await self.request("GET", resource_path(api_version, plural, namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def list(self, api_version: str, plural: str, namespace: str | None, label_selector: str | None = None) -> list[dict[str, Any]]:
        """The items of a list, read in pages (:meth:`pages`)."""
        return [item async for page in self.pages(api_version, plural, namespace, label_selector) for item in page]

    async def pages(self, api_version: str, plural: str, namespace: str | None, label_selector: str | None = None,
                    limit: int = LIST_CHUNK) -> AsyncIterator[list[dict[str, Any]]]:
        """The items of a list, at most ``limit`` a page (the API's ``limit``/``continue``), so that a large list
        (10,000 kept pods after a restart) is never decoded at once. Raises :class:`ApiError` (410 ``Expired``: the
        continue token outlived the API server's history; list again)."""
        params = {"limit": str(limit)}
        if label_selector:
            params["labelSelector"] = label_selector
        while True:
            answer = await self.request("GET", resource_path(api_version, plural, namespace), params=params, verb="list")
            yield list(answer.get("items") or [])
            token = (answer.get("metadata") or {}).get("continue")
            if not token:
                return
            params["continue"] = token

    async def create(self, api_version: str, plural: str, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj``; the created object. 409 AlreadyExists raises :class:`ApiError`."""
        return await self.request("POST", resource_path(api_version, plural, namespace), body=obj)

    async def patch(self, api_version: str, plural: str, namespace: str | None, name: str, patch: dict[str, Any], *,
                    sub: str | None = None, content_type: str = JSON_MERGE) -> dict[str, Any]:
        """Patch an object (JSON merge patch by default); the patched object."""
        return await self.request("PATCH", resource_path(api_version, plural, namespace, name, sub), body=patch, content_type=content_type)

    async def delete(self, api_version: str, plural: str, namespace: str | None, name: str, *,
                     propagation: str | None = "Background", grace_seconds: int | None = None) -> bool:
        """Delete an object; False if it was already gone."""
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if propagation:
            body["propagationPolicy"] = propagation
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        try:
            await self.request("DELETE", resource_path(api_version, plural, namespace, name), body=body)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def pod_log(self, namespace: str, name: str, container: str | None = None, limit_bytes: int | None = None) -> str | None:
        """The pod's log text, or None when the pod is gone."""
        params = {}
        if container:
            params["container"] = container
        if limit_bytes:
            params["limitBytes"] = str(limit_bytes)
        try:
            return await self.request("GET", resource_path("v1", "pods", namespace, name, "log"), params=params or None, raw=True)
        except ApiError as exc:
            if exc.status in (400, 404):
                return None
            raise

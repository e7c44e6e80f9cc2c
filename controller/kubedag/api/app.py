"""The REST API application: :func:`create_app` builds the FastAPI app serving Airflow 3's ``/api/v2`` (and the
seeds' Airflow 2 calls) from injected :class:`~kubedag.api.services.ApiServices`; ``kubedag api`` and
``kubedag standalone`` serve it with uvicorn (:func:`serve`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.middleware.gzip import GZipMiddleware

from kubedag.api.auth import IssuedTokens
from kubedag.api.routes import compat, dags, resources, runs, task_instances
from kubedag.api.routing import install_error_handlers
from kubedag.api.services import ApiServices

ROUTERS = (dags.router, runs.router, task_instances.router, resources.router, compat.router)

DESCRIPTION = """kubedag's REST API: Airflow 3's public REST API (`/api/v2`) for the endpoints kubedag has, plus the
Airflow 2 calls `POST /api/v1/dags/{dag_id}/dagRuns` and `GET /health`. Every endpoint but health, version and
the probes needs a bearer token (`POST /auth/token`, the start-up token locally, a Kubernetes token on a cluster)
or basic auth; each is authorised with the Kubernetes verb on the kubedag.io resource it touches."""


class CurlJson:
    """ASGI middleware: a body sent as ``application/x-www-form-urlencoded`` (what ``curl -d '{"conf": {}}'``
    sends without ``-H 'Content-Type: application/json'``) is read as JSON, so the seeds' curl calls work as
    written; no endpoint takes form data. Only the API's own paths (``/api/``, ``/auth/``): the web UI mounted
    beside it (``/ui/``) posts real forms."""

    FORM = b"application/x-www-form-urlencoded"

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PATCH", "PUT") and \
                scope["path"].startswith(("/api/", "/auth/")):
            scope = {**scope, "headers": [(k, b"application/json" if k == b"content-type" and v == self.FORM else v)
                                          for k, v in scope["headers"]]}
        await self.app(scope, receive, send)


def create_app(services: ApiServices, *, extra_routes: Iterable[APIRouter] = (),
               mounts: Iterable[tuple[str, Any]] = (), tokens: IssuedTokens | None = None) -> FastAPI:
    """The FastAPI app on ``services``.

    ``extra_routes``: more routers (another component's; they authorise themselves). ``mounts``: ``(path,
    ASGI app)`` pairs, e.g. ``("/metrics", prometheus_client.make_asgi_app())``; when none is given for
    ``/metrics`` and ``prometheus_client`` is installed, its default registry is mounted there.
    ``tokens``: where ``/auth/token``'s tokens are kept (a new store by default).
    """
    app = FastAPI(title="kubedag REST API (Airflow 3 compatible)", version=services.version,
                  description=DESCRIPTION, docs_url="/docs", redoc_url=None, openapi_url="/openapi.json")
    app.state.services = services
    app.state.tokens = tokens or IssuedTokens()
    install_error_handlers(app)
    app.add_middleware(CurlJson)
    app.add_middleware(GZipMiddleware, minimum_size=1024)  # a 100x200 grid: 275 KiB of HTML, 5 KiB gzipped
    for router in (*ROUTERS, *extra_routes):
        app.include_router(router)
    mounted = dict(mounts)
    if "/metrics" not in mounted:
        metrics = _prometheus_app()
        if metrics is not None:
            mounted["/metrics"] = metrics
    for path, asgi in mounted.items():
        app.mount(path, asgi)
    return app


def _prometheus_app() -> Any:
    """``prometheus_client``'s ASGI app of its default registry, or None when it is not installed."""
    try:
        import prometheus_client  # noqa: PLC0415 - optional: served only where it is installed
    except ImportError:
        return None
    return prometheus_client.make_asgi_app()


def serve(app: FastAPI, host: str, port: int, *, log_level: str = "warning") -> tuple[Callable[[], None],
                                                                                     Callable[[], None]]:
    """``(run, stop)`` of a uvicorn server of ``app`` on ``host:port``: ``run()`` blocks until ``stop()``, which lets
    open responses finish for at most 5 seconds, then cancels them (a live log stream would otherwise hold it).
    Signal handlers are left to the caller (``kubedag standalone`` stops every service on Ctrl-C)."""
    import uvicorn  # noqa: PLC0415 - start-up time: only the serving commands need it

    # a stop waits at most 5 s for open responses: the UI's live log streams (text/event-stream) would hold it
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                                           timeout_graceful_shutdown=5))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]

    def stop() -> None:
        server.should_exit = True

    return server.run, stop

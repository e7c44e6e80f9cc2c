"""How an endpoint is declared (:func:`endpoint`: authorised from :mod:`kubedag.api.permissions`, or public) and
how the application's errors become Airflow's error bodies (:func:`install_error_handlers`).

Airflow 3's errors are FastAPI's: ``{"detail": "<message>"}`` with 400 (bad request), 401, 403, 404, 409
(conflict), and 422 ``{"detail": [<validation errors>]}`` for a body or parameter of the wrong shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from kubedag.api.auth import authorize, unauthenticated
from kubedag.api.permissions import PERMISSIONS, PUBLIC
from kubedag.api.schemas.errors import HTTPExceptionResponse
from kubedag.app.catalog import Unauthenticated
from kubedag.app.operations.ports import AlreadyExists, InvalidRequest, NotFound, OperationError, Unavailable

ERRORS = {code: {"model": None, "description": text} for code, text in (
    (400, "Bad Request"), (401, "Unauthorized"), (403, "Forbidden"), (404, "Not Found"), (409, "Conflict"),
    (503, "Service Unavailable"))}


def endpoint(router: APIRouter, method: str, path: str, operation_id: str, *,
             errors: tuple[int, ...] = (400, 401, 403), **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare ``method path`` as ``operation_id`` on ``router``, authorised by its permissions
    (:data:`~kubedag.api.permissions.PERMISSIONS`), or public when in :data:`~kubedag.api.permissions.PUBLIC`.
    ``errors``: the error codes it documents (Airflow's ``HTTPExceptionResponse``). Raises KeyError for an
    operation id in neither table, so no endpoint is served without an authorisation decision."""
    if operation_id in PUBLIC:
        dependencies = []
    else:
        dependencies = [Depends(authorize(operation_id))]
        PERMISSIONS[operation_id]  # noqa: B018 - fail early for a missing entry
    responses = {code: {"model": HTTPExceptionResponse, "description": ERRORS[code]["description"]}
                 for code in errors}
    return router.api_route(path, methods=[method], operation_id=operation_id, dependencies=dependencies,
                            responses={**responses, **kwargs.pop("responses", {})}, **kwargs)


def _detail(status: int) -> Callable[[Request, Exception], JSONResponse]:
    def handler(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status)
    return handler


def install_error_handlers(app: FastAPI) -> None:
    """Map the application's errors to HTTP: NotFound 404, AlreadyExists 409, InvalidRequest 400, another
    OperationError 409 (the operation cannot be done in the current state), Unavailable 503 (the Kubernetes API
    server or its reviews cannot answer now, its client is saturated, or the server's own ServiceAccount lacks a
    permission, a deployment error named in the reason: one line, as Airflow answers 503 when its DB is down),
    Unauthenticated 401."""
    app.add_exception_handler(Unavailable, _detail(503))
    app.add_exception_handler(NotFound, _detail(404))
    app.add_exception_handler(AlreadyExists, _detail(409))
    app.add_exception_handler(InvalidRequest, _detail(400))
    app.add_exception_handler(OperationError, _detail(409))

    def on_unauthenticated(request: Request, exc: Exception) -> JSONResponse:
        error = unauthenticated(str(exc))
        return JSONResponse({"detail": error.detail}, status_code=401, headers=error.headers)

    app.add_exception_handler(Unauthenticated, on_unauthenticated)

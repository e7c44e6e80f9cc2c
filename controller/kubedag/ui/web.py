"""The UI's HTTP plumbing: who is asking (the API's authenticator, from the ``Authorization`` header or the
login cookie), whether they may (the API's authorizer, in Kubernetes verbs), template rendering, and one route
class that turns the application's errors into pages (401 -> the login page, 403, 404, 400/409 with the
message).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape

from kubedag.app.catalog import Catalog, DagInfo, Identity, Unauthenticated
from kubedag.app.operations import AlreadyExists, InvalidRequest, NotFound, OperationError
from kubedag.ui import views
from kubedag.ui.services import UiServices

COOKIE = "kubedag_ui_auth"
"""The login cookie: the ``Authorization`` header value the user logged in with (HttpOnly, SameSite=Strict, so
another site can neither read it nor send it with a form post)."""

BACKGROUND = "kd-background"
"""The header of the UI's own fragment requests (polls, lazy loads: ``hx-headers`` in the templates): an error of
one does not open the error dialog; the fragment keeps what it shows."""


class Forbidden(Exception):
    """The identity may not do this (HTTP 403); the message names the Kubernetes verb and resource."""


@dataclass(frozen=True)
class Ui:
    """What every UI route shares: the services, the URL prefix (``""`` or ``/ui``) and the templates."""

    services: UiServices
    prefix: str
    env: Environment

    def identity(self, request: Request) -> Identity:
        """Who is asking. Raises Unauthenticated (no or bad credentials)."""
        header = request.headers.get("authorization") or request.cookies.get(COOKIE)
        return self.services.authenticator.authenticate(header)

    def require(self, request: Request, verb: str, resource: str, namespace: str | None = None, *,
                subresource: str | None = None, name: str | None = None, group: str = "kubedag.io") -> Identity:
        """The identity, if it may ``verb`` ``resource`` (a SubjectAccessReview on a cluster). Raises
        Unauthenticated or :class:`Forbidden`."""
        identity = self.identity(request)
        namespace = namespace or self.services.namespace
        if not self.services.authorizer.allowed(identity, verb, resource, namespace, name=name,
                                                subresource=subresource, group=group):
            what = f"{resource}/{subresource}" if subresource else resource
            raise Forbidden(f"{identity.username} may not {verb} {what}"
                            + (f" in namespace {namespace}" if namespace else ""))
        return identity

    def catalog_for(self, identity: Identity) -> Catalog:
        """The catalog as ``identity`` sees it (the services' ``scope``: on a cluster only the namespaces where it
        may list DAGs), or the one catalog when there is no scope."""
        scope = self.services.scope
        return self.services.catalog if scope is None else scope(identity)

    def dag_access(self, request: Request, dag_id: str, verb: str, resource: str, *,
                   subresource: str | None = None, group: str = "kubedag.io") -> tuple[Catalog, DagInfo, Identity]:
        """Authorise ``verb`` ``resource`` in the namespace of DAG ``dag_id`` (the services' ``locate``; with the
        DAG's name for ``dags``, resourceName-level RBAC as the REST API), then read the DAG from the identity's
        catalog. Returns ``(catalog, DAG, identity)``. Raises Unauthenticated, :class:`Forbidden`, NotFound."""
        locate = self.services.locate
        namespace, name = locate(dag_id) if locate is not None else (self.services.namespace, dag_id)
        identity = self.require(request, verb, resource, namespace, subresource=subresource, group=group,
                                name=name if resource == "dags" else None)
        catalog = self.catalog_for(identity)
        return catalog, catalog.dag(dag_id), identity

    def page(self, template: str, request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
        """Render ``template`` with ``context`` plus ``base`` (the prefix), ``request`` and ``partial`` (True
        for an htmx request, which wants only the fragment)."""
        html = self.env.get_template(template).render(
            base=self.prefix, request=request, partial=bool(request.headers.get("hx-request")), **context)
        return HTMLResponse(html, status_code=status_code)


def environment() -> Environment:
    """The Jinja2 environment of the UI's templates (autoescaped) with its filters: ``when`` (UTC instant), ``short`` (the same without year),
    ``duration`` (seconds -> H:MM:SS), ``color`` (a state's Airflow color), ``state`` (``None`` -> ``none``)."""
    env = Environment(loader=PackageLoader("kubedag.ui", "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(when=views.when, short=views.short_when, duration=views.duration_text, state=views.state_name,
                       color=lambda s: views.STATE_COLORS.get(views.state_name(s), "white"))
    env.globals.update(STATE_COLORS=views.STATE_COLORS, STATE_CODES=views.STATE_CODES)
    return env


def route_class(ui: Ui) -> type[APIRoute]:
    """An APIRoute class whose handler renders the application's errors as pages (the UI router cannot
    register app-wide exception handlers: it is mounted into the API's app)."""

    class UiRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def handle(request: Request) -> Response:
                response = await errors(request)
                if request.headers.get(BACKGROUND) and response.status_code in (400, 403, 404, 409):
                    return Response(status_code=204)  # a poll or lazy load keeps what it shows; no dialog pops up
                if response.status_code >= 400 and request.headers.get("hx-request"):
                    # htmx shows an error in the dialog, whatever element asked (see static/ui.js)
                    response.headers.update({"HX-Retarget": "#modal-body", "HX-Reswap": "innerHTML"})
                return response

            async def errors(request: Request) -> Response:
                try:
                    return await handler(request)
                except RequestValidationError as exc:  # a bad query or form field: name it
                    fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
                    return ui.page("error.html", request, 400, title="Cannot do that", message=fields, identity=None)
                except Unauthenticated as exc:
                    if request.headers.get("hx-request"):
                        return Response(status_code=401, headers={"HX-Redirect": f"{ui.prefix}/login"})
                    return ui.page("login.html", request, 401, error=str(exc), identity=None)
                except Forbidden as exc:
                    return ui.page("error.html", request, 403, title="Forbidden", message=str(exc), identity=None)
                except NotFound as exc:
                    return ui.page("error.html", request, 404, title="Not found", message=str(exc), identity=None)
                except (InvalidRequest, AlreadyExists, OperationError) as exc:
                    code = 400 if isinstance(exc, InvalidRequest) else 409
                    return ui.page("error.html", request, code, title="Cannot do that", message=str(exc),
                                   identity=None)

            return handle

    return UiRoute


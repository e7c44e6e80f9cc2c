"""kubedag's web UI: server-rendered pages (Jinja2 templates + htmx, no build step) served by ``kubedag api``.

:func:`ui_router` makes the FastAPI router that the API's app mounts. The UI reads through the same
:class:`~kubedag.app.catalog.Catalog` as the REST API, acts only through :mod:`kubedag.app.operations`, and asks
the same authenticator and authorizer. Its front-end libraries (htmx, dagre) are vendored into ``static/vendor``
by ``scripts/ui-assets`` from versions pinned in ``ui-assets/package-lock.json``: no CDN, no Node at run time.
"""

from __future__ import annotations

from fastapi import APIRouter

from kubedag.ui.actions import add_actions
from kubedag.ui.pages import add_pages
from kubedag.ui.services import UiServices
from kubedag.ui.stream import add_stream
from kubedag.ui.web import Ui, environment, route_class

__all__ = ["UiServices", "ui_router"]


def ui_router(services: UiServices, prefix: str = "/ui") -> APIRouter:
    """The UI's routes, under ``prefix`` (``""`` to serve it at the root): include it with
    ``app.include_router(ui_router(services))``. ``services``: see :class:`UiServices`."""
    ui = Ui(services, prefix.rstrip("/"), environment())
    router = APIRouter(prefix=ui.prefix, route_class=route_class(ui))
    add_pages(router, ui)
    add_actions(router, ui)
    add_stream(router, ui)
    return router

"""What the web UI needs from the process that serves it: the same ports the REST API uses.

The UI reads through :class:`kubedag.app.catalog.Catalog` and acts only through :mod:`kubedag.app.operations`
(trigger, clear, mark, delete, pause) and the :class:`~kubedag.app.catalog.Backfills` port, so an action clicked
in the browser is the same code as the API call and the CLI command. Authentication and authorisation are the
API's :class:`~kubedag.app.catalog.Authenticator` and :class:`~kubedag.app.catalog.Authorizer`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from kubedag.app.catalog import Authenticator, Authorizer, Backfills, Catalog, Identity
from kubedag.app.operations import DagSource, PauseFlags, RunsRepository


class UiServices(Protocol):
    """The services of one ``kubedag api`` process, as the UI uses them (attribute names are what it reads).

    The REST API's ``kubedag.api.services.ApiServices`` is one. ``backfills`` ``None``: backfills are not
    offered. ``clock``: the current time, UTC-aware. ``namespace``: the namespace served (``None`` locally),
    used in an authorisation when the DAG names none. ``scope``: the catalog one identity sees (``None``: the
    one catalog); ``locate``: ``(namespace, object name)`` of a DAG by its id (``None``: ``(namespace, dag_id)``).
    """

    catalog: Catalog
    runs: RunsRepository
    dags: DagSource
    pauses: PauseFlags
    backfills: Backfills | None
    authenticator: Authenticator
    authorizer: Authorizer
    clock: Callable[[], datetime]
    namespace: str | None
    scope: Callable[[Identity], Catalog] | None
    locate: Callable[[str], tuple[str | None, str]] | None



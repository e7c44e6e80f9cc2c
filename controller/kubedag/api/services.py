"""What the REST API is served from: :class:`ApiServices`, the ports an entry point injects into
:func:`kubedag.api.create_app` (locally the metadata DB and DAG folder, on a cluster the Kubernetes API).

The API holds no state of its own beyond the tokens ``/auth/token`` issued (:class:`kubedag.api.auth.IssuedTokens`):
every read goes to :class:`~kubedag.app.catalog.Catalog`, every write to :mod:`kubedag.app.operations` or the
:class:`~kubedag.app.catalog.Backfills` port.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from kubedag.app.catalog import Authenticator, Authorizer, Backfills, Catalog, Identity, RunNotes
from kubedag.app.operations.ports import DagSource, PauseFlags, RunsRepository


def utc_now() -> datetime:
    """The current instant, UTC-aware (the default clock)."""
    return datetime.now(UTC)


@dataclass
class ApiServices:
    """The ports of one API server.

    ``catalog``: every read. ``runs``/``dags``/``pauses``: the ports of the operations (trigger, clear, mark,
    delete, pause). ``backfills``: creating and steering backfills. ``authenticator``/``authorizer``: who asks,
    and whether they may (Kubernetes verbs; see :mod:`kubedag.api.permissions`). ``clock``: now, UTC-aware.
    ``version``: kubedag's version (``GET /api/v2/version``). ``mode``: ``local`` or ``cluster``.
    ``namespace``: the Kubernetes namespace the API serves (``None`` locally), used in every authorisation.
    ``ready``: whether the server is ready (``/readyz``): caches synced and the metadata DB reachable; returns
    ``None`` when ready, else the reason (one line).
    ``scope``: the catalog one identity sees (a cluster's: only the namespaces where it may ``list dags``, the
    others invisible); ``None``: ``catalog`` for everyone. ``locate``: ``(namespace, object name)`` of a DAG by its API
    dag_id (a cluster serving several namespaces names the others' DAGs ``<namespace>.<name>``), used to
    authorise a request on that DAG; ``None``: ``(namespace, dag_id)``. ``notes``: where runs' notes are kept
    (``None``: nowhere; a note is then refused, 400).
    """

    catalog: Catalog
    runs: RunsRepository
    dags: DagSource
    pauses: PauseFlags
    backfills: Backfills
    authenticator: Authenticator
    authorizer: Authorizer
    clock: Callable[[], datetime] = utc_now
    version: str = "0.0.0"
    mode: str = "local"
    namespace: str | None = None
    ready: Callable[[], str | None] = field(default=lambda: None)
    scope: Callable[[Identity], Catalog] | None = None
    locate: Callable[[str], tuple[str | None, str]] | None = None
    notes: RunNotes | None = None

    def for_identity(self, who: Identity) -> ApiServices:
        """These services as ``who`` sees them (:attr:`scope` applied to the catalog)."""
        return self if self.scope is None else replace(self, catalog=self.scope(who), scope=None)

    def where(self, dag_id: str | None) -> tuple[str | None, str | None]:
        """``(namespace, DAG object name)`` a request on ``dag_id`` is authorised in (``dag_id`` None or ``~``:
        the home namespace and no name)."""
        if dag_id is None or dag_id == "~":
            return self.namespace, None
        return self.locate(dag_id) if self.locate is not None else (self.namespace, dag_id)

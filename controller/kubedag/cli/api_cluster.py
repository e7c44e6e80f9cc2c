"""The composition of ``kubedag api --cluster``: the cluster's ports (:func:`kubedag.k8s.api_ports.cluster_api_ports`)
and the controller's metadata DB as their history (:class:`kubedag.store.catalog.SqlCatalog`), put into the REST
API's :class:`kubedag.api.services.ApiServices`. Adapters never import each other: this entry-point module is
where the cluster and the store meet."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kubedag.api.services import ApiServices
from kubedag.app.catalog import Catalog, ComponentHealth
from kubedag.app.scheduler_ports import FolderScan


class NoDagFolder:
    """The DAG folder of the history catalog on a cluster: none (DAGs are objects; the DB holds only history)."""

    def scan(self) -> FolderScan:
        return FolderScan()


def cluster_history(database_url: str) -> tuple[Catalog, Callable[[], None]]:
    """The controller's metadata DB as a read-only Catalog (its dag_ids ``<namespace>/<name>``) and a function
    that closes it."""
    from kubedag.store.catalog import SqlCatalog  # start-up time: SQLAlchemy only where a DB is used
    from kubedag.store.db import open_store

    engine, sessions = open_store(database_url)
    return SqlCatalog(sessions, NoDagFolder()), engine.dispose


def cluster_services(kube: Any, *, history: Catalog | None = None, namespaces: Sequence[str] = (),
                     basic_auth_secret: str | None = None, audiences: Sequence[str] = (),
                     scheduler: Callable[[], ComponentHealth] | None = None, version: str = "0.0.0") -> ApiServices:
    """The REST API's services on a cluster: ``kube`` (a :class:`kubedag.k8s.kubeapi.KubeApi`, its namespace the
    home one), ``namespaces`` served besides it (``<namespace>.<name>`` ids), the ``history`` Catalog, the
    basic-auth Secret (None: off), the token ``audiences`` and the controller's health ``scheduler``. Each caller's
    catalog is limited to the namespaces it may ``list dags`` in; a request on a DAG is authorised in the DAG's
    namespace for the DAG object's name."""
    from kubedag.k8s.api_ports import cluster_api_ports  # start-up time: the kubernetes client

    ports = cluster_api_ports(kube, namespaces=namespaces, history=history, basic_auth_secret=basic_auth_secret,
                              audiences=audiences, scheduler=scheduler)
    return ApiServices(catalog=ports.catalog, runs=ports.runs, dags=ports.dags, pauses=ports.pauses,
                       backfills=ports.backfills, authenticator=ports.authenticator, authorizer=ports.authorizer,
                       mode="cluster", namespace=ports.namespace, version=version,
                       scope=lambda who: ports.catalog.for_identity(who, ports.authorizer),
                       locate=ports.catalog.locate)


__all__ = ["NoDagFolder", "cluster_history", "cluster_services"]

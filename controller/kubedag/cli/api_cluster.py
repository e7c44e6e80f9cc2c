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


def metadb_ready(catalog: Catalog) -> Callable[[], str | None]:
    """``/readyz`` of a server on ``catalog``: None while its metadata DB is healthy, else the reason (one line)."""
    def ready() -> str | None:
        health = catalog.health().metadatabase
        return None if health.status == "healthy" else f"metadata DB: {health.detail or health.status}"
    return ready


def cluster_services(kube: Any, *, history: Catalog | None = None, namespaces: Sequence[str] = (),
                     basic_auth_secret: str | None = None, audiences: Sequence[str] = (),
                     scheduler: Callable[[], ComponentHealth] | None = None, version: str = "0.0.0") -> ApiServices:
    """The REST API's services on a cluster: ``kube`` (a :class:`kubedag.k8s.kubeapi.KubeApi`, its namespace the
    home one), ``namespaces`` served besides it (``<namespace>.<name>`` ids), the ``history`` Catalog, the
    basic-auth Secret (None: off), the token ``audiences`` and the controller's health ``scheduler``. Each caller's
    catalog is limited to the namespaces it may ``list dags`` in; a request on a DAG is authorised in the DAG's
    namespace for the DAG object's name. Ready (``/readyz``) while the history's DB answers (always without one)."""
    from kubedag.k8s.api_ports import cluster_api_ports  # start-up time: the kubernetes client

    ports = cluster_api_ports(kube, namespaces=namespaces, history=history, basic_auth_secret=basic_auth_secret,
                              audiences=audiences, scheduler=scheduler)
    return ApiServices(catalog=ports.catalog, runs=ports.runs, dags=ports.dags, pauses=ports.pauses,
                       backfills=ports.backfills, authenticator=ports.authenticator, authorizer=ports.authorizer,
                       mode="cluster", namespace=ports.namespace, version=version,
                       scope=lambda who: ports.catalog.for_identity(who, ports.authorizer),
                       locate=ports.catalog.locate, notes=ports.runs,
                       ready=metadb_ready(ports.catalog) if history is not None else (lambda: None))


def parse_lease(value: str, home: str) -> tuple[str, str]:
    """``--leader-lease``: ``<namespace>/<name>`` or ``<name>`` (in ``home``) as ``(namespace, name)``.
    Raises ValueError naming the option."""
    namespace, _, name = value.rpartition("/")
    if not name or "/" in namespace:
        raise ValueError(f"--leader-lease: {value!r} is not <namespace>/<name> or <name>")
    return namespace or home, name


def serve_cluster(kubeconfig: str | None, context: str | None, namespace: str | None, *,
                  extra_namespaces: Sequence[str] = (), database_url: str | None = None,
                  basic_auth_secret: str | None = None, audiences: Sequence[str] = (),
                  leader_lease: str | None = None, version: str = "0.0.0",
                  kube_api_limits: tuple[int, int] | None = None) -> ApiServices:
    """The services of ``kubedag api --cluster`` from its options (as the Helm chart passes them): the cluster
    from ``kubeconfig``/``context`` (else in-cluster), home ``namespace`` (else the context's), the history from
    ``database_url`` (None: none), the controller's health from its Lease ``leader_lease``
    (``<namespace>/<name>``; None: from the history), ``kube_api_limits`` ``(concurrency, queue)`` of its Kubernetes
    client (None: :mod:`kubedag.k8s.limits`' defaults). Raises KubeError (no cluster configuration) or ValueError
    (a bad option, named)."""
    from kubedag.k8s.controller_health import lease_health  # start-up time: the kubernetes client
    from kubedag.k8s.kubeapi import connect
    from kubedag.k8s.limits import RequestLimits

    limits = RequestLimits(*kube_api_limits) if kube_api_limits else None
    kube = connect(kubeconfig, context, namespace, limits=limits, client_name="api")
    history = cluster_history(database_url)[0] if database_url else None
    scheduler = None
    if leader_lease:
        scheduler = lease_health(kube.api_client, *parse_lease(leader_lease, kube.namespace))
    return cluster_services(kube, history=history, namespaces=extra_namespaces, basic_auth_secret=basic_auth_secret,
                            audiences=audiences, scheduler=scheduler, version=version)


__all__ = ["NoDagFolder", "cluster_history", "cluster_services", "metadb_ready", "parse_lease", "serve_cluster"]

"""Every port the REST API needs on a cluster, built at once: :func:`cluster_api_ports` (the entry point,
``kubedag api --cluster``, puts them into its ``ApiServices``).

One API server serves its home namespace (plain dag_ids) and optionally more (``<namespace>.<name>``; see
:mod:`kubedag.k8s.catalog_objects`). Writes go through the operations' ports on DAG and DAGRun objects
(:class:`kubedag.k8s.kubeapi.ClusterRuns`), so the controller stays the only writer of runs and pods.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubedag.app.catalog import Catalog
from kubedag.app.operations.ports import OperationError
from kubedag.k8s.access import SubjectAccessReviewAuthorizer, TokenReviewAuthenticator, basic_users_from_secret
from kubedag.k8s.backfills import ClusterBackfills
from kubedag.k8s.catalog import ClusterCatalog
from kubedag.k8s.kubeapi import ClusterRuns, KubeApi


class ClusterDags:
    """:class:`kubedag.app.operations.ports.DagSource` over the catalog's DAG objects (by API dag_id)."""

    def __init__(self, catalog: ClusterCatalog) -> None:
        self.catalog = catalog

    def dag(self, name: str) -> Any:
        """The parsed DAG. Raises NotFound, or OperationError naming the errors of an invalid one."""
        info = self.catalog.dag(name)
        if info.dag is None:
            raise OperationError(f"DAG {name!r} is invalid: {info.error}")
        return info.dag

    def dags(self) -> list[Any]:
        """Every valid DAG, ordered by dag_id."""
        return [d.dag for d in self.catalog.dags() if d.dag is not None]


class RequestRuns:
    """:class:`kubedag.app.operations.ports.RunsRepository` and ``PauseFlags`` for a server of concurrent
    requests: :class:`ClusterRuns` keeps the run it loaded for the ``apply`` that follows (and what it submitted),
    so one shared instance would mix two requests' runs. Here each operation gets a fresh one in its thread
    (``load_run`` starts one, ``apply`` continues it; the other calls stand alone)."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api
        self._local = threading.local()

    def _fresh(self) -> ClusterRuns:
        self._local.runs = ClusterRuns(self.api)
        return self._local.runs

    @property
    def submitted(self) -> list[tuple[str, dict[str, Any]]]:
        """``(DAGRun name, action)`` this thread's last operation appended (to wait for the controller)."""
        runs = getattr(self._local, "runs", None)
        return runs.submitted if runs is not None else []

    def create_run(self, dag: Any, run: Any) -> None:
        self._fresh().create_run(dag, run)

    def load_run(self, dag: Any, run_id: str) -> Any:
        return self._fresh().load_run(dag, run_id)

    def apply(self, dag: Any, change: Any) -> None:
        (getattr(self._local, "runs", None) or self._fresh()).apply(dag, change)

    def delete_run(self, dag_id: str, run_id: str) -> None:
        self._fresh().delete_run(dag_id, run_id)

    def runs_by_logical_date(self, dag: Any) -> Any:
        return self._fresh().runs_by_logical_date(dag)

    def is_paused(self, dag: Any) -> bool:
        return self._fresh().is_paused(dag)

    def set_paused(self, dag: Any, paused: bool) -> bool:
        return self._fresh().set_paused(dag, paused)


@dataclass(frozen=True)
class ClusterApiPorts:
    """``catalog`` (reads), ``runs``/``pauses`` (the operations' RunsRepository and PauseFlags, on the home
    namespace), ``dags`` (DagSource), ``backfills``, ``authenticator`` (TokenReview, basic users when a Secret is
    named) and ``authorizer`` (SubjectAccessReview), and the home ``namespace``."""

    catalog: ClusterCatalog
    runs: RequestRuns
    dags: ClusterDags
    pauses: RequestRuns
    backfills: ClusterBackfills
    authenticator: TokenReviewAuthenticator
    authorizer: SubjectAccessReviewAuthorizer
    namespace: str


def cluster_api_ports(api: KubeApi, *, namespaces: Sequence[str] = (), history: Catalog | None = None,
                      basic_auth_secret: str | None = None, audiences: Sequence[str] = ()) -> ClusterApiPorts:
    """The ports of an API server on ``api`` (its namespace is home). ``history``: the metadata DB's Catalog
    (``kubedag.store``), composed by the entry point. ``basic_auth_secret``: the Secret of basic-auth users in the
    home namespace (None: basic auth off). ``audiences``: the audiences a bearer token must be for."""
    catalog = ClusterCatalog(api, namespaces=namespaces, history=history)
    runs = RequestRuns(api)
    basic = basic_users_from_secret(api, basic_auth_secret) if basic_auth_secret else None
    return ClusterApiPorts(
        catalog=catalog, runs=runs, dags=ClusterDags(catalog), pauses=runs, backfills=ClusterBackfills(catalog),
        authenticator=TokenReviewAuthenticator(api.api_client, audiences=audiences, basic=basic),
        authorizer=SubjectAccessReviewAuthorizer(api.api_client), namespace=api.namespace,
    )


__all__ = ["ClusterApiPorts", "ClusterDags", "RequestRuns", "cluster_api_ports"]

"""Every port the REST API needs on a cluster, built at once: :func:`cluster_api_ports` (the entry point,
``kubedag api --cluster``, puts them into its ``ApiServices``).

One API server serves its home namespace (plain dag_ids) and optionally more (``<namespace>.<name>``; see
:mod:`kubedag.k8s.catalog_objects`). Writes go through the operations' ports on DAG and DAGRun objects
(:class:`kubedag.k8s.kubeapi.ClusterRuns`), so the controller stays the only writer of runs and pods.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kubedag.app.catalog import Catalog, ComponentHealth
from kubedag.app.operations.ports import OperationError
from kubedag.k8s.access import SubjectAccessReviewAuthorizer, TokenReviewAuthenticator, basic_users_from_secret
from kubedag.k8s.backfills import ClusterBackfills
from kubedag.k8s.catalog import ClusterCatalog, kube_errors
from kubedag.k8s.catalog_objects import ANNOTATION_NOTE
from kubedag.k8s.kubeapi import ClusterRuns, KubeApi


class ClusterDags:
    """:class:`kubedag.app.operations.ports.DagSource` over the catalog's DAG objects (by API dag_id)."""

    def __init__(self, catalog: ClusterCatalog) -> None:
        self.catalog = catalog

    def dag(self, name: str) -> Any:
        """The parsed DAG under its API dag_id (``<namespace>.<name>`` outside the home namespace; its
        ``namespace`` set), so that what the operations return names it as the caller did. Raises NotFound, or
        OperationError naming the errors of an invalid one."""
        info = self.catalog.dag(name)
        if info.dag is None:
            raise OperationError(f"DAG {name!r} is invalid: {info.error}")
        return replace(info.dag, dag_id=info.dag_id, namespace=info.namespace)

    def dags(self) -> list[Any]:
        """Every valid DAG, ordered by dag_id (as :meth:`dag` names them)."""
        return [replace(d.dag, dag_id=d.dag_id, namespace=d.namespace) for d in self.catalog.dags() if d.dag is not None]


class RequestRuns:
    """:class:`kubedag.app.operations.ports.RunsRepository` and ``PauseFlags`` for a server of concurrent
    requests over every namespace ``catalog`` serves.

    * Each operation gets its own :class:`ClusterRuns` in its thread (``load_run`` starts one, ``apply``
      continues it; the other calls stand alone): a ClusterRuns keeps the run it loaded for the ``apply`` that
      follows, so one shared instance would mix two requests' runs.
    * Kubernetes failures become the operations' errors (:func:`kubedag.k8s.catalog.kube_errors`: an
      unreachable API server is ``Unavailable``).
    * The namespace is the DAG's: a parsed DAG's ``namespace``, or the one an API dag_id names
      (``<namespace>.<name>``); the run's DAG name is the object's name.
    """

    def __init__(self, catalog: ClusterCatalog) -> None:
        self.catalog = catalog
        self._local = threading.local()

    def _fresh(self, dag: Any) -> tuple[ClusterRuns, Any]:
        """A new ClusterRuns for ``dag``'s namespace and ``dag`` as it expects it: the object name, or the DAG
        under its object name (:class:`ClusterDags` names it by its API dag_id)."""
        namespace, name = self.catalog.locate(dag if isinstance(dag, str) else dag.dag_id)
        self._local.runs = ClusterRuns(self.catalog.api_for(namespace))
        return self._local.runs, name if isinstance(dag, str) else replace(dag, dag_id=name)

    @property
    def submitted(self) -> list[tuple[str, dict[str, Any]]]:
        """``(DAGRun name, action)`` this thread's last operation appended (to wait for the controller)."""
        runs = getattr(self._local, "runs", None)
        return runs.submitted if runs is not None else []

    def create_run(self, dag: Any, run: Any) -> None:
        with kube_errors():
            runs, dag = self._fresh(dag)
            name = dag if isinstance(dag, str) else dag.dag_id
            runs.create_run(dag, run if run.dag_id == name else replace(run, dag_id=name))

    def load_run(self, dag: Any, run_id: str) -> Any:
        with kube_errors():
            runs, dag = self._fresh(dag)
            return runs.load_run(dag, run_id)

    def apply(self, dag: Any, change: Any) -> None:
        with kube_errors():
            runs = getattr(self._local, "runs", None)
            if runs is None:
                runs, dag = self._fresh(dag)
            else:
                dag = self.catalog.locate(dag)[1] if isinstance(dag, str) else replace(dag, dag_id=self.catalog.locate(dag.dag_id)[1])
            runs.apply(dag, change)

    def delete_run(self, dag_id: str, run_id: str) -> None:
        with kube_errors():
            runs, name = self._fresh(dag_id)
            runs.delete_run(name, run_id)

    def runs_by_logical_date(self, dag: Any) -> Any:
        with kube_errors():
            runs, dag = self._fresh(dag)
            return runs.runs_by_logical_date(dag)

    def set_note(self, dag_id: str, run_id: str, note: str | None) -> None:
        """:class:`kubedag.app.catalog.RunNotes`: the DAGRun's annotation ``kubedag.io/note`` (None removes it,
        by JSON merge patch). Raises NotFound."""
        with kube_errors():
            runs, name = self._fresh(dag_id)
            obj = runs.find(name, run_id)
            runs.api.patch_dagrun(obj["metadata"]["name"], {"metadata": {"annotations": {ANNOTATION_NOTE: note}}})

    def is_paused(self, dag: Any) -> bool:
        with kube_errors():
            runs, dag = self._fresh(dag)
            return runs.is_paused(dag)

    def set_paused(self, dag: Any, paused: bool) -> bool:
        with kube_errors():
            runs, dag = self._fresh(dag)
            return runs.set_paused(dag, paused)


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
                      basic_auth_secret: str | None = None, audiences: Sequence[str] = (),
                      scheduler: Callable[[], ComponentHealth] | None = None) -> ClusterApiPorts:
    """The ports of an API server on ``api`` (its namespace is home). ``history``: the metadata DB's Catalog
    (``kubedag.store``), composed by the entry point. ``basic_auth_secret``: the Secret of basic-auth users in the
    home namespace (None: basic auth off). ``audiences``: the audiences a bearer token must be for.
    ``scheduler``: the controller's health (e.g. from its leader-election Lease; None: the history's)."""
    catalog = ClusterCatalog(api, namespaces=namespaces, history=history, scheduler=scheduler)
    runs = RequestRuns(catalog)
    basic = basic_users_from_secret(api, basic_auth_secret) if basic_auth_secret else None
    return ClusterApiPorts(
        catalog=catalog, runs=runs, dags=ClusterDags(catalog), pauses=runs, backfills=ClusterBackfills(catalog),
        authenticator=TokenReviewAuthenticator(api.api_client, audiences=audiences, basic=basic),
        authorizer=SubjectAccessReviewAuthorizer(api.api_client), namespace=api.namespace,
    )


__all__ = ["ClusterApiPorts", "ClusterDags", "RequestRuns", "cluster_api_ports"]

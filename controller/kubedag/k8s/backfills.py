"""The :class:`kubedag.app.catalog.Backfills` port on a cluster: a backfill is a Backfill object
(``kubedag.io/v1alpha1``) that the controller carries out (:mod:`kubedag.k8s.backfill`), so the API never writes a
run itself.

Airflow 3's request maps onto the Backfill's spec: ``from_date``/``to_date`` -> ``startDate``/``endDate`` (UTC,
inclusive, as Airflow's), ``reprocess_behavior`` -> ``reprocessBehavior``, ``max_active_runs`` ->
``maxActiveRuns``, ``dag_run_conf`` -> ``conf``; pause/unpause -> ``spec.paused``; cancel -> ``spec.cancelled``
(with ``spec.paused``, as Airflow's cancel pauses first). Backfill ids are the objects' names
(``<dag>-backfill-<random>``, ``generateName``), ``<namespace>.<name>`` outside the home namespace.
"""

from __future__ import annotations

from typing import Any

from kubedag.app.catalog import BackfillInfo, BackfillRequest, Conflict
from kubedag.app.operations.ports import AlreadyExists, InvalidRequest
from kubedag.core import naming as names
from kubedag.core import timetable
from kubedag.core.spec.resources import REPROCESS_BEHAVIORS
from kubedag.k8s import catalog_objects as objects
from kubedag.k8s.catalog import ClusterCatalog, kube_errors


class ClusterBackfills:
    """:class:`kubedag.app.catalog.Backfills` over the Backfill objects of the namespaces ``catalog`` serves (and
    the caller sees: build it on :meth:`ClusterCatalog.for_identity`'s catalog)."""

    def __init__(self, catalog: ClusterCatalog) -> None:
        self.catalog = catalog

    def create(self, request: BackfillRequest) -> BackfillInfo:
        """Create the Backfill object. Raises NotFound (the DAG), InvalidRequest (``to_date`` before
        ``from_date``, an unknown ``reprocess_behavior``, ``max_active_runs`` below 1, ``run_backwards``),
        AlreadyExists (the DAG has a backfill that has not completed, as Airflow 3 refuses a second one)."""
        if request.reprocess_behavior not in REPROCESS_BEHAVIORS:
            raise InvalidRequest(f"reprocess_behavior: {request.reprocess_behavior!r} is not one of "
                                 f"{', '.join(REPROCESS_BEHAVIORS)}")
        if request.from_date.tzinfo is None or request.to_date.tzinfo is None:
            raise InvalidRequest("from_date, to_date: a timezone is required (e.g. 2026-01-01T00:00:00Z)")
        if request.to_date < request.from_date:
            raise InvalidRequest(f"to_date: {request.to_date.isoformat()} is before from_date "
                                 f"{request.from_date.isoformat()}")
        if request.max_active_runs is not None and request.max_active_runs < 1:
            raise InvalidRequest("max_active_runs: must be at least 1")
        if request.run_backwards:
            raise InvalidRequest("run_backwards: not supported; backfill runs are created oldest first")
        info = self.catalog.dag(request.dag_id)  # NotFound
        namespace, name = info.namespace or self.catalog.ns.home, self.catalog.locate(request.dag_id)[1]
        for other in self.catalog.backfills(request.dag_id):
            if other.completed_at is None and not other.cancelled:
                raise AlreadyExists(f"DAG {request.dag_id!r} has a backfill that has not completed: {other.id}")
        spec: dict[str, Any] = {"dagName": name, "startDate": timetable.iso_utc(request.from_date),
                                "endDate": timetable.iso_utc(request.to_date),
                                "reprocessBehavior": request.reprocess_behavior, "conf": dict(request.dag_run_conf)}
        if request.max_active_runs is not None:
            spec["maxActiveRuns"] = request.max_active_runs
        body = {"apiVersion": names.API_VERSION, "kind": "Backfill",
                "metadata": {"generateName": f"{name}-backfill-", "namespace": namespace,
                             "labels": {names.LABEL_DAG: name, names.LABEL_MANAGED_BY: names.MANAGED_BY}},
                "spec": spec}
        with kube_errors():
            created = self.catalog.api.create_backfill(body, namespace)
        return objects.backfill_info(created, self.catalog.ns)

    def _patch(self, backfill_id: str, spec: dict[str, Any], what: str) -> BackfillInfo:
        current = self.catalog.backfill(backfill_id)  # NotFound, or invisible
        if current.completed_at is not None:
            raise Conflict(f"backfill {backfill_id} has completed: it cannot be {what}")
        namespace, name = self.catalog.locate(backfill_id)
        with kube_errors():
            updated = self.catalog.api.patch_backfill(name, {"spec": spec}, namespace)
        return objects.backfill_info(updated, self.catalog.ns)

    def set_paused(self, backfill_id: str, paused: bool) -> BackfillInfo:
        """Set ``spec.paused``. Raises NotFound, Conflict (it has completed or was cancelled)."""
        return self._patch(backfill_id, {"paused": paused}, "paused" if paused else "unpaused")

    def cancel(self, backfill_id: str) -> BackfillInfo:
        """Set ``spec.cancelled`` (and ``paused``): the controller deletes its queued runs and completes it.
        Raises NotFound, Conflict (it has completed already)."""
        return self._patch(backfill_id, {"paused": True, "cancelled": True}, "cancelled")


__all__ = ["ClusterBackfills"]

"""DAG runs: list, get, trigger, patch (state), delete, clear, and ``clearTaskInstances``. Every write is an
operation of :mod:`kubedag.app.operations` (trigger, set_run_state, delete, clear / preview_clear)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from fastapi import APIRouter, Depends, Query, Response

from kubedag.api import convert
from kubedag.api.routes.common import LIMIT, OFFSET, services
from kubedag.api.routing import endpoint
from kubedag.api.schemas.runs import (
    ClearTaskInstanceCollectionResponse, ClearTaskInstancesBody, DAGRunClearBody, DAGRunCollectionResponse,
    DAGRunPatchBody, DAGRunResponse, TaskInstanceCollectionResponse, TaskInstanceResponse, TriggerDAGRunPostBody,
)
from kubedag.api.services import ApiServices
from kubedag.app import operations
from kubedag.app.catalog import RunInfo, RunQuery
from kubedag.app.operations.ports import InvalidRequest, NotFound
from kubedag.core import engine

router = APIRouter(prefix="/api/v2", tags=["DagRun"])

RUN_ORDER = {"id": "id", "dag_run_id": "run_id", "run_id": "run_id", "dag_id": "dag_id", "state": "state",
             "run_type": "run_type", "logical_date": "logical_date", "run_after": "run_after",
             "start_date": "start_date", "end_date": "end_date", "queued_at": "queued_at",
             "data_interval_start": "data_interval_start", "data_interval_end": "data_interval_end"}
"""Airflow's ``order_by`` names of runs -> :class:`~kubedag.app.catalog.RunQuery`'s."""

ALL = 1_000_000
"""A page size meaning "every run" (clearTaskInstances over a date range)."""


def executor(svc: ApiServices) -> str:
    """Airflow's ``executor`` of kubedag's task instances: ``kubernetes`` on a cluster, else ``local``."""
    return "kubernetes" if svc.mode == "cluster" else "local"


def run_query(dag_id: str, *, state: list[str], run_type: list[str], limit: int, offset: int,
              order_by: list[str], **dates: datetime | None) -> RunQuery:
    """The catalog query of ``GET /dags/{dag_id}/dagRuns`` (``dag_id`` ``~``: every DAG). Raises InvalidRequest
    for an unknown ``order_by`` field (only the first field orders)."""
    key = (order_by or ["id"])[0]
    if key.lstrip("-") not in RUN_ORDER:
        raise InvalidRequest(f"order_by: {key.lstrip('-')!r} is not one of {', '.join(sorted(RUN_ORDER))}")
    field = ("-" if key.startswith("-") else "") + RUN_ORDER[key.lstrip("-")]
    return RunQuery(dag_id=None if dag_id == "~" else dag_id, states=tuple(state), run_types=tuple(run_type),
                    order_by=field, limit=limit, offset=offset, **dates)


@endpoint(router, "GET", "/dags/{dag_id}/dagRuns", "get_dag_runs", errors=(400, 401, 403, 404),
          response_model=DAGRunCollectionResponse)
def get_dag_runs(dag_id: str, limit: int = LIMIT, offset: int = OFFSET, state: list[str] = Query([]),
                 run_type: list[str] = Query([]), logical_date_gte: datetime | None = None,
                 logical_date_lte: datetime | None = None, start_date_gte: datetime | None = None,
                 start_date_lte: datetime | None = None, end_date_gte: datetime | None = None,
                 end_date_lte: datetime | None = None, order_by: list[str] = Query(["id"]),
                 svc: ApiServices = Depends(services)) -> DAGRunCollectionResponse:
    """The DAG's runs (every DAG's with ``~``), filtered and paged (bounds inclusive, UTC)."""
    if dag_id != "~":
        svc.catalog.dag(dag_id)
    query = run_query(dag_id, state=state, run_type=run_type, limit=limit, offset=offset, order_by=order_by,
                      logical_date_gte=logical_date_gte, logical_date_lte=logical_date_lte,
                      start_date_gte=start_date_gte, start_date_lte=start_date_lte, end_date_gte=end_date_gte,
                      end_date_lte=end_date_lte)
    runs, total = svc.catalog.runs(query)
    return DAGRunCollectionResponse(dag_runs=[convert.run_response(r) for r in runs], total_entries=total)


@endpoint(router, "GET", "/dags/{dag_id}/dagRuns/{dag_run_id}", "get_dag_run", errors=(400, 401, 403, 404),
          response_model=DAGRunResponse)
def get_dag_run(dag_id: str, dag_run_id: str, svc: ApiServices = Depends(services)) -> DAGRunResponse:
    """One run."""
    return convert.run_response(svc.catalog.run(dag_id, dag_run_id))


def created_run(svc: ApiServices, run: engine.DagRun) -> RunInfo:
    """The run just created, as the catalog has it (or as created, if the catalog does not show it yet)."""
    try:
        return svc.catalog.run(run.dag_id, run.run_id)
    except NotFound:
        return RunInfo(dag_id=run.dag_id, run_id=run.run_id, run_type=str(run.run_type), state=str(run.state),
                       logical_date=run.logical_date, data_interval_start=run.data_interval_start,
                       data_interval_end=run.data_interval_end, run_after=run.logical_date, conf=dict(run.conf),
                       triggered_by="rest_api")


def trigger(svc: ApiServices, dag_id: str, *, logical_date: datetime | None, conf: dict | None,
            run_id: str | None, interval_start: datetime | None, interval_end: datetime | None,
            note: str | None = None) -> RunInfo:
    """Trigger a manual run (:func:`kubedag.app.operations.trigger`); ``logical_date`` None: now. ``note`` is
    kept where the server keeps notes (:attr:`ApiServices.notes`), else dropped (as before notes were kept).
    Raises InvalidRequest when only one end of the data interval is given."""
    if (interval_start is None) != (interval_end is None):
        raise InvalidRequest("data_interval_start and data_interval_end must be given together")
    dag = svc.dags.dag(dag_id)
    interval = (interval_start, interval_end) if interval_start and interval_end else None
    run = operations.trigger(svc.runs, dag, logical_date=logical_date or svc.clock(), conf=conf or {},
                             run_id=run_id, data_interval=interval)
    if note and svc.notes is not None:
        svc.notes.set_note(dag_id, run.run_id, note)
    return created_run(svc, run)


@endpoint(router, "POST", "/dags/{dag_id}/dagRuns", "trigger_dag_run", errors=(400, 401, 403, 404, 409),
          response_model=DAGRunResponse)
def trigger_dag_run(dag_id: str, body: TriggerDAGRunPostBody, svc: ApiServices = Depends(services)) -> DAGRunResponse:
    """Trigger a run with ``conf`` (409 when the run id or logical date is taken)."""
    return convert.run_response(trigger(svc, dag_id, logical_date=body.logical_date, conf=body.conf,
                                        run_id=body.dag_run_id, interval_start=body.data_interval_start,
                                        interval_end=body.data_interval_end, note=body.note))


@endpoint(router, "PATCH", "/dags/{dag_id}/dagRuns/{dag_run_id}", "patch_dag_run", errors=(400, 401, 403, 404),
          response_model=DAGRunResponse)
def patch_dag_run(dag_id: str, dag_run_id: str, body: DAGRunPatchBody, update_mask: list[str] | None = Query(None),
                  svc: ApiServices = Depends(services)) -> DAGRunResponse:
    """Set the run's state (success/failed, :func:`kubedag.app.operations.set_run_state`) and/or its note
    (where the server keeps notes: :attr:`ApiServices.notes`; an empty note removes it)."""
    fields = set(update_mask or body.model_fields_set)
    if "note" in fields and svc.notes is None:
        raise InvalidRequest("note: this kubedag server does not store notes (a cluster keeps them on the DAGRun)")
    if fields - {"state", "note"}:
        raise InvalidRequest(f"update_mask: {', '.join(sorted(fields - {'state', 'note'}))} cannot be updated")
    if body.state is not None and "state" in fields:
        operations.set_run_state(svc.dags.dag(dag_id), svc.runs, dag_run_id, body.state, now=svc.clock())
    if "note" in fields and svc.notes is not None:
        svc.notes.set_note(dag_id, dag_run_id, body.note or None)
    return convert.run_response(svc.catalog.run(dag_id, dag_run_id))


@endpoint(router, "DELETE", "/dags/{dag_id}/dagRuns/{dag_run_id}", "delete_dag_run", errors=(400, 401, 403, 404),
          status_code=204, response_class=Response)
def delete_dag_run(dag_id: str, dag_run_id: str, svc: ApiServices = Depends(services)) -> Response:
    """Delete the run with its task instances."""
    operations.delete(svc.runs, dag_id, dag_run_id)
    return Response(status_code=204)


def affected(svc: ApiServices, dag_id: str, run_id: str, task_ids: Iterable[str]) -> list[TaskInstanceResponse]:
    """The task instances ``task_ids`` of the run, as the catalog has them now."""
    wanted = set(task_ids)
    return [convert.ti_response(ti, executor(svc)) for ti in svc.catalog.task_instances(dag_id, run_id)
            if ti.task_id in wanted]


@endpoint(router, "POST", "/dags/{dag_id}/dagRuns/{dag_run_id}/clear", "clear_dag_run", errors=(400, 401, 403, 404),
          response_model=ClearTaskInstanceCollectionResponse | DAGRunResponse)
def clear_dag_run(dag_id: str, dag_run_id: str, body: DAGRunClearBody,
                  svc: ApiServices = Depends(services)) -> ClearTaskInstanceCollectionResponse | DAGRunResponse:
    """Clear every task instance of the run (only failed ones with ``only_failed``); ``dry_run`` lists them."""
    if body.only_new:
        raise InvalidRequest("only_new: kubedag keeps no DAG versions")
    dag = svc.dags.dag(dag_id)
    if body.dry_run:
        preview = operations.preview_clear(dag, svc.runs, dag_run_id, (), only_failed=body.only_failed,
                                           now=svc.clock())
        tis = affected(svc, dag_id, dag_run_id, preview.result.task_ids)
        return ClearTaskInstanceCollectionResponse(task_instances=tis, total_entries=len(tis))
    operations.clear(dag, svc.runs, dag_run_id, (), only_failed=body.only_failed, now=svc.clock())
    return convert.run_response(svc.catalog.run(dag_id, dag_run_id))


def _unsupported(body: ClearTaskInstancesBody) -> None:
    for name in ("include_future", "include_past", "only_running", "prevent_running_task"):
        if getattr(body, name):
            raise InvalidRequest(f"{name}: not supported by kubedag")
    if not body.reset_dag_runs:
        raise InvalidRequest("reset_dag_runs: kubedag always reopens a finished run it clears")


@endpoint(router, "POST", "/dags/{dag_id}/clearTaskInstances", "post_clear_task_instances",
          errors=(400, 401, 403, 404), response_model=TaskInstanceCollectionResponse, tags=["Task Instance"])
def post_clear_task_instances(dag_id: str, body: ClearTaskInstancesBody,
                              svc: ApiServices = Depends(services)) -> TaskInstanceCollectionResponse:
    """Clear task instances (:func:`kubedag.app.operations.clear`), of one run (``dag_run_id``) or of every run
    whose logical date is in ``[start_date, end_date]``; ``dry_run`` lists what would be cleared."""
    _unsupported(body)
    dag = svc.dags.dag(dag_id)
    task_ids = [t if isinstance(t, str) else t[0] for t in body.task_ids or []]
    if body.dag_run_id is not None:
        run_ids = [body.dag_run_id]
    else:
        runs, _ = svc.catalog.runs(RunQuery(dag_id=dag_id, logical_date_gte=body.start_date,
                                            logical_date_lte=body.end_date, order_by="logical_date", limit=ALL))
        run_ids = [r.run_id for r in runs]
    out: list[TaskInstanceResponse] = []
    for run_id in run_ids:
        action = operations.preview_clear if body.dry_run else operations.clear
        preview = action(dag, svc.runs, run_id, task_ids, upstream=body.include_upstream,
                         downstream=body.include_downstream, only_failed=body.only_failed, now=svc.clock())
        out.extend(affected(svc, dag_id, run_id, preview.result.task_ids))
    return TaskInstanceCollectionResponse(task_instances=out, total_entries=len(out))

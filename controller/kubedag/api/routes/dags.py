"""DAGs, their tasks and import errors: ``/api/v2/dags…`` and ``/api/v2/importErrors``. Pausing goes through
:func:`kubedag.app.operations.set_paused`."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query

from kubedag.api import convert
from kubedag.api.routes.common import LIMIT, OFFSET, matches, order, page, services
from kubedag.api.routing import endpoint
from kubedag.api.schemas.dags import (
    DAGCollectionResponse, DAGDetailsResponse, DAGPatchBody, DAGResponse, ImportErrorCollectionResponse,
    ImportErrorResponse, TaskCollectionResponse, TaskResponse,
)
from kubedag.api.services import ApiServices
from kubedag.app import operations
from kubedag.app.catalog import DagInfo
from kubedag.app.operations.ports import InvalidRequest, NotFound

router = APIRouter(prefix="/api/v2", tags=["DAG"])

DAG_ORDER = {"dag_id": lambda d: d.dag_id, "dag_display_name": lambda d: d.dag_id,
             "next_dagrun": lambda d: d.next_logical_date, "last_parsed_time": lambda d: d.last_parsed_time,
             "is_paused": lambda d: d.is_paused}


def valid_dag(svc: ApiServices, dag_id: str) -> DagInfo:
    """The DAG ``dag_id``; NotFound (404) when unknown or invalid (an invalid DAG is an import error)."""
    info = svc.catalog.dag(dag_id)
    if info.dag is None:
        raise NotFound(f"The Dag with ID: `{dag_id}` has an import error: see /api/v2/importErrors")
    return info


def _select(svc: ApiServices, tags: list[str], tags_match_mode: str | None, owners: list[str],
            dag_id_pattern: str | None, paused: bool | None) -> list[DagInfo]:
    out = []
    for info in svc.catalog.dags():
        if info.dag is None or not matches(info.dag_id, dag_id_pattern):
            continue
        if paused is not None and info.is_paused != paused:
            continue
        if tags and not (set(tags) <= set(info.dag.tags) if tags_match_mode == "all" else set(tags) & set(info.dag.tags)):
            continue
        if owners and not set(owners) & set(convert.owners(info.dag)):
            continue
        out.append(info)
    return out


@endpoint(router, "GET", "/dags", "get_dags", response_model=DAGCollectionResponse)
def get_dags(limit: int = LIMIT, offset: int = OFFSET, tags: list[str] = Query([]),
             tags_match_mode: str | None = Query(None, pattern="^(any|all)$"), owners: list[str] = Query([]),
             dag_id_pattern: str | None = None, paused: bool | None = None,
             order_by: list[str] = Query(["dag_id"]), svc: ApiServices = Depends(services)) -> DAGCollectionResponse:
    """Valid DAGs (filtered, ordered, one page); invalid ones are import errors."""
    found = order(_select(svc, tags, tags_match_mode, owners, dag_id_pattern, paused), order_by, DAG_ORDER, "dag_id")
    return DAGCollectionResponse(dags=[convert.dag_response(d) for d in page(found, limit, offset)],
                                 total_entries=len(found))


@endpoint(router, "PATCH", "/dags", "patch_dags", errors=(400, 401, 403, 404), response_model=DAGCollectionResponse)
def patch_dags(body: DAGPatchBody, limit: int = LIMIT, offset: int = OFFSET, tags: list[str] = Query([]),
               owners: list[str] = Query([]), dag_id_pattern: str | None = None, paused: bool | None = None,
               update_mask: list[str] | None = Query(None), svc: ApiServices = Depends(services)) -> DAGCollectionResponse:
    """Pause or unpause every DAG matching the filters (one page of them), as Airflow's ``PATCH /dags``."""
    _check_mask(update_mask)
    chosen = page(_select(svc, tags, None, owners, dag_id_pattern, paused), limit, offset)
    for info in chosen:
        operations.set_paused(svc.pauses, info.dag or info.dag_id, body.is_paused)
    updated = [svc.catalog.dag(d.dag_id) for d in chosen]
    return DAGCollectionResponse(dags=[convert.dag_response(d) for d in updated if d.dag], total_entries=len(updated))


def _check_mask(update_mask: list[str] | None) -> None:
    if update_mask and set(update_mask) - {"is_paused"}:
        raise InvalidRequest("update_mask: only is_paused can be updated")


@endpoint(router, "GET", "/dags/{dag_id}", "get_dag", errors=(400, 401, 403, 404), response_model=DAGResponse)
def get_dag(dag_id: str, svc: ApiServices = Depends(services)) -> DAGResponse:
    """One DAG."""
    return convert.dag_response(valid_dag(svc, dag_id))


@endpoint(router, "GET", "/dags/{dag_id}/details", "get_dag_details", errors=(400, 401, 403, 404),
          response_model=DAGDetailsResponse)
def get_dag_details(dag_id: str, svc: ApiServices = Depends(services)) -> DAGDetailsResponse:
    """One DAG with its schedule's details."""
    return convert.dag_details(valid_dag(svc, dag_id))


@endpoint(router, "PATCH", "/dags/{dag_id}", "patch_dag", errors=(400, 401, 403, 404), response_model=DAGResponse)
def patch_dag(dag_id: str, body: DAGPatchBody, update_mask: list[str] | None = Query(None),
              svc: ApiServices = Depends(services)) -> DAGResponse:
    """Pause or unpause one DAG (:func:`kubedag.app.operations.set_paused`)."""
    _check_mask(update_mask)
    info = valid_dag(svc, dag_id)
    operations.set_paused(svc.pauses, info.dag or dag_id, body.is_paused)
    return convert.dag_response(valid_dag(svc, dag_id))


@endpoint(router, "GET", "/dags/{dag_id}/tasks", "get_tasks", errors=(400, 401, 403, 404),
          response_model=TaskCollectionResponse, tags=["Task"])
def get_tasks(dag_id: str, order_by: str = "task_id", svc: ApiServices = Depends(services)) -> TaskCollectionResponse:
    """The DAG's tasks."""
    dag = valid_dag(svc, dag_id).dag
    assert dag is not None
    tasks = [convert.task_response(dag, t) for t in dag.tasks.values()]
    fields = {name: (lambda t, n=name: getattr(t, n)) for name in ("task_id", "operator_name", "pool", "priority_weight")}
    return TaskCollectionResponse(tasks=order(tasks, order_by, fields, "task_id"), total_entries=len(tasks))


@endpoint(router, "GET", "/dags/{dag_id}/tasks/{task_id}", "get_task", errors=(400, 401, 403, 404),
          response_model=TaskResponse, tags=["Task"])
def get_task(dag_id: str, task_id: str, svc: ApiServices = Depends(services)) -> TaskResponse:
    """One task of the DAG."""
    dag = valid_dag(svc, dag_id).dag
    assert dag is not None
    if task_id not in dag.tasks:
        raise NotFound(f"Task with id {task_id} not found")
    return convert.task_response(dag, dag.tasks[task_id])


def _import_errors(svc: ApiServices) -> list[ImportErrorResponse]:
    invalid = sorted((d for d in svc.catalog.dags() if d.dag is None), key=lambda d: (d.fileloc or "", d.dag_id))
    return [ImportErrorResponse(import_error_id=n, timestamp=d.last_parsed_time or datetime.now(UTC),
                                filename=d.fileloc or d.dag_id, stack_trace=d.error or "invalid DAG")
            for n, d in enumerate(invalid, 1)]


@endpoint(router, "GET", "/importErrors", "get_import_errors", response_model=ImportErrorCollectionResponse,
          tags=["Import Error"])
def get_import_errors(limit: int = LIMIT, offset: int = OFFSET, filename_pattern: str | None = None,
                      svc: ApiServices = Depends(services)) -> ImportErrorCollectionResponse:
    """The invalid DAG manifests, each with its validation error (Airflow's import errors)."""
    found = [e for e in _import_errors(svc) if matches(e.filename, filename_pattern)]
    return ImportErrorCollectionResponse(import_errors=page(found, limit, offset), total_entries=len(found))


@endpoint(router, "GET", "/importErrors/{import_error_id}", "get_import_error", errors=(400, 401, 403, 404),
          response_model=ImportErrorResponse, tags=["Import Error"])
def get_import_error(import_error_id: int, svc: ApiServices = Depends(services)) -> ImportErrorResponse:
    """One import error."""
    for error in _import_errors(svc):
        if error.import_error_id == import_error_id:
            return error
    raise NotFound(f"The ImportError with import_error_id: `{import_error_id}` was not found")

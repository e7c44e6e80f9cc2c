"""Task instances of a run, their tries, logs and XComs. Marking is :func:`kubedag.app.operations.mark`."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from kubedag.api import convert
from kubedag.api.routes.common import LIMIT, OFFSET, first, matches, page, services
from kubedag.api.routes.runs import executor
from kubedag.api.routing import endpoint
from kubedag.api.schemas.runs import (
    PatchTaskInstanceBody, TaskInstanceCollectionResponse, TaskInstanceHistoryCollectionResponse,
    TaskInstanceHistoryResponse, TaskInstanceResponse, TaskInstancesLogResponse, XComCollectionResponse,
    XComResponse, XComResponseNative, XComResponseString,
)
from kubedag.api.services import ApiServices
from kubedag.app import operations
from kubedag.app.catalog import TaskInstanceInfo
from kubedag.app.operations.ports import InvalidRequest, NotFound

router = APIRouter(prefix="/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances", tags=["Task Instance"])

MARKABLE = ("success", "failed", "skipped")


def no_wildcard(**ids: str) -> None:
    """Refuse ``~`` where kubedag does not list across DAGs or runs (400 naming the parameter)."""
    for name, value in ids.items():
        if value == "~":
            raise InvalidRequest(f"{name}: '~' is not supported here; name one")


def task_instance(svc: ApiServices, dag_id: str, run_id: str, task_id: str) -> TaskInstanceInfo:
    """One task instance of a run. Raises NotFound."""
    return first(svc.catalog.task_instances(dag_id, run_id), lambda ti: ti.task_id == task_id,
                 f"The Task Instance with dag_id: `{dag_id}`, run_id: `{run_id}`, task_id: `{task_id}` "
                 "was not found")


@endpoint(router, "GET", "", "get_task_instances", errors=(400, 401, 403, 404),
          response_model=TaskInstanceCollectionResponse)
def get_task_instances(dag_id: str, dag_run_id: str, limit: int = LIMIT, offset: int = OFFSET,
                       state: list[str] = Query([]), task_display_name_pattern: str | None = None,
                       task_id: str | None = None,
                       svc: ApiServices = Depends(services)) -> TaskInstanceCollectionResponse:
    """The run's task instances, one per task (a task not started yet has state null), by task id."""
    no_wildcard(dag_id=dag_id, dag_run_id=dag_run_id)
    def wanted(ti: TaskInstanceInfo) -> bool:
        known = convert.ti_state(ti.state)
        return not state or known in state or (known is None and bool({"none", "no_status"} & set(state)))

    tis = [ti for ti in svc.catalog.task_instances(dag_id, dag_run_id)
           if wanted(ti) and matches(ti.task_id, task_display_name_pattern) and task_id in (None, ti.task_id)]
    return TaskInstanceCollectionResponse(
        task_instances=[convert.ti_response(ti, executor(svc)) for ti in page(tis, limit, offset)],
        total_entries=len(tis))


@endpoint(router, "GET", "/{task_id}", "get_task_instance", errors=(400, 401, 403, 404), response_model=TaskInstanceResponse)
def get_task_instance(dag_id: str, dag_run_id: str, task_id: str,
                      svc: ApiServices = Depends(services)) -> TaskInstanceResponse:
    """One task instance at its latest try."""
    return convert.ti_response(task_instance(svc, dag_id, dag_run_id, task_id), executor(svc))


@endpoint(router, "PATCH", "/{task_id}", "patch_task_instance", errors=(400, 401, 403, 404, 409),
          response_model=TaskInstanceCollectionResponse)
def patch_task_instance(dag_id: str, dag_run_id: str, task_id: str, body: PatchTaskInstanceBody,
                        map_index: int | None = None, update_mask: list[str] | None = Query(None),
                        svc: ApiServices = Depends(services)) -> TaskInstanceCollectionResponse:
    """Mark the task instance ``new_state`` (success, failed or skipped), as Airflow's mark success/failed."""
    for name in ("include_upstream", "include_downstream", "include_future", "include_past"):
        if getattr(body, name):
            raise InvalidRequest(f"{name}: not supported by kubedag (mark each task)")
    if body.note is not None or "note" in (update_mask or []):
        raise InvalidRequest("note: kubedag does not store notes")
    if map_index not in (None, -1):
        raise InvalidRequest("map_index: kubedag has no mapped tasks (use -1)")
    if body.new_state not in MARKABLE:
        raise InvalidRequest(f"new_state: {body.new_state!r} is not one of {', '.join(MARKABLE)}")
    dag = svc.dags.dag(dag_id)
    task_instance(svc, dag_id, dag_run_id, task_id)
    operations.mark(dag, svc.runs, dag_run_id, [task_id], body.new_state, now=svc.clock())
    ti = task_instance(svc, dag_id, dag_run_id, task_id)
    return TaskInstanceCollectionResponse(task_instances=[convert.ti_response(ti, executor(svc))], total_entries=1)


@endpoint(router, "GET", "/{task_id}/tries", "get_task_instance_tries", errors=(400, 401, 403, 404),
          response_model=TaskInstanceHistoryCollectionResponse)
def get_task_instance_tries(dag_id: str, dag_run_id: str, task_id: str,
                            svc: ApiServices = Depends(services)) -> TaskInstanceHistoryCollectionResponse:
    """Every try of the task instance, oldest first."""
    ti = task_instance(svc, dag_id, dag_run_id, task_id)
    tries = [convert.try_response(t, ti, executor(svc)) for t in svc.catalog.tries(dag_id, dag_run_id, task_id)]
    return TaskInstanceHistoryCollectionResponse(task_instances=tries, total_entries=len(tries))


@endpoint(router, "GET", "/{task_id}/tries/{task_try_number}", "get_task_instance_try_details",
          errors=(400, 401, 403, 404), response_model=TaskInstanceHistoryResponse)
def get_task_instance_try_details(dag_id: str, dag_run_id: str, task_id: str, task_try_number: int,
                                  svc: ApiServices = Depends(services)) -> TaskInstanceHistoryResponse:
    """One try."""
    ti = task_instance(svc, dag_id, dag_run_id, task_id)
    for t in svc.catalog.tries(dag_id, dag_run_id, task_id):
        if t.try_number == task_try_number:
            return convert.try_response(t, ti, executor(svc))
    raise NotFound(f"The Task Instance with dag_id: `{dag_id}`, run_id: `{dag_run_id}`, task_id: `{task_id}` and "
                   f"try_number: `{task_try_number}` was not found")


@endpoint(router, "GET", "/{task_id}/logs/{try_number}", "get_log", errors=(400, 401, 403, 404),
          response_model=TaskInstancesLogResponse,
          responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}})
def get_log(dag_id: str, dag_run_id: str, task_id: str, try_number: int = Path(..., ge=0),
            full_content: bool = False, map_index: int = -1, token: str | None = None,
            accept: str = Header("*/*"), svc: ApiServices = Depends(services)) -> Response:
    """A try's log, secrets masked: ``{"content": [{"event": line}, …], "continuation_token": null}``, or one
    JSON line per log line with ``Accept: application/x-ndjson``. Try 0 (not started) has an empty log."""
    task_instance(svc, dag_id, dag_run_id, task_id)
    text = svc.catalog.log(dag_id, dag_run_id, task_id, try_number) if try_number > 0 else ""
    lines = text.splitlines()
    if "application/x-ndjson" in accept:
        return Response("".join(json.dumps({"event": line}) + "\n" for line in lines),
                        media_type="application/x-ndjson")
    body = TaskInstancesLogResponse(content=[{"event": line} for line in lines], continuation_token=None)
    return Response(body.model_dump_json(exclude_none=True), media_type="application/json")


@endpoint(router, "GET", "/{task_id}/xcomEntries", "get_xcom_entries", errors=(400, 401, 403, 404),
          response_model=XComCollectionResponse, tags=["XCom"])
def get_xcom_entries(dag_id: str, dag_run_id: str, task_id: str, xcom_key: str | None = None,
                     map_index: int | None = Query(None, ge=-1), limit: int = LIMIT, offset: int = OFFSET,
                     svc: ApiServices = Depends(services)) -> XComCollectionResponse:
    """The XCom entries of the task instance (of every task of the run with task id ``~``), without values."""
    no_wildcard(dag_id=dag_id, dag_run_id=dag_run_id)
    run = svc.catalog.run(dag_id, dag_run_id)
    found = [x for x in svc.catalog.xcoms(dag_id, dag_run_id, None if task_id == "~" else task_id)
             if (xcom_key is None or x.key == xcom_key) and map_index in (None, x.map_index)]
    entries = [XComResponse(**convert.xcom_response(x, run).model_dump(exclude={"value"}))
               for x in page(found, limit, offset)]
    return XComCollectionResponse(xcom_entries=entries, total_entries=len(found))


@endpoint(router, "GET", "/{task_id}/xcomEntries/{xcom_key}", "get_xcom_entry", errors=(400, 401, 403, 404),
          response_model=XComResponseNative | XComResponseString, tags=["XCom"])
def get_xcom_entry(dag_id: str, dag_run_id: str, task_id: str, xcom_key: str, map_index: int = Query(-1, ge=-1),
                   deserialize: bool = False, stringify: bool = False,
                   svc: ApiServices = Depends(services)) -> XComResponseNative | XComResponseString:
    """One XCom with its value (JSON; a string with ``stringify``), masked where it holds a secret."""
    run = svc.catalog.run(dag_id, dag_run_id)
    for x in svc.catalog.xcoms(dag_id, dag_run_id, task_id):
        if x.key == xcom_key and x.map_index == map_index:
            native = convert.xcom_response(x, run)
            if stringify:
                return XComResponseString(**native.model_dump(exclude={"value"}), value=json.dumps(native.value))
            return native
    raise NotFound(f"XCom entry with key: `{xcom_key}` not found")

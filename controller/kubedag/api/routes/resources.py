"""Backfills (the :class:`~kubedag.app.catalog.Backfills` port), pools, variables and connections (read-only,
masked), version and health."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from kubedag.api import convert
from kubedag.api.routes.common import LIMIT, OFFSET, first, matches, order, page, services
from kubedag.api.routing import endpoint
from kubedag.api.schemas.other import (
    BackfillCollectionResponse, BackfillPostBody, BackfillResponse, BaseInfoResponse, ConnectionCollectionResponse,
    ConnectionResponse, DagProcessorInfoResponse, HealthInfoResponse, PoolCollectionResponse, PoolResponse,
    SchedulerInfoResponse, TriggererInfoResponse, VariableCollectionResponse, VariableResponse, VersionInfo,
)
from kubedag.api.services import ApiServices
from kubedag.app.catalog import BackfillInfo, BackfillRequest, ConnectionInfo, PoolInfo, VariableInfo
from kubedag.app.operations.ports import NotFound

router = APIRouter(prefix="/api/v2")

MAX_ROW_ID = 2**31 - 1
"""The largest backfill id a metadata DB row can have (a 32-bit integer column): a larger number can only be the
CRC-32 of a backfill's name."""


def backfill_by_number(svc: ApiServices, number: int) -> BackfillInfo:
    """The backfill whose Airflow id is ``number`` (:func:`kubedag.api.convert.backfill_number`). Raises NotFound."""
    if number <= MAX_ROW_ID:
        try:
            return svc.catalog.backfill(str(number))
        except NotFound:
            pass
    for b in svc.catalog.backfills():
        if convert.backfill_number(b.id) == number:
            return b
    raise NotFound(f"Could not find backfill with id {number}")


@endpoint(router, "GET", "/backfills", "list_backfills", response_model=BackfillCollectionResponse, tags=["Backfill"])
def list_backfills(dag_id: str, limit: int = LIMIT, offset: int = OFFSET, order_by: list[str] = Query(["id"]),
                   svc: ApiServices = Depends(services)) -> BackfillCollectionResponse:
    """The DAG's backfills."""
    found = [convert.backfill_response(b) for b in svc.catalog.backfills(dag_id)]
    fields = {n: (lambda b, n=n: getattr(b, n)) for n in ("id", "dag_id", "from_date", "to_date", "created_at",
                                                          "completed_at", "updated_at", "is_paused")}
    found = order(found, order_by, fields, "id")
    return BackfillCollectionResponse(backfills=page(found, limit, offset), total_entries=len(found))


@endpoint(router, "POST", "/backfills", "create_backfill", errors=(400, 401, 403, 404, 409),
          response_model=BackfillResponse, tags=["Backfill"])
def create_backfill(body: BackfillPostBody, svc: ApiServices = Depends(services)) -> BackfillResponse:
    """Create a backfill (409 when one of the DAG is active)."""
    request = BackfillRequest(dag_id=body.dag_id, from_date=body.from_date, to_date=body.to_date,
                              reprocess_behavior=body.reprocess_behavior, max_active_runs=body.max_active_runs,
                              dag_run_conf=body.dag_run_conf or {}, run_backwards=body.run_backwards)
    return convert.backfill_response(svc.backfills.create(request))


@endpoint(router, "GET", "/backfills/{backfill_id}", "get_backfill", errors=(400, 401, 403, 404),
          response_model=BackfillResponse, tags=["Backfill"])
def get_backfill(backfill_id: int, svc: ApiServices = Depends(services)) -> BackfillResponse:
    """One backfill."""
    return convert.backfill_response(backfill_by_number(svc, backfill_id))


def _steer(name: str, operation_id: str, act: str) -> None:
    @endpoint(router, "PUT", f"/backfills/{{backfill_id}}/{name}", operation_id, errors=(400, 401, 403, 404, 409),
              response_model=BackfillResponse, tags=["Backfill"])
    def steer(backfill_id: int, svc: ApiServices = Depends(services)) -> BackfillResponse:
        b = backfill_by_number(svc, backfill_id)
        done = svc.backfills.cancel(b.id) if act == "cancel" else svc.backfills.set_paused(b.id, act == "pause")
        return convert.backfill_response(done)

    steer.__doc__ = f"{act.capitalize()} the backfill."


_steer("pause", "pause_backfill", "pause")
_steer("unpause", "unpause_backfill", "unpause")
_steer("cancel", "cancel_backfill", "cancel")


def pool_response(p: PoolInfo) -> PoolResponse:
    """Airflow's ``PoolResponse`` of a pool."""
    return PoolResponse(name=p.name, slots=p.slots, description=p.description, include_deferred=False,
                        occupied_slots=p.occupied, running_slots=p.running, queued_slots=p.queued,
                        scheduled_slots=p.scheduled, open_slots=p.open, deferred_slots=p.deferred)


@endpoint(router, "GET", "/pools", "get_pools", response_model=PoolCollectionResponse, tags=["Pool"])
def get_pools(limit: int = LIMIT, offset: int = OFFSET, pool_name_pattern: str | None = None,
              svc: ApiServices = Depends(services)) -> PoolCollectionResponse:
    """Every pool with its slot counts."""
    found = [pool_response(p) for p in svc.catalog.pools() if matches(p.name, pool_name_pattern)]
    return PoolCollectionResponse(pools=page(found, limit, offset), total_entries=len(found))


@endpoint(router, "GET", "/pools/{pool_name}", "get_pool", errors=(400, 401, 403, 404), response_model=PoolResponse,
          tags=["Pool"])
def get_pool(pool_name: str, svc: ApiServices = Depends(services)) -> PoolResponse:
    """One pool."""
    return pool_response(first(svc.catalog.pools(), lambda p: p.name == pool_name,
                               f"The Pool with name: `{pool_name}` was not found"))


def variable_response(v: VariableInfo) -> VariableResponse:
    """``VariableResponse`` (the catalog's value is masked already; sensitive keys are masked again here)."""
    return VariableResponse(key=v.key, value=convert.mask_values({v.key: v.value})[v.key],
                            description=v.description, is_encrypted=v.is_encrypted)


@endpoint(router, "GET", "/variables", "get_variables", response_model=VariableCollectionResponse, tags=["Variable"])
def get_variables(limit: int = LIMIT, offset: int = OFFSET, variable_key_pattern: str | None = None,
                  svc: ApiServices = Depends(services)) -> VariableCollectionResponse:
    """The variables the DAGs can read, sensitive values masked."""
    found = [variable_response(v) for v in svc.catalog.variables() if matches(v.key, variable_key_pattern)]
    return VariableCollectionResponse(variables=page(found, limit, offset), total_entries=len(found))


@endpoint(router, "GET", "/variables/{variable_key}", "get_variable", errors=(400, 401, 403, 404),
          response_model=VariableResponse, tags=["Variable"])
def get_variable(variable_key: str, svc: ApiServices = Depends(services)) -> VariableResponse:
    """One variable, masked when sensitive."""
    return variable_response(first(svc.catalog.variables(), lambda v: v.key == variable_key,
                                   f"The Variable with key: `{variable_key}` was not found"))


def connection_response(c: ConnectionInfo) -> ConnectionResponse:
    """``ConnectionResponse``: the password is always ``***`` when set (the catalog masks it too)."""
    return ConnectionResponse(connection_id=c.connection_id, conn_type=c.conn_type, description=c.description,
                              host=c.host, login=c.login, schema=c.schema, port=c.port,
                              password="***" if c.password else None, extra=c.extra)


@endpoint(router, "GET", "/connections", "get_connections", response_model=ConnectionCollectionResponse,
          tags=["Connection"])
def get_connections(limit: int = LIMIT, offset: int = OFFSET, connection_id_pattern: str | None = None,
                    svc: ApiServices = Depends(services)) -> ConnectionCollectionResponse:
    """The connections the DAGs can read, passwords and secret extras masked."""
    found = [connection_response(c) for c in svc.catalog.connections()
             if matches(c.connection_id, connection_id_pattern)]
    return ConnectionCollectionResponse(connections=page(found, limit, offset), total_entries=len(found))


@endpoint(router, "GET", "/connections/{connection_id}", "get_connection", errors=(400, 401, 403, 404),
          response_model=ConnectionResponse, tags=["Connection"])
def get_connection(connection_id: str, svc: ApiServices = Depends(services)) -> ConnectionResponse:
    """One connection, masked."""
    return connection_response(first(svc.catalog.connections(), lambda c: c.connection_id == connection_id,
                                     f"The Connection with connection_id: `{connection_id}` was not found"))


@endpoint(router, "GET", "/version", "get_version", errors=(), response_model=VersionInfo, tags=["Version"])
def get_version(svc: ApiServices = Depends(services)) -> VersionInfo:
    """kubedag's version."""
    return VersionInfo(version=svc.version, git_version=None)


def health(svc: ApiServices) -> HealthInfoResponse:
    """Airflow's health document from the catalog (the metadata DB and the scheduler or controller)."""
    info = svc.catalog.health()
    beat = info.scheduler.latest_heartbeat
    return HealthInfoResponse(
        metadatabase=BaseInfoResponse(status=info.metadatabase.status),
        scheduler=SchedulerInfoResponse(status=info.scheduler.status,
                                        latest_scheduler_heartbeat=beat.isoformat() if beat else None),
        triggerer=TriggererInfoResponse(), dag_processor=DagProcessorInfoResponse())


@endpoint(router, "GET", "/monitor/health", "get_health", errors=(), response_model=HealthInfoResponse,
          tags=["Monitor"])
def get_health(svc: ApiServices = Depends(services)) -> HealthInfoResponse:
    """The health of the metadata DB and the scheduler (always 200, as Airflow: read the statuses)."""
    return health(svc)

"""What is not Airflow 3's ``/api/v2``: Airflow 2's calls the seeds make (``POST/GET /api/v1/dags/{dag_id}/dagRuns``,
``GET /health``, ``GET /api/v1/health``), ``POST /auth/token`` (Airflow 3 clients' login), and the probes
``/healthz`` (alive) and ``/readyz`` (ready: caches synced and the metadata DB reachable)."""

from __future__ import annotations

import base64
from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from kubedag.api import convert
from kubedag.api.auth import unauthenticated
from kubedag.api.routes.common import services
from kubedag.api.routes.resources import health
from kubedag.api.routes.runs import run_query, trigger
from kubedag.api.routing import endpoint
from kubedag.api.schemas.other import (
    HealthInfoResponse, TokenBody, TokenResponse, V1DAGRun, V1DAGRunBody, V1DAGRunCollection,
)
from kubedag.api.services import ApiServices
from kubedag.app.catalog import RunInfo, Unauthenticated

router = APIRouter()


def v1_run(run: RunInfo) -> V1DAGRun:
    """Airflow 2's ``DAGRun`` document of a run."""
    return V1DAGRun(dag_run_id=run.run_id, dag_id=run.dag_id, logical_date=run.logical_date,
                    execution_date=run.logical_date, start_date=run.start_date, end_date=run.end_date,
                    data_interval_start=run.data_interval_start, data_interval_end=run.data_interval_end,
                    run_type=run.run_type, state=run.state, external_trigger=run.run_type == "manual",
                    conf=convert.mask_values(dict(run.conf)), note=run.note)


@endpoint(router, "POST", "/api/v1/dags/{dag_id}/dagRuns", "v1_trigger_dag_run", errors=(400, 401, 403, 404, 409),
          response_model=V1DAGRun, tags=["Airflow 2"])
def v1_trigger_dag_run(dag_id: str, body: V1DAGRunBody, svc: ApiServices = Depends(services)) -> V1DAGRun:
    """Airflow 2's trigger, as the seeds call it: ``curl -u ID:PW -X POST …/dagRuns -d '{"conf": {}}'``."""
    return v1_run(trigger(svc, dag_id, logical_date=body.logical_date or body.execution_date, conf=body.conf,
                          run_id=body.dag_run_id, interval_start=body.data_interval_start,
                          interval_end=body.data_interval_end))


@endpoint(router, "GET", "/api/v1/dags/{dag_id}/dagRuns", "v1_get_dag_runs", errors=(400, 401, 403, 404),
          response_model=V1DAGRunCollection, tags=["Airflow 2"])
def v1_get_dag_runs(dag_id: str, limit: int = Query(100, ge=1), offset: int = Query(0, ge=0),
                    state: list[str] = Query([]), execution_date_gte: datetime | None = None,
                    execution_date_lte: datetime | None = None, order_by: str = "id",
                    svc: ApiServices = Depends(services)) -> V1DAGRunCollection:
    """Airflow 2's run listing (``~``: every DAG)."""
    if dag_id != "~":
        svc.catalog.dag(dag_id)
    key = {"execution_date": "logical_date", "-execution_date": "-logical_date"}.get(order_by, order_by)
    query = run_query(dag_id, state=state, run_type=[], limit=limit, offset=offset, order_by=[key],
                      logical_date_gte=execution_date_gte, logical_date_lte=execution_date_lte)
    runs, total = svc.catalog.runs(query)
    return V1DAGRunCollection(dag_runs=[v1_run(r) for r in runs], total_entries=total)


@endpoint(router, "GET", "/health", "airflow2_health", errors=(), response_model=HealthInfoResponse,
          response_model_exclude_none=True, tags=["Monitor"])
def airflow2_health(svc: ApiServices = Depends(services)) -> HealthInfoResponse:
    """Airflow 2's ``/health`` (what monitoring such as DataDog or Grafana polls)."""
    return health(svc)


@endpoint(router, "GET", "/api/v1/health", "v1_get_health", errors=(), response_model=HealthInfoResponse,
          response_model_exclude_none=True, tags=["Monitor"])
def v1_get_health(svc: ApiServices = Depends(services)) -> HealthInfoResponse:
    """Airflow 2's ``/api/v1/health``."""
    return health(svc)


@endpoint(router, "POST", "/auth/token", "create_token", errors=(400, 401), status_code=201,
          response_model=TokenResponse, tags=["Login"])
def create_token(body: TokenBody, request: Request, svc: ApiServices = Depends(services)) -> TokenResponse:
    """Airflow 3's ``POST /auth/token``: username and password (checked as basic auth) -> a bearer token this
    server accepts for 24 hours."""
    basic = "Basic " + base64.b64encode(f"{body.username}:{body.password}".encode()).decode()
    try:
        who = svc.authenticator.authenticate(basic)
    except Unauthenticated as exc:
        raise unauthenticated(str(exc)) from None
    return TokenResponse(access_token=request.app.state.tokens.issue(who))


@endpoint(router, "GET", "/healthz", "healthz", errors=(), response_class=PlainTextResponse, tags=["Monitor"])
def healthz() -> PlainTextResponse:
    """Alive: ``ok``."""
    return PlainTextResponse("ok")


@endpoint(router, "GET", "/readyz", "readyz", errors=(), response_class=PlainTextResponse,
          responses={503: {"description": "Not ready"}}, tags=["Monitor"])
def readyz(svc: ApiServices = Depends(services)) -> Response:
    """Ready (``ok``) once caches are synced and the metadata DB is reachable, else 503 with the reason."""
    reason = svc.ready()
    if reason is None:
        return PlainTextResponse("ok")
    return JSONResponse({"detail": reason}, status_code=503)

"""The UI's actions, each a confirmation dialog that previews the change (as Airflow's clear does) and then
calls the one implementation of it in :mod:`kubedag.app.operations`: trigger, clear, mark, delete a run,
pause/unpause, backfill (and its pause, unpause, cancel). ``GET`` renders the dialog with its preview; ``POST`` does it. The authorizer is asked
with the REST API's verbs: ``create dagruns`` (trigger), ``patch dagruns`` (clear, mark a task or a run), ``delete dagruns``,
``patch dags`` (pause), ``create backfills``, ``patch backfills``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Form, Request, Response

from kubedag.app import operations
from kubedag.app.catalog import BackfillRequest, DagInfo
from kubedag.app.operations import InvalidRequest, OperationError
from kubedag.core.spec.dag import DAG
from kubedag.ui import views
from kubedag.ui.web import Ui

MARK_STATES = ("success", "failed", "skipped")
RUN_STATES = ("success", "failed")
"""Airflow's "mark run as success/failed" (``operations.set_run_state``)."""
BACKFILL_CHANGES = {
    "pause": "no new run of it starts; its running runs finish.",
    "unpause": "its runs start again, up to its max active runs.",
    "cancel": "no new run of it starts, its queued runs are removed, its running runs finish.",
}
"""Airflow 3's backfill pause, unpause and cancel (``patch backfills``), with what each does."""


def _valid(info: DagInfo) -> DAG:
    if info.dag is None:
        raise OperationError(f"DAG {info.dag_id} is invalid: {info.error}")
    return info.dag


def _conf(text: str) -> dict[str, Any]:
    """The trigger form's conf: a JSON object. Raises InvalidRequest naming the field."""
    try:
        conf = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"conf: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(conf, dict):
        raise InvalidRequest("conf: must be a JSON object")
    return conf


def _date(text: str, field: str) -> datetime:
    """A form's date or date-time, UTC when it names no zone. Raises InvalidRequest naming ``field``."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(f"{field}: {text!r} is not an ISO 8601 date or date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _count(text: str, field: str) -> int | None:
    """A form's optional positive integer. Raises InvalidRequest naming ``field``."""
    if not text.strip():
        return None
    if not text.strip().isdigit() or int(text) < 1:
        raise InvalidRequest(f"{field}: {text!r} is not a positive integer")
    return int(text)


def _tasks(text: str) -> tuple[str, ...]:
    return tuple(t for t in (s.strip() for s in text.split(",")) if t)


def add_actions(router: APIRouter, ui: Ui) -> None:
    """Add the actions' dialogs (GET) and the actions (POST) to ``router``."""
    services = ui.services

    def dialog(request: Request, template: str, **context: Any) -> Response:
        return ui.page(template, request, **context)

    def done(request: Request, message: str, **context: Any) -> Response:
        response = ui.page("action_done.html", request, message=message, **context)
        response.headers["HX-Trigger"] = "kd-refresh"
        return response

    # -------------------------------------------------------------------------------------- pause
    @router.get("/dags/{dag_id}/pause", include_in_schema=False)
    def pause_dialog(request: Request, dag_id: str, paused: bool) -> Response:
        catalog, info, _ = ui.dag_access(request, dag_id, "patch", "dags")
        return dialog(request, "pause_dialog.html", info=info, paused=paused)

    @router.post("/dags/{dag_id}/pause", include_in_schema=False)
    def pause(request: Request, dag_id: str, paused: bool = Form(...)) -> Response:
        catalog, info, _ = ui.dag_access(request, dag_id, "patch", "dags")
        stored = operations.set_paused(services.pauses, info.dag or dag_id, paused)
        return done(request, f"DAG {dag_id} is now {'paused' if stored else 'active'}.")

    # -------------------------------------------------------------------------------------- trigger
    @router.get("/dags/{dag_id}/trigger", include_in_schema=False)
    def trigger_dialog(request: Request, dag_id: str) -> Response:
        catalog, info, _ = ui.dag_access(request, dag_id, "create", "dagruns")
        dag = _valid(info)
        return dialog(request, "trigger_dialog.html", info=info, conf=json.dumps(dict(dag.params), indent=2),
                      error=None, run_id="", logical_date="")

    @router.post("/dags/{dag_id}/trigger", include_in_schema=False)
    def trigger(request: Request, dag_id: str, conf: str = Form("{}"), run_id: str = Form(""),
                logical_date: str = Form("")) -> Response:
        catalog, info, _ = ui.dag_access(request, dag_id, "create", "dagruns")
        dag = _valid(info)
        try:
            when = _date(logical_date, "logical_date") if logical_date.strip() else services.clock()
            run = operations.trigger(services.runs, dag, logical_date=when, conf=_conf(conf),
                                     run_id=run_id.strip() or None)
        except InvalidRequest as exc:  # the dialog stays open with the field's error
            return ui.page("trigger_dialog.html", request, 400, info=info, conf=conf, error=str(exc),
                           run_id=run_id, logical_date=logical_date)
        return done(request, f"Triggered run {run.run_id} of {dag_id}.")

    # -------------------------------------------------------------------------------------- clear
    def clear_args(request: Request, dag_id: str) -> tuple[DagInfo, DAG]:
        catalog, info, _ = ui.dag_access(request, dag_id, "patch", "dagruns")
        return info, _valid(info)

    @router.get("/dags/{dag_id}/runs/{run_id}/clear", include_in_schema=False)
    def clear_dialog(request: Request, dag_id: str, run_id: str, task_ids: str = "", upstream: bool = False,
                     downstream: bool = False, only_failed: bool = False) -> Response:
        info, dag = clear_args(request, dag_id)
        preview = operations.preview_clear(dag, services.runs, run_id, _tasks(task_ids), upstream=upstream,
                                           downstream=downstream, only_failed=only_failed, now=services.clock())
        return dialog(request, "clear_dialog.html", info=info, run_id=run_id, task_ids=task_ids,
                      upstream=upstream, downstream=downstream, only_failed=only_failed, rows=preview.rows())

    @router.post("/dags/{dag_id}/runs/{run_id}/clear", include_in_schema=False)
    def clear(request: Request, dag_id: str, run_id: str, task_ids: str = Form(""), upstream: bool = Form(False),
              downstream: bool = Form(False), only_failed: bool = Form(False)) -> Response:
        _, dag = clear_args(request, dag_id)
        preview = operations.clear(dag, services.runs, run_id, _tasks(task_ids), upstream=upstream,
                                   downstream=downstream, only_failed=only_failed, now=services.clock())
        cleared = ", ".join(preview.result.task_ids) or "nothing"
        return done(request, f"Cleared {cleared} in run {run_id}.")

    # -------------------------------------------------------------------------------------- mark
    @router.get("/dags/{dag_id}/runs/{run_id}/mark", include_in_schema=False)
    def mark_dialog(request: Request, dag_id: str, run_id: str, task_ids: str, state: str) -> Response:
        info, dag = clear_args(request, dag_id)
        if state not in MARK_STATES:
            raise InvalidRequest(f"state: {state!r} is not one of {', '.join(MARK_STATES)}")
        current = services.runs.load_run(dag, run_id).tis  # what the mark itself will start from
        rows = [(t, views.state_name(str(current[t].state)) if t in current else "none") for t in _tasks(task_ids)]
        return dialog(request, "mark_dialog.html", info=info, run_id=run_id, task_ids=task_ids, state=state,
                      rows=rows)

    @router.post("/dags/{dag_id}/runs/{run_id}/mark", include_in_schema=False)
    def mark(request: Request, dag_id: str, run_id: str, task_ids: str = Form(...),
             state: str = Form(...)) -> Response:
        _, dag = clear_args(request, dag_id)
        run, changed = operations.mark(dag, services.runs, run_id, _tasks(task_ids), state, now=services.clock())
        return done(request, f"Marked {', '.join(changed) or 'nothing'} {state}; run {run_id} is {run.state}.")

    # -------------------------------------------------------------------------------------- mark run
    @router.get("/dags/{dag_id}/runs/{run_id}/state", include_in_schema=False)
    def run_state_dialog(request: Request, dag_id: str, run_id: str, state: str) -> Response:
        info, dag = clear_args(request, dag_id)
        if state not in RUN_STATES:
            raise InvalidRequest(f"state: {state!r} is not one of {', '.join(RUN_STATES)}")
        loaded = services.runs.load_run(dag, run_id)
        now_states = {t: views.state_name(str(ti.state)) for t, ti in loaded.tis.items()}
        changing = [(t, now_states.get(t, "none")) for t in dag.tasks
                    if (state == "success" and now_states.get(t) != "success")
                    or (state == "failed" and now_states.get(t, "none") not in views.FINISHED_TI_STATES)]
        return dialog(request, "run_state_dialog.html", info=info, run=loaded.run, state=state, rows=changing)

    @router.post("/dags/{dag_id}/runs/{run_id}/state", include_in_schema=False)
    def run_state(request: Request, dag_id: str, run_id: str, state: str = Form(...)) -> Response:
        _, dag = clear_args(request, dag_id)
        run = operations.set_run_state(dag, services.runs, run_id, state, now=services.clock())
        return done(request, f"Run {run_id} is now {run.state}.")

    # -------------------------------------------------------------------------------------- delete run
    @router.get("/dags/{dag_id}/runs/{run_id}/delete", include_in_schema=False)
    def delete_dialog(request: Request, dag_id: str, run_id: str) -> Response:
        catalog, info, _ = ui.dag_access(request, dag_id, "delete", "dagruns")
        run = catalog.run(dag_id, run_id)
        return dialog(request, "delete_dialog.html", info=info, run=run,
                      count=sum(ti.state is not None for ti in catalog.task_instances(dag_id, run_id)))

    @router.post("/dags/{dag_id}/runs/{run_id}/delete", include_in_schema=False)
    def delete(request: Request, dag_id: str, run_id: str) -> Response:
        catalog, info, _ = ui.dag_access(request, dag_id, "delete", "dagruns")
        operations.delete(services.runs, dag_id, run_id)
        return done(request, f"Deleted run {run_id} of {dag_id}.")

    # -------------------------------------------------------------------------------------- backfill
    @router.get("/dags/{dag_id}/backfill", include_in_schema=False)
    def backfill_dialog(request: Request, dag_id: str, from_date: str = "", to_date: str = "",
                        reprocess_behavior: str = "none") -> Response:
        catalog, info, _ = ui.dag_access(request, dag_id, "create", "backfills")
        dag = _valid(info)
        planned = []
        if from_date and to_date:
            existing = services.runs.runs_by_logical_date(dag)
            planned = operations.plan_backfill(dag, _date(from_date, "from_date"), _date(to_date, "to_date"),
                                               existing, reset=reprocess_behavior != "none",
                                               fields=("from_date", "to_date"))
        return dialog(request, "backfill_dialog.html", info=info, from_date=from_date, to_date=to_date,
                      reprocess_behavior=reprocess_behavior, planned=planned,
                      available=services.backfills is not None)

    @router.post("/dags/{dag_id}/backfill", include_in_schema=False)
    def backfill(request: Request, dag_id: str, from_date: str = Form(...), to_date: str = Form(...),
                 reprocess_behavior: str = Form("none"), max_active_runs: str = Form("")) -> Response:
        catalog, info, _ = ui.dag_access(request, dag_id, "create", "backfills")
        if services.backfills is None:
            raise OperationError("backfills are not available from this server")
        created = services.backfills.create(BackfillRequest(
            dag_id, _date(from_date, "from_date"), _date(to_date, "to_date"), reprocess_behavior,
            _count(max_active_runs, "max_active_runs")))
        return done(request, f"Backfill {created.id} of {dag_id} created: {created.runs_total} runs.")

    @router.get("/dags/{dag_id}/backfills/{backfill_id}/{change}", include_in_schema=False)
    def backfill_change_dialog(request: Request, dag_id: str, backfill_id: str, change: str) -> Response:
        catalog, info, _ = ui.dag_access(request, dag_id, "patch", "backfills")
        if change not in BACKFILL_CHANGES:
            raise InvalidRequest(f"change: {change!r} is not one of {', '.join(BACKFILL_CHANGES)}")
        return dialog(request, "backfill_change.html", info=info, backfill=catalog.backfill(backfill_id),
                      change=change, effect=BACKFILL_CHANGES[change])

    @router.post("/dags/{dag_id}/backfills/{backfill_id}/{change}", include_in_schema=False)
    def backfill_change(request: Request, dag_id: str, backfill_id: str, change: str) -> Response:
        ui.dag_access(request, dag_id, "patch", "backfills")
        if services.backfills is None:
            raise OperationError("backfills are not available from this server")
        if change == "cancel":
            services.backfills.cancel(backfill_id)
        elif change in ("pause", "unpause"):
            services.backfills.set_paused(backfill_id, change == "pause")
        else:
            raise InvalidRequest(f"change: {change!r} is not one of {', '.join(BACKFILL_CHANGES)}")
        return done(request, f"Backfill {backfill_id}: {BACKFILL_CHANGES[change]}")

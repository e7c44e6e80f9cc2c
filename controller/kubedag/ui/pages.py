"""The UI's read-only pages: the DAG list, the grid, the graph, the task instance panel and its log, plus the
login page and the static assets. Every page reads through the :class:`~kubedag.app.catalog.Catalog` and asks
the authorizer first (``list dags`` for the list, ``get dags`` + ``list dagruns`` for a DAG page, ``get
pods/log`` for a log, in the Kubernetes RBAC terms of the REST API).
"""

from __future__ import annotations

import json
from importlib import resources

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from kubedag.app.catalog import Unauthenticated
from kubedag.app.operations import NotFound, OperationError
from kubedag.ui import views
from kubedag.ui.stream import is_live
from kubedag.ui.web import BACKGROUND, COOKIE, Forbidden, Ui

STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".json": "application/json",
                ".LICENSE": "text/plain"}
GRID_RUNS = (10, 25, 50, 100)
"""The numbers of runs the grid offers (Airflow's "number of runs" selector)."""


def add_pages(router: APIRouter, ui: Ui) -> None:
    """Add the read-only pages to ``router`` (paths relative to the UI's prefix)."""

    @router.get("/static/{path:path}", include_in_schema=False)
    def static(path: str) -> Response:
        root = resources.files("kubedag.ui") / "static"
        parts = [p for p in path.split("/") if p]
        if not parts or any(p in ("..", ".") or p.startswith(".") for p in parts):
            raise NotFound(f"no static file {path}")
        target = root.joinpath(*parts)
        suffix = "." + parts[-1].rsplit(".", 1)[-1] if "." in parts[-1] else ""
        if not target.is_file() or suffix not in STATIC_TYPES:
            raise NotFound(f"no static file {path}")
        return Response(target.read_bytes(), media_type=STATIC_TYPES[suffix],
                        headers={"Cache-Control": "public, max-age=3600"})

    @router.get("/login", include_in_schema=False)
    def login_page(request: Request) -> Response:
        return ui.page("login.html", request, error=None, identity=None)

    @router.post("/login", include_in_schema=False)
    def login(request: Request, token: str = Form(""), username: str = Form(""), password: str = Form("")) -> Response:
        import base64  # noqa: PLC0415 - start-up time: only a login needs it
        if token.strip():
            header = f"Bearer {token.strip()}"
        else:
            header = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        try:
            ui.services.authenticator.authenticate(header)
        except Unauthenticated as exc:
            return ui.page("login.html", request, 401, error=str(exc), identity=None)
        response = RedirectResponse(f"{ui.prefix}/", status_code=303)
        response.set_cookie(COOKIE, header, httponly=True, samesite="strict", path=ui.prefix or "/")
        return response

    @router.post("/logout", include_in_schema=False)
    def logout() -> Response:
        response = RedirectResponse(f"{ui.prefix}/login", status_code=303)
        response.delete_cookie(COOKIE, path=ui.prefix or "/")
        return response

    if ui.prefix:
        @router.get("", include_in_schema=False)
        def bare() -> Response:
            return RedirectResponse(f"{ui.prefix}/", status_code=307)

    @router.get("/", include_in_schema=False)
    def dag_list(request: Request, search: str = "", paused: str = "", failed: str = "",
                 tag: str = "") -> Response:
        identity = ui.require(request, "list", "dags")
        chosen = views.DagFilter(search, paused, failed == "true", tag)  # an unchecked box sends "" or nothing
        rows, tags = views.dag_rows(ui.catalog_for(identity), chosen)
        template = "dag_rows.html" if request.headers.get("hx-target") == "dag-rows" else "dags.html"
        return ui.page(template, request, rows=rows, tags=tags, chosen=chosen, identity=identity,
                       schedule_words=views.schedule_words)

    @router.get("/dags/{dag_id}", include_in_schema=False)
    def dag_home(dag_id: str) -> Response:
        return RedirectResponse(f"{ui.prefix}/dags/{dag_id}/grid", status_code=307)

    @router.get("/dags/{dag_id}/grid", include_in_schema=False)
    def grid(request: Request, dag_id: str, runs: int = Query(25, ge=1, le=1000), v: str = "") -> Response:
        catalog, info, identity = ui.dag_access(request, dag_id, "list", "dagruns")
        polled = request.headers.get("hx-target") == "grid"
        version = views.grid_version(catalog, info, runs) if polled and v else None
        if version is not None and v == version:
            return Response(status_code=204)  # unchanged, told by a small query: the grid is not built
        model = views.grid(catalog, dag_id, limit=runs, version=version)
        if polled:
            if v and v == model.version:
                return Response(status_code=204)  # unchanged: htmx swaps nothing
            return ui.page("grid_body.html", request, grid=model, runs=runs, info=info)
        return ui.page("grid.html", request, grid=model, runs=runs, info=info, identity=identity,
                       choices=GRID_RUNS, tab="grid", schedule_words=views.schedule_words)

    @router.get("/dags/{dag_id}/backfills", include_in_schema=False)
    def backfills(request: Request, dag_id: str) -> Response:
        catalog, info, _ = ui.dag_access(request, dag_id, "list", "backfills")
        return ui.page("backfills.html", request, info=info, backfills=catalog.backfills(dag_id)[:5])

    @router.get("/dags/{dag_id}/schedule", include_in_schema=False)
    def dag_schedule(request: Request, dag_id: str) -> Response:
        catalog, info, identity = ui.dag_access(request, dag_id, "get", "dags")
        if info.dag is None:
            return ui.page("error.html", request, 409, title="Invalid DAG", message=info.error, identity=identity)
        last, _ = catalog.runs(views.RunQuery(dag_id=dag_id, run_types=("scheduled",), order_by="-logical_date",
                                              limit=1))
        plan = views.schedule(info.dag, last[0] if last else None, ui.services.clock())
        return ui.page("schedule.html", request, info=info, identity=identity, tab="schedule", plan=plan,
                       last=last[0] if last else None, schedule_words=views.schedule_words)

    @router.get("/dags/{dag_id}/gantt", include_in_schema=False)
    def gantt(request: Request, dag_id: str, run_id: str = "") -> Response:
        catalog, info, identity = ui.dag_access(request, dag_id, "get", "dagruns")
        recent, _ = catalog.runs(views.RunQuery(dag_id=dag_id, order_by="-logical_date", limit=25))
        run = catalog.run(dag_id, run_id) if run_id else (recent[0] if recent else None)
        data = None
        if run is not None:
            task_ids = [ti.task_id for ti in catalog.task_instances(dag_id, run.run_id)]
            if info.dag is not None:
                order = {t: i for i, t in enumerate(views.topological_order(
                    {t: task.upstream for t, task in info.dag.tasks.items()}))}
                task_ids.sort(key=lambda t: order.get(t, len(order)))
            tries = {t: catalog.tries(dag_id, run.run_id, t) for t in task_ids}
            data = views.gantt_data(run, task_ids, tries, ui.services.clock())
        return ui.page("chart.html", request, info=info, identity=identity, tab="gantt", runs=recent, run=run,
                       data=views.script_json(data), kind="gantt", schedule_words=views.schedule_words)

    @router.get("/dags/{dag_id}/durations", include_in_schema=False)
    def durations(request: Request, dag_id: str, runs: int = Query(25, ge=1, le=1000)) -> Response:
        catalog, info, identity = ui.dag_access(request, dag_id, "list", "dagruns")
        recent, _ = catalog.runs(views.RunQuery(dag_id=dag_id, order_by="-logical_date", limit=runs))
        data = views.durations_data(list(reversed(recent)), ui.services.clock())
        return ui.page("chart.html", request, info=info, identity=identity, tab="durations", runs=None, run=None,
                       count=runs, choices=GRID_RUNS, data=views.script_json(data), kind="durations",
                       schedule_words=views.schedule_words)

    @router.get("/pools", include_in_schema=False)
    def pools(request: Request) -> Response:
        identity = ui.require(request, "list", "pools")
        return ui.page("pools.html", request, identity=identity, pools=ui.catalog_for(identity).pools())

    @router.get("/health", include_in_schema=False)
    def health(request: Request) -> Response:
        identity = ui.identity(request)
        return ui.page("health.html", request, identity=identity, health=ui.catalog_for(identity).health())

    @router.get("/dags/{dag_id}/graph", include_in_schema=False)
    def graph(request: Request, dag_id: str, run_id: str = "") -> Response:
        catalog, info, identity = ui.dag_access(request, dag_id, "get", "dags")
        if info.dag is None:
            return ui.page("error.html", request, 409, title="Invalid DAG", message=info.error, identity=identity)
        recent, _ = catalog.runs(views.RunQuery(dag_id=dag_id, order_by="-logical_date", limit=25))
        run = next((r for r in recent if r.run_id == run_id), recent[0] if recent and not run_id else None)
        if run_id and run is None:
            run = catalog.run(dag_id, run_id)
        tis = catalog.task_instances(dag_id, run.run_id) if run else []
        data = views.graph_data(info.dag, tis)
        if request.headers.get("hx-target") == "graph-states":
            return Response(json.dumps(data), media_type="application/json")
        return ui.page("graph.html", request, info=info, identity=identity, runs=recent, run=run, tab="graph",
                       data=views.script_json(data), schedule_words=views.schedule_words)

    @router.get("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}", include_in_schema=False)
    def task_instance(request: Request, dag_id: str, run_id: str, task_id: str, try_number: int = 0) -> Response:
        """The task instance panel (``try_number``: the try shown, default the latest). The open panel re-reads
        itself (a background request); should its run be gone by then (deleted from this panel, the CLI or the
        history limit), it says so instead of showing the run as it was."""
        try:
            return panel(request, dag_id, run_id, task_id, try_number)
        except NotFound as exc:
            if not request.headers.get(BACKGROUND):
                raise
            return ui.page("panel_gone.html", request, dag_id=dag_id, run_id=run_id, task_id=task_id,
                           message=str(exc))

    def panel(request: Request, dag_id: str, run_id: str, task_id: str, try_number: int) -> Response:
        catalog, info, identity = ui.dag_access(request, dag_id, "get", "dagruns")
        run = catalog.run(dag_id, run_id)
        ti = next((t for t in catalog.task_instances(dag_id, run_id) if t.task_id == task_id), None)
        if ti is None:
            raise NotFound(f"task {task_id} is not in run {run_id} of DAG {dag_id}")
        tries = catalog.tries(dag_id, run_id, task_id)
        shown = try_number or (tries[-1].try_number if tries else 0)
        xcoms = catalog.xcoms(dag_id, run_id, task_id)
        task = info.dag.tasks.get(task_id) if info.dag else None
        why = ti.reason
        if not why and task is not None and views.state_name(ti.state) in views.WAITING_STATES:
            why = views.why_waiting(info.dag, ui.services.runs.load_run(info.dag, run_id), task_id,
                                    ui.services.clock())
        chosen = next((t for t in tries if t.try_number == shown), None)
        rendered = dict(chosen.rendered_fields if chosen is not None else {}) or \
            (dict(ti.rendered_fields) if shown in (0, ti.try_number) else {})  # the shown try's, as launched
        env = views.masked_env(dict(rendered.get("env", {}) or (task.env if task else {})))
        return ui.page("task_instance.html", request, info=info, run=run, ti=ti, tries=tries, shown=shown,
                       xcoms=xcoms, task=task, env=env, rendered=rendered, identity=identity, why=why,
                       kind=views.task_kind(task) if task else ti.operator)

    @router.get("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/hover", include_in_schema=False)
    def hover(request: Request, dag_id: str, run_id: str, task_id: str) -> Response:
        """The grid cell's hover text (JSON ``{"lines": [...]}``: try, start, end, duration, reason)."""
        catalog, _, _ = ui.dag_access(request, dag_id, "get", "dagruns")
        ti = next((t for t in catalog.task_instances(dag_id, run_id) if t.task_id == task_id), None)
        if ti is None:
            raise NotFound(f"task {task_id} is not in run {run_id} of DAG {dag_id}")
        return Response(json.dumps({"lines": views.hover_lines(ti, ui.services.clock())}),
                        media_type="application/json")

    @router.get("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/log", include_in_schema=False)
    def log(request: Request, dag_id: str, run_id: str, task_id: str, try_number: int = 1,
            poll: bool = False) -> Response:
        """The log of one try. A live try's log is streamed (:mod:`kubedag.ui.stream`); ``poll``: refreshed
        every 2 s instead (the page's fallback when streaming fails)."""
        try:
            catalog, info, _ = ui.dag_access(request, dag_id, "get", "pods", subresource="log", group="")
        except Forbidden as exc:  # the panel shows the rest; the log's place says why it is missing
            return ui.page("log.html", request, text="", error=str(exc), live=False, dag_id=dag_id,
                           run_id=run_id, task_id=task_id, try_number=try_number, poll=poll)
        tries = catalog.tries(dag_id, run_id, task_id)
        current = next((t for t in tries if t.try_number == try_number), None)
        try:
            text, error = catalog.log(dag_id, run_id, task_id, try_number), None
        except NotFound:
            raise
        except OperationError as exc:  # "log unavailable: <reason>" is shown, not a broken page
            text, error = "", str(exc)
        live = current is not None and is_live(current.state)
        return ui.page("log.html", request, text=text, error=error, live=live, dag_id=dag_id, run_id=run_id,
                       task_id=task_id, try_number=try_number, poll=poll)

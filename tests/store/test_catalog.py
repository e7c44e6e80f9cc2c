"""The local catalog (what the REST API and the web UI read in local mode) on SQLite and PostgreSQL: DAGs from a
real DAG folder with their paused flag, next run and import errors; run listings filtered, ordered and paged in
SQL (10,000 runs of a DAG too); task instances, tries, logs and XComs with secrets masked; pools, variables,
connections; the scheduler's health."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from kubedag.app.catalog import RunQuery
from kubedag.app.operations.ports import InvalidRequest, NotFound, OperationError
from kubedag.local.folder import LocalDagFolder
from kubedag.store import repository
from kubedag.store.catalog import SqlCatalog
from kubedag.store.models import DagRunRow
from kubedag.store.scheduler_store import SqlSchedulerStore

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)
SECRET_PW = "s3cr3t-pass"
API_TOKEN = "tok-abcdef123"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


ETL = f"""\
apiVersion: kubedag.io/v1alpha1
kind: DAG
metadata: {{name: etl}}
spec:
  schedule: "@daily"
  startDate: "2026-11-01T00:00:00Z"
  catchup: true
  variablesFrom: [{{configMapRef: {{name: settings}}}}, {{secretRef: {{name: creds}}}}]
  connectionsFrom: [{{secretRef: {{name: conns}}}}]
  tasks:
    - {{name: extract, command: [echo, hi], pool: small, poolSlots: 2, retries: 2}}
    - {{name: load, command: [echo, hi], dependsOn: [extract]}}
    - {{name: notify, kind: empty, dependsOn: [load]}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{region: eu-west-1, db_password: plain-pw-value}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
data: {{api_token: {b64(API_TOKEN)}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: conns}}
stringData:
  warehouse: "postgres://loader:{SECRET_PW}@db.example:5432/dw?api_key=key-value-123&region=eu"
---
apiVersion: kubedag.io/v1alpha1
kind: Pool
metadata: {{name: small}}
spec: {{slots: 4}}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "dags"
    path.mkdir()
    (path / "etl.yaml").write_text(ETL)
    return path


@pytest.fixture
def catalog(Session, folder):  # noqa: N803
    now = [T0 + 10 * DAY]
    cat = SqlCatalog(Session, LocalDagFolder(folder), clock=lambda: now[0])
    cat.now = now  # the test moves it
    return cat


def add_run(session, run_id: str, logical: datetime, *, state: str = "success", run_type: str = "scheduled",
            start: datetime | None = None, end: datetime | None = None, dag_id: str = "etl") -> None:
    if repository.get_dag(session, dag_id) is None:
        repository.upsert_dag(session, dag_id, spec={"tasks": []})
    row = repository.create_dag_run(session, dag_id=dag_id, run_id=run_id, run_type=run_type, logical_date=logical,
                                    data_interval_start=logical, data_interval_end=logical + DAY, state=state)
    row.start_date, row.end_date = start, end


# ------------------------------------------------------------------------------------------- DAGs
def test_dags_show_paused_flag_next_run_and_import_errors(catalog, folder, Session):  # noqa: N803
    (folder / "broken.yaml").write_text("apiVersion: kubedag.io/v1alpha1\nkind: DAG\nmetadata: {name: broken}\n"
                                        "spec:\n  tasks:\n    - {name: a, dependsOn: [missing], command: [x]}\n")
    (folder / "garbage.yaml").write_text("kind: DAG\n  : : [unclosed\n")
    dags = {d.dag_id: d for d in catalog.dags()}
    assert sorted(dags) == ["broken", "etl", "garbage"]
    etl = dags["etl"]
    assert (etl.is_paused, etl.error, etl.fileloc) == (False, None, str(folder / "etl.yaml"))
    assert etl.next_logical_date == T0 and etl.next_run_after == T0 + DAY  # catchup from the start date
    assert dags["broken"].dag is None and "missing" in dags["broken"].error
    assert dags["garbage"].dag is None and dags["garbage"].error.startswith("invalid YAML")
    with Session.begin() as s:
        add_run(s, "scheduled__1", T0 + 2 * DAY)
        repository.set_dag_paused(s, "etl", False)
    assert catalog.dag("etl").next_logical_date == T0 + 3 * DAY  # after the latest scheduled run
    with Session.begin() as s:
        repository.set_dag_paused(s, "etl", True)
    paused = catalog.dag("etl")
    assert paused.is_paused and paused.next_logical_date is None
    with pytest.raises(NotFound, match="'nope'"):
        catalog.dag("nope")


# ------------------------------------------------------------------------------------------- runs
def test_run_listing_filters_orders_and_pages(catalog, Session):  # noqa: N803
    with Session.begin() as s:
        for i in range(6):
            add_run(s, f"scheduled__{i}", T0 + i * DAY, state="failed" if i % 3 == 0 else "success",
                    start=T0 + i * DAY + timedelta(hours=1), end=T0 + i * DAY + timedelta(hours=2))
        add_run(s, "manual__x", T0 + 10 * DAY, state="running", run_type="manual", start=T0 + 10 * DAY)
        add_run(s, "other__1", T0, dag_id="other")
    runs, total = catalog.runs(RunQuery(dag_id="etl", order_by="-logical_date", limit=3))
    assert total == 7 and [r.run_id for r in runs] == ["manual__x", "scheduled__5", "scheduled__4"]
    runs, total = catalog.runs(RunQuery(dag_id="etl", order_by="-logical_date", limit=3, offset=6))
    assert total == 7 and [r.run_id for r in runs] == ["scheduled__0"]
    runs, total = catalog.runs(RunQuery(dag_id="etl", states=["failed"], order_by="logical_date"))
    assert total == 2 and [r.run_id for r in runs] == ["scheduled__0", "scheduled__3"]
    runs, _ = catalog.runs(RunQuery(dag_id="etl", run_types=["manual"]))
    assert [(r.run_id, r.state, r.run_after) for r in runs] == [("manual__x", "running", T0 + 10 * DAY)]
    runs, total = catalog.runs(RunQuery(dag_id="etl", logical_date_gte=T0 + DAY, logical_date_lte=T0 + 3 * DAY,
                                        order_by="-start_date"))
    assert total == 3 and [r.run_id for r in runs] == ["scheduled__3", "scheduled__2", "scheduled__1"]
    runs, total = catalog.runs(RunQuery(dag_id="etl", end_date_lte=T0 + DAY + timedelta(hours=2)))
    assert [r.run_id for r in runs] == ["scheduled__0", "scheduled__1"]
    runs, _ = catalog.runs(RunQuery(dag_id="etl", order_by="end_date"))  # a run with no end date last
    assert runs[-1].run_id == "manual__x"
    assert catalog.runs(RunQuery())[1] == 8  # every DAG's
    first = catalog.run("etl", "scheduled__2")
    assert (first.state, first.data_interval_end, first.run_after) == ("success", T0 + 3 * DAY, T0 + 3 * DAY)
    with pytest.raises(InvalidRequest, match="order_by: 'colour'"):
        catalog.runs(RunQuery(order_by="colour"))
    with pytest.raises(NotFound, match="no run 'nope'"):
        catalog.run("etl", "nope")


def test_listing_10000_runs_of_a_dag_pages_in_sql(catalog, Session):  # noqa: N803
    with Session.begin() as s:
        repository.upsert_dag(s, "etl", spec={"tasks": []})
        s.execute(sa.insert(DagRunRow), [
            {"dag_id": "etl", "run_id": f"scheduled__{i:05d}", "run_type": "scheduled",
             "state": "failed" if i % 10 == 0 else "success", "logical_date": T0 + i * timedelta(hours=1),
             "data_interval_start": T0 + i * timedelta(hours=1), "data_interval_end": T0 + (i + 1) * timedelta(hours=1),
             "conf": {}, "start_date": T0 + i * timedelta(hours=1)} for i in range(10_000)])
    runs, total = catalog.runs(RunQuery(dag_id="etl", order_by="-logical_date", limit=100, offset=9_950))
    assert total == 10_000
    assert [r.run_id for r in runs] == [f"scheduled__{i:05d}" for i in range(49, -1, -1)]
    runs, total = catalog.runs(RunQuery(dag_id="etl", states=["failed"], order_by="-start_date", limit=5))
    assert total == 1_000 and [r.run_id for r in runs] == [f"scheduled__{i:05d}" for i in (9990, 9980, 9970, 9960, 9950)]
    runs, total = catalog.runs(RunQuery(dag_id="etl", order_by="id", limit=2, offset=5_000))
    assert [r.run_id for r in runs] == ["scheduled__05000", "scheduled__05001"]


# ------------------------------------------------------------------------ task instances, tries, logs, XComs
def test_task_instances_one_per_task_with_reason_and_tries(catalog, Session, tmp_path):  # noqa: N803
    with Session.begin() as s:
        add_run(s, "r1", T0, state="running")
        repository.upsert_task_instance(s, "etl", "r1", "extract", state="up_for_retry", try_number=1, max_tries=2,
                                        reason="exit code 3", start_date=T0, end_date=T0 + timedelta(seconds=4))
        repository.record_try(s, "etl", "r1", "extract", 1, state="failed", exit_code=3, reason="exit code 3",
                              start_date=T0, end_date=T0 + timedelta(seconds=4), duration=4.0, hostname="laptop")
    tis = catalog.task_instances("etl", "r1")
    assert [(t.task_id, t.state, t.try_number) for t in tis] == [
        ("extract", "up_for_retry", 1), ("load", None, 0), ("notify", None, 0)]
    extract = tis[0]
    assert (extract.reason, extract.max_tries, extract.pool, extract.pool_slots, extract.operator) == (
        "exit code 3", 2, "small", 2, "command")
    assert (tis[1].pool, tis[2].operator) == ("default_pool", "empty")
    assert [t.priority_weight for t in tis] == [3, 2, 1]  # Airflow's downstream weight rule
    tries = catalog.tries("etl", "r1", "extract")
    assert [(t.try_number, t.state, t.exit_code, t.duration, t.hostname) for t in tries] == [
        (1, "failed", 3, 4.0, "laptop")]
    assert catalog.tries("etl", "r1", "load") == []
    with pytest.raises(NotFound):
        catalog.tries("etl", "r1", "nope")
    with pytest.raises(NotFound):
        catalog.task_instances("etl", "nope")


def test_grid_reads_the_task_instances_of_many_runs_with_one_query_for_them_all(catalog, Session):  # noqa: N803
    with Session.begin() as s:
        for day in range(3):
            add_run(s, f"r{day}", T0 + day * DAY, state="running")
            repository.upsert_task_instance(s, "etl", f"r{day}", "extract", state="success", try_number=1,
                                            max_tries=2, reason="exit code 0")
        repository.upsert_task_instance(s, "etl", "r2", "load", state="failed", try_number=2, max_tries=1,
                                        reason="exit code 1")
    queries = []
    sa.event.listen(catalog.sessions.kw["bind"], "before_cursor_execute", lambda *a: queries.append(a[2]))
    grid = catalog.grid("etl", ["r0", "r2", "gone"])
    assert len([q for q in queries if "task_instance" in q]) == 1
    assert grid == {"r0": catalog.task_instances("etl", "r0"), "r2": catalog.task_instances("etl", "r2")}
    assert [(t.task_id, t.state, t.try_number, t.reason) for t in grid["r2"]] == [
        ("extract", "success", 1, "exit code 0"), ("load", "failed", 2, "exit code 1"), ("notify", None, 0, None)]


def test_logs_archived_or_live_are_masked(catalog, Session, tmp_path):  # noqa: N803
    live = tmp_path / "attempt=2.log"
    live.write_text(f"connecting with {SECRET_PW}\ntoken {API_TOKEN}\nregion eu-west-1\n")
    with Session.begin() as s:
        add_run(s, "r1", T0, state="running")
        repository.upsert_task_instance(s, "etl", "r1", "extract", state="running", try_number=2)
        repository.record_try(s, "etl", "r1", "extract", 1, state="failed", log=f"password was {SECRET_PW}\n")
        repository.record_try(s, "etl", "r1", "extract", 2, state="running", log_location=str(live))
        repository.upsert_task_instance(s, "etl", "r1", "load", state="failed", try_number=1)
        repository.record_try(s, "etl", "r1", "load", 1, state="failed", log_location=str(tmp_path / "gone.log"))
    assert catalog.log("etl", "r1", "extract", 1) == "password was ***\n"
    assert catalog.log("etl", "r1", "extract", 2) == "connecting with ***\ntoken ***\nregion eu-west-1\n"
    with pytest.raises(OperationError, match="log unavailable"):
        catalog.log("etl", "r1", "load", 1)
    with pytest.raises(NotFound, match="no try 3"):
        catalog.log("etl", "r1", "extract", 3)


def test_xcoms_newest_try_per_key_masked(catalog, Session):  # noqa: N803
    with Session.begin() as s:
        add_run(s, "r1", T0)
        repository.upsert_task_instance(s, "etl", "r1", "extract", state="success", try_number=2)
        repository.set_xcoms(s, "etl", "r1", "extract", 1, {"rows": 1, "stale": True})
        repository.set_xcoms(s, "etl", "r1", "extract", 2, {"rows": 2, "dsn": f"user:{SECRET_PW}@db",
                                                            "api_token": "short"})
    xcoms = {x.key: x.value for x in catalog.xcoms("etl", "r1", "extract")}
    assert xcoms == {"rows": 2, "stale": True, "dsn": "user:***@db", "api_token": "***"}
    assert catalog.xcoms("etl", "r1", "load") == []


# ------------------------------------------------------------------------ pools, variables, connections
def test_pools_count_the_slots_of_active_task_instances(catalog, Session):  # noqa: N803
    with Session.begin() as s:
        add_run(s, "r1", T0, state="running")
        repository.upsert_task_instance(s, "etl", "r1", "extract", state="running", try_number=1)
        repository.upsert_task_instance(s, "etl", "r1", "load", state="queued", try_number=1)
        add_run(s, "r0", T0 - DAY, state="success")
        repository.upsert_task_instance(s, "etl", "r0", "extract", state="success", try_number=1)
    pools = {p.name: p for p in catalog.pools()}
    assert sorted(pools) == ["default_pool", "small"]
    assert (pools["small"].slots, pools["small"].running, pools["small"].open) == (4, 2, 2)
    assert (pools["default_pool"].slots, pools["default_pool"].queued, pools["default_pool"].open) == (128, 1, 127)


def test_variables_and_connections_are_masked(catalog):
    variables = {v.key: v.value for v in catalog.variables()}
    assert variables == {"region": "eu-west-1", "db_password": "***", "api_token": "***"}
    (conn,) = catalog.connections()
    assert (conn.connection_id, conn.conn_type, conn.host, conn.login, conn.port, conn.schema) == (
        "warehouse", "postgres", "db.example", "loader", 5432, "dw")
    assert conn.password == "***"
    assert json.loads(conn.extra) == {"api_key": "***", "region": "eu"}
    everything = repr(catalog.variables()) + repr(catalog.connections())
    assert SECRET_PW not in everything and API_TOKEN not in everything and "key-value-123" not in everything


# ------------------------------------------------------------------------------------------- health
def test_health_reports_a_dead_scheduler_as_unhealthy(catalog, Session):  # noqa: N803
    health = catalog.health()
    assert health.metadatabase.status == "healthy"
    assert (health.scheduler.status, health.scheduler.detail) == ("unhealthy", "no scheduler is running")
    store = SqlSchedulerStore(Session)
    job = store.acquire("laptop", 4242, catalog.now[0], lambda j: True)
    health = catalog.health()
    assert (health.scheduler.status, health.scheduler.latest_heartbeat) == ("healthy", catalog.now[0])
    catalog.now[0] += timedelta(seconds=90)  # killed with -9: its row stays "running", its heartbeat gets old
    health = catalog.health()
    assert health.scheduler.status == "unhealthy" and "no heartbeat for 90 s" in health.scheduler.detail
    store.release(job, catalog.now[0])
    assert catalog.health().scheduler.status == "unhealthy"


def test_health_reports_an_unreachable_db(folder, tmp_path):
    from kubedag.store.db import open_store

    engine, sessions = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    engine.dispose()
    (tmp_path / "h.db").unlink()
    (tmp_path / "h.db").mkdir()  # the file is now a folder: SQLite cannot open it
    health = SqlCatalog(sessions, LocalDagFolder(folder)).health()
    assert health.metadatabase.status == "unhealthy" and "cannot reach the metadata DB" in health.metadatabase.detail
    assert health.scheduler.status == "unhealthy"


"""The local executor's :class:`kubedag.app.catalog.Catalog`: the standalone scheduler's metadata DB and its DAG folder.

:class:`SqlCatalog` reads

* **DAGs** from the folder (a :class:`~kubedag.app.scheduler_ports.DagFolder`, given by the entry point: the local
  adapter reads files, this store adapter never imports it), with ``is_paused`` from the DB's ``dag`` row (the
  manifest's ``spec.paused`` while the scheduler has not seen the DAG yet, Airflow's ``is_paused_upon_creation``)
  and the next run from the timetable after the DAG's latest scheduled run (Airflow's ``DagModel.next_dagrun``).
  A file the folder scan could not read is a :class:`~kubedag.app.catalog.DagInfo` with ``dag=None`` and ``error``
  the reason (Airflow's import error), named by the DAG's ``metadata.name`` when it could be read, else by the
  file's name without its extension.
* **Runs, task instances, tries, XComs** from the DB, filtered, ordered and paged in SQL (:meth:`SqlCatalog.runs`).
* **Logs**: the copy archived in the try's row, else the try's live log file (a running local try), with the DAG's
  secrets masked (its ``variablesFrom``/``connectionsFrom`` values and the DB URL's password).
* **Pools, variables, connections** from the folder (:mod:`kubedag.store.catalog_sources`); **backfills** from the
  ``backfill`` table (:mod:`kubedag.store.backfills`); **health** from a ``SELECT 1`` and the scheduler's ``job``
  row heartbeat.

What it cannot know locally: ``RunInfo.note`` (and ``triggered_by`` of a manual run), ``TaskInstanceInfo.queued_at``,
``TryInfo.queued_at``/``pid`` stay None/empty (``rendered_fields``: each try's as recorded at its launch,
migration 0007; empty in :meth:`SqlCatalog.grid`); ``namespace`` and ``pod_name`` are None. ``run_after`` is the data
interval's end for scheduled and backfill runs, the logical date for the others (Airflow 3's ``run_after``).
The default pool is shown as Airflow's ``default_pool``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from kubedag.app.catalog import (
    BackfillInfo, ComponentHealth, ConnectionInfo, DagInfo, HealthInfo, PoolInfo, RunInfo, RunQuery, TaskInstanceInfo,
    TryInfo, VariableInfo, XComInfo,
)
from kubedag.app.operations.ports import InvalidRequest, NotFound, OperationError
from kubedag.app.scheduler_ports import DagFolder, FolderScan
from kubedag.core.spec.dag import DAG, Task
from kubedag.core.states import RunType
from kubedag.core.timetable import DataInterval
from kubedag.store import backfills as backfill_rows
from kubedag.store import catalog_sources as sources
from kubedag.store import repository
from kubedag.store.models import DagRow, DagRunRow, TaskInstanceRow, TaskInstanceHistoryRow
from kubedag.store.scheduler_store import SqlSchedulerStore

STALE_AFTER = 30.0
"""Seconds without a heartbeat after which the scheduler is unhealthy (Airflow's
``scheduler_health_check_threshold``)."""

_TRIGGERED_BY = {str(RunType.SCHEDULED): "timetable", str(RunType.BACKFILL): "backfill"}
"""Airflow 3's ``DagRunTriggeredByType`` where the run type tells it (a manual run's trigger is not recorded)."""
_INTERVAL_END_TYPES = (str(RunType.SCHEDULED), str(RunType.BACKFILL))
_RUN_AFTER = sa.case((DagRunRow.run_type.in_(_INTERVAL_END_TYPES), DagRunRow.data_interval_end),
                     else_=DagRunRow.logical_date)
ORDER_COLUMNS: dict[str, Any] = {
    "id": DagRunRow.id, "dag_id": DagRunRow.dag_id, "run_id": DagRunRow.run_id, "dag_run_id": DagRunRow.run_id,
    "run_type": DagRunRow.run_type, "state": DagRunRow.state, "logical_date": DagRunRow.logical_date,
    "data_interval_start": DagRunRow.data_interval_start, "data_interval_end": DagRunRow.data_interval_end,
    "run_after": _RUN_AFTER, "queued_at": DagRunRow.queued_at, "start_date": DagRunRow.start_date,
    "end_date": DagRunRow.end_date,
}
"""The fields a run listing may be ordered by (:attr:`RunQuery.order_by`, ``-`` first for descending)."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def run_info(row: DagRunRow) -> RunInfo:
    """The :class:`~kubedag.app.catalog.RunInfo` of a ``dag_run`` row."""
    after = row.data_interval_end if row.run_type in _INTERVAL_END_TYPES else row.logical_date
    return RunInfo(
        dag_id=row.dag_id, run_id=row.run_id, run_type=row.run_type, state=row.state, logical_date=row.logical_date,
        data_interval_start=row.data_interval_start, data_interval_end=row.data_interval_end,
        run_after=after or row.logical_date, queued_at=row.queued_at, start_date=row.start_date,
        end_date=row.end_date, conf=dict(row.conf or {}), triggered_by=_TRIGGERED_BY.get(row.run_type),
        backfill_id=None if row.backfill_id is None else str(row.backfill_id),
    )


def operator_of(task: Task) -> str:
    """A task's kind as the catalog names it: ``trigger``, ``sensor``, ``empty`` or ``command``."""
    if task.trigger is not None:
        return "trigger"
    if task.sensor is not None:
        return "sensor"
    return "empty" if task.empty else "command"


class SqlCatalog:
    """:class:`kubedag.app.catalog.Catalog` of local mode (see the module docstring).

    ``sessions``: a sessionmaker on the migrated metadata DB (:func:`kubedag.store.db.open_store`). ``folder``:
    the DAG folder (:class:`kubedag.local.folder.LocalDagFolder`). ``clock``: UTC-aware now (next runs, health).
    ``stale_after``: seconds without a scheduler heartbeat before it is unhealthy.
    """

    def __init__(self, sessions: sessionmaker[Session], folder: DagFolder, *,
                 clock: Callable[[], datetime] = _utcnow, stale_after: float = STALE_AFTER) -> None:
        self.sessions = sessions
        self.folder = folder
        self.clock = clock
        self.stale_after = stale_after
        bind = sessions.kw.get("bind")
        self._database_url = bind.url.render_as_string(hide_password=False) if bind is not None else None

    # -- DAGs -----------------------------------------------------------------------------------------
    def dags(self) -> list[DagInfo]:
        """Every DAG of the folder, valid or not, ordered by ``dag_id``."""
        scan = self.folder.scan()
        with self.sessions() as session:
            paused = {d: bool(p) for d, p in session.execute(sa.select(DagRow.dag_id, DagRow.is_paused))}
            last = self._last_scheduled(session, None)
        out = [self._dag_info(dag_id, dag, fileloc, paused, last, scan) for dag_id, (dag, fileloc) in scan.dags.items()]
        out += self._invalid(scan, paused)
        return sorted(out, key=lambda d: d.dag_id)

    def dag(self, dag_id: str) -> DagInfo:
        """One DAG (valid or not). Raises NotFound."""
        scan = self.folder.scan()
        with self.sessions() as session:
            row = repository.get_dag(session, dag_id)
            paused = {dag_id: bool(row.is_paused)} if row is not None else {}
            if dag_id in scan.dags:
                dag, fileloc = scan.dags[dag_id]
                return self._dag_info(dag_id, dag, fileloc, paused, self._last_scheduled(session, dag_id), scan)
        for info in self._invalid(scan, paused):
            if info.dag_id == dag_id:
                return info
        raise NotFound(f"DAG {dag_id!r} not found in the DAG folder")

    def _dag_info(self, dag_id: str, dag: DAG, fileloc: str, paused: dict[str, bool],
                  last: dict[str, DataInterval], scan: FolderScan) -> DagInfo:
        is_paused = paused.get(dag_id, dag.paused)
        info = None
        if not is_paused and dag.schedule is not None:
            info = dag.timetable.next_dagrun_info(last_automated_data_interval=last.get(dag_id),
                                                  restriction=dag.restriction, now=self.clock())
        return DagInfo(
            dag_id=dag_id, dag=dag, is_paused=is_paused, fileloc=fileloc, last_parsed_time=scan.scanned_at,
            next_logical_date=info.logical_date if info else None,
            next_data_interval_start=info.data_interval.start if info else None,
            next_data_interval_end=info.data_interval.end if info else None,
            next_run_after=info.run_after if info else None)

    @staticmethod
    def _invalid(scan: FolderScan, paused: dict[str, bool]) -> list[DagInfo]:
        out, seen = [], set(scan.dags)
        for problem in scan.problems:
            dag_id = problem.dag_id or Path(problem.fileloc).stem
            if dag_id in seen:
                dag_id = problem.fileloc
            seen.add(dag_id)
            out.append(DagInfo(dag_id=dag_id, dag=None, is_paused=paused.get(dag_id, False), fileloc=problem.fileloc,
                               error=problem.message, last_parsed_time=scan.scanned_at))
        return out

    @staticmethod
    def _last_scheduled(session: Session, dag_id: str | None) -> dict[str, DataInterval]:
        """dag_id -> the data interval of its latest scheduled run (by logical date)."""
        newest = sa.select(DagRunRow.dag_id, sa.func.max(DagRunRow.logical_date).label("ld")).where(
            DagRunRow.run_type == str(RunType.SCHEDULED)).group_by(DagRunRow.dag_id)
        if dag_id is not None:
            newest = newest.where(DagRunRow.dag_id == dag_id)
        sub = newest.subquery()
        stmt = sa.select(DagRunRow).join(sub, sa.and_(DagRunRow.dag_id == sub.c.dag_id, DagRunRow.logical_date == sub.c.ld))
        return {r.dag_id: DataInterval(r.data_interval_start or r.logical_date, r.data_interval_end or r.logical_date)
                for r in session.scalars(stmt)}

    def _dag_of(self, session: Session, dag_id: str) -> DAG | None:
        """The DAG from the folder, else the spec the DB keeps (a DAG whose file is gone or broken), else None."""
        entry = self.folder.scan().dags.get(dag_id)
        if entry is not None:
            return entry[0]
        row = repository.get_dag(session, dag_id)
        if row is None:
            return None
        from kubedag.core.spec import DAGValidationError, parse_dag  # only for a DAG missing from the folder

        try:
            return parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": dag_id},
                              "spec": row.spec}, f"DAG {dag_id!r} in the metadata DB")
        except DAGValidationError:
            return None

    # -- runs -----------------------------------------------------------------------------------------
    def runs(self, query: RunQuery) -> tuple[list[RunInfo], int]:
        """One page of the runs matching ``query`` and the total count before paging (filters, ordering and paging
        in SQL). Raises InvalidRequest naming ``order_by``, ``limit`` or ``offset`` when one is invalid."""
        field_name = query.order_by[1:] if query.order_by.startswith("-") else query.order_by
        if field_name not in ORDER_COLUMNS:
            raise InvalidRequest(f"order_by: {query.order_by!r} is not one of {', '.join(sorted(ORDER_COLUMNS))} "
                                 "(- first for descending)")
        if query.limit < 0 or query.offset < 0:
            raise InvalidRequest(f"{'limit' if query.limit < 0 else 'offset'}: must be >= 0")
        where = []
        if query.dag_id is not None:
            where.append(DagRunRow.dag_id == query.dag_id)
        if query.states:
            where.append(DagRunRow.state.in_(list(query.states)))
        if query.run_types:
            where.append(DagRunRow.run_type.in_(list(query.run_types)))
        for column, low, high in ((DagRunRow.logical_date, query.logical_date_gte, query.logical_date_lte),
                                  (DagRunRow.start_date, query.start_date_gte, query.start_date_lte),
                                  (DagRunRow.end_date, query.end_date_gte, query.end_date_lte)):
            if low is not None:
                where.append(column >= low)
            if high is not None:
                where.append(column <= high)
        column = ORDER_COLUMNS[field_name]
        descending = query.order_by.startswith("-")
        order = [(column.desc() if descending else column.asc()).nulls_last()]
        if field_name != "id":
            order.append(DagRunRow.id.desc() if descending else DagRunRow.id.asc())
        with self.sessions() as session:
            total = session.scalar(sa.select(sa.func.count()).select_from(DagRunRow).where(*where)) or 0
            rows = session.scalars(sa.select(DagRunRow).where(*where).order_by(*order)
                                   .limit(query.limit).offset(query.offset)).all()
            return [run_info(r) for r in rows], int(total)

    def run(self, dag_id: str, run_id: str) -> RunInfo:
        """One run. Raises NotFound."""
        with self.sessions() as session:
            return run_info(self._run_row(session, dag_id, run_id))

    @staticmethod
    def _run_row(session: Session, dag_id: str, run_id: str) -> DagRunRow:
        row = repository.get_dag_run(session, dag_id, run_id)
        if row is None:
            raise NotFound(f"no run {run_id!r} of DAG {dag_id!r}")
        return row

    # -- task instances, tries, logs, XComs -----------------------------------------------------------
    def task_instances(self, dag_id: str, run_id: str) -> list[TaskInstanceInfo]:
        """One per task of the DAG (a task with no row has state None) and per row of a task the DAG no longer
        has, ordered by task id, each with its current try's recorded ``rendered_fields`` (not :meth:`grid`'s). Raises
        NotFound for the run."""
        with self.sessions() as session:
            run = self._run_row(session, dag_id, run_id)
            rows = {r.task_id: r for r in repository.get_task_instances(session, dag_id, run_id)}
            rendered = repository.current_rendered_fields(session, dag_id, run_id)
            dag = self._dag_of(session, dag_id)
        tasks = dict(dag.tasks) if dag is not None else {}
        weights = dag.priority_weights if dag is not None else {}
        after = run_info(run).run_after
        return [self._ti_info(run, task_id, rows.get(task_id), tasks.get(task_id), weights.get(task_id, 1), after,
                              rendered.get(task_id))
                for task_id in sorted(set(tasks) | set(rows))]

    def grid(self, dag_id: str, run_ids: Sequence[str]) -> dict[str, list[TaskInstanceInfo]]:
        """:meth:`task_instances` of several runs of one DAG in two SQL queries (the runs, then all their task
        instances as plain rows; the grid's read, where one query per run would be 100), keyed by run id; a run
        id with no run is left out. Not one joined query: that would convert each run's row once per task
        instance; not ORM objects: 20,000 of them cost more than the 100 queries saved."""
        with self.sessions() as session:
            runs = {run.run_id: run for run in session.scalars(
                sa.select(DagRunRow).where(DagRunRow.dag_id == dag_id, DagRunRow.run_id.in_(list(run_ids))))}
            rows: dict[str, dict[str, Any]] = {run_id: {} for run_id in runs}
            ti = TaskInstanceRow
            for row in session.execute(sa.select(  # plain rows of the columns _ti_info reads, not ORM objects
                    ti.run_id, ti.task_id, ti.state, ti.try_number, ti.max_tries, ti.start_date, ti.end_date,
                    ti.duration, ti.hostname, ti.pod_name, ti.reason,
            ).where(ti.dag_id == dag_id, ti.run_id.in_(list(runs)))):
                rows[row.run_id][row.task_id] = row
            dag = self._dag_of(session, dag_id)
        tasks = dict(dag.tasks) if dag is not None else {}
        weights = dag.priority_weights if dag is not None else {}
        grid = {}
        for run_id, run in runs.items():
            after = run_info(run).run_after
            grid[run_id] = [self._ti_info(run, task_id, rows[run_id].get(task_id), tasks.get(task_id),
                                          weights.get(task_id, 1), after)
                            for task_id in sorted(set(tasks) | set(rows[run_id]))]
        return grid

    def grid_version(self, dag_id: str, limit: int) -> str:
        """:class:`~kubedag.app.catalog.GridVersion`: a digest of the latest ``limit`` runs' ids, types and states,
        their total count, and per run and task instance state: the count, the sum of try numbers and the latest
        ``updated_at`` (three small queries; the grid reads every task instance). A change that kept every run's
        per-state counts and try sums and did not move ``updated_at`` would go unseen until the next change: no
        writer of the scheduler or of the operations makes one."""
        order = (DagRunRow.logical_date.desc().nulls_last(), DagRunRow.id.desc())  # runs(order_by="-logical_date")
        ti = TaskInstanceRow
        with self.sessions() as session:
            total = session.scalar(sa.select(sa.func.count()).select_from(DagRunRow)
                                   .where(DagRunRow.dag_id == dag_id)) or 0
            runs = session.execute(sa.select(DagRunRow.run_id, DagRunRow.run_type, DagRunRow.state)
                                   .where(DagRunRow.dag_id == dag_id).order_by(*order).limit(limit)).all()
            counts = session.execute(
                sa.select(ti.run_id, ti.state, sa.func.count(), sa.func.sum(ti.try_number), sa.func.max(ti.updated_at))
                .where(ti.dag_id == dag_id, ti.run_id.in_([r.run_id for r in runs]))
                .group_by(ti.run_id, ti.state)).all()
        digest = hashlib.blake2b(f"{total};".encode(), digest_size=8)
        for row in runs:
            digest.update(f"{row.run_id}:{row.run_type}:{row.state};".encode())
        for row in sorted(counts, key=lambda r: (r[0], r[1] or "")):
            digest.update(("|".join(str(v) for v in row) + ";").encode())
        return digest.hexdigest()

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> TaskInstanceInfo:
        """One task instance (kubedag's addition to the port). Raises NotFound (run, or a task the DAG and the
        run do not have)."""
        for ti in self.task_instances(dag_id, run_id):
            if ti.task_id == task_id:
                return ti
        raise NotFound(f"no task {task_id!r} in run {run_id!r} of DAG {dag_id!r}")

    @staticmethod
    def _ti_info(run: DagRunRow, task_id: str, row: TaskInstanceRow | None, task: Task | None, weight: int,
                 run_after: datetime | None, rendered: dict[str, Any] | None = None) -> TaskInstanceInfo:
        """``weight``: the task's effective priority weight (Airflow's ``priority_weight_total``); ``rendered``: the
        current try's recorded rendered fields (None: none)."""
        common: dict[str, Any] = dict(
            dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, logical_date=run.logical_date, run_after=run_after,
            pool=sources.pool_name(task.pool) if task else sources.AIRFLOW_DEFAULT_POOL,
            pool_slots=task.pool_slots if task else 1, priority_weight=weight,
            operator=operator_of(task) if task else None)
        if row is None:
            return TaskInstanceInfo(state=None, try_number=0, max_tries=task.retries if task else 0, **common)
        return TaskInstanceInfo(
            state=row.state, try_number=row.try_number, max_tries=row.max_tries, start_date=row.start_date,
            end_date=row.end_date, duration=row.duration, hostname=row.hostname, pod_name=row.pod_name,
            reason=row.reason, rendered_fields=rendered or {}, **common)

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[TryInfo]:
        """Every recorded try of a task instance, oldest first (empty before its first try). Raises NotFound."""
        self.task_instance(dag_id, run_id, task_id)
        with self.sessions() as session:
            return [TryInfo(dag_id=dag_id, run_id=run_id, task_id=task_id, try_number=r.try_number, state=r.state,
                            start_date=r.start_date, end_date=r.end_date, duration=r.duration, exit_code=r.exit_code,
                            hostname=r.hostname, pod_name=r.pod_name, reason=r.reason,
                            rendered_fields=r.rendered_fields or {})
                    for r in repository.get_tries(session, dag_id, run_id, task_id)]

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """The try's log: the archived copy, else its live log file; the DAG's secrets masked. Raises NotFound (no
        such run or try), OperationError("log unavailable: ...") when the file is gone."""
        with self.sessions() as session:
            self._run_row(session, dag_id, run_id)
            row: TaskInstanceHistoryRow | None = repository.get_try(session, dag_id, run_id, task_id, try_number)
            if row is None:
                raise NotFound(f"no try {try_number} of task {task_id!r} in run {run_id!r} of DAG {dag_id!r}")
            dag = self._dag_of(session, dag_id)
        text = row.log
        if not text:
            if not row.log_location:
                raise OperationError(f"log unavailable: try {try_number} has no log location")
            try:
                text = Path(row.log_location).read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                raise OperationError(f"log unavailable: the log file of try {try_number} is gone") from None
            except OSError as exc:
                raise OperationError(f"log unavailable: {exc.strerror or exc}") from None
        return self._masker(dag).mask(text)

    def _masker(self, dag: DAG | None) -> Any:
        return sources.dag_masker(dag, self.folder.scan().objects, self._database_url)

    def xcoms(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[XComInfo]:
        """The run's XComs (of one task), the newest try's value per task and key, secrets masked. Raises NotFound
        for the run."""
        with self.sessions() as session:
            run = self._run_row(session, dag_id, run_id)
            rows = repository.list_xcoms(session, dag_id, run_id, task_id)
            dag = self._dag_of(session, dag_id)
        newest: dict[tuple[str, str], Any] = {}
        for r in rows:  # ordered by task, try, key: a later try replaces an earlier one's key
            newest[(r.task_id, r.key)] = r
        masker = self._masker(dag)
        return [XComInfo(dag_id=dag_id, run_id=run_id, task_id=r.task_id, key=r.key,
                         value=masker.mask_obj(json.loads(r.value), r.key), timestamp=r.timestamp,
                         logical_date=run.logical_date) for r in newest.values()]

    # -- pools, variables, connections, backfills -----------------------------------------------------
    def pools(self) -> list[PoolInfo]:
        """Every pool of the folder (``default_pool`` included), ordered by name, with its occupied slots."""
        scan = self.folder.scan()
        stmt = (sa.select(TaskInstanceRow.dag_id, TaskInstanceRow.task_id, TaskInstanceRow.state)
                .join(DagRunRow, sa.and_(DagRunRow.dag_id == TaskInstanceRow.dag_id,
                                         DagRunRow.run_id == TaskInstanceRow.run_id))
                .where(DagRunRow.state.in_(("queued", "running")),
                       TaskInstanceRow.state.in_(("running", "queued", "scheduled", "deferred"))))
        with self.sessions() as session:
            busy = [tuple(r) for r in session.execute(stmt)]
        return sources.pools(scan, busy)

    def variables(self) -> list[VariableInfo]:
        """The variables the folder's DAGs can read, masked (:func:`kubedag.store.catalog_sources.variables`)."""
        scan = self.folder.scan()
        masker = sources.dag_masker(None, scan.objects)
        for dag, _ in scan.dags.values():
            for secret in sources.dag_masker(dag, scan.objects).secrets:
                masker.add(secret)
        return sources.variables(scan, masker)

    def connections(self) -> list[ConnectionInfo]:
        """The connections the folder's DAGs can read, masked (:func:`kubedag.store.catalog_sources.connections`)."""
        return sources.connections(self.folder.scan())

    def backfills(self, dag_id: str | None = None) -> list[BackfillInfo]:
        """The backfills (of one DAG), newest first."""
        with self.sessions() as session:
            return backfill_rows.list_backfills(session, dag_id)

    def backfill(self, backfill_id: str) -> BackfillInfo:
        """One backfill. Raises NotFound."""
        with self.sessions() as session:
            return backfill_rows.backfill_info(session, backfill_rows.get_backfill(session, backfill_id))

    # -- health ---------------------------------------------------------------------------------------
    def health(self) -> HealthInfo:
        """The metadata DB (a ``SELECT 1``) and the scheduler (its ``job`` row's heartbeat within ``stale_after``
        seconds of now); never raises."""
        try:
            with self.sessions() as session:
                session.execute(sa.text("SELECT 1"))
            db = ComponentHealth("healthy")
        except Exception as exc:  # noqa: BLE001 - any failure to reach the DB is "unhealthy", named by its type
            db = ComponentHealth("unhealthy", detail=f"cannot reach the metadata DB ({type(exc).__name__})")
            return HealthInfo(db, ComponentHealth("unhealthy", detail="the metadata DB is unreachable"))
        job = SqlSchedulerStore(self.sessions).running_scheduler()
        if job is None:
            return HealthInfo(db, ComponentHealth("unhealthy", detail="no scheduler is running"))
        beat = job.latest_heartbeat or job.start_date
        age = (self.clock() - beat).total_seconds() if beat is not None else None
        if age is None or age > self.stale_after:
            return HealthInfo(db, ComponentHealth("unhealthy", beat, f"no heartbeat for {age:.0f} s (pid {job.pid} on "
                                                  f"{job.hostname})" if age is not None else "no heartbeat"))
        return HealthInfo(db, ComponentHealth("healthy", beat, f"pid {job.pid} on {job.hostname}"))


__all__ = ["ORDER_COLUMNS", "STALE_AFTER", "SqlCatalog", "operator_of", "run_info"]

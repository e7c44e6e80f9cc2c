"""The run store of the metadata DB (:class:`kubedag.app.ports.RunStore`): the controller's writes and reads.

Every write is idempotent (upserts keyed by DAG, run, task and try), so a pass written twice, or re-written
after a restart, changes nothing. In the DB a DAG of the cluster is keyed ``<namespace>/<name>``
(:func:`db_dag_id`): DAG names are unique per namespace only, and a cluster-wide controller shares one database.
Calls are synchronous, one transaction each (the controller calls them in a thread).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from kubedag.app import metrics
from kubedag.app.ports import PassWrite, RecordedRun, RunConflictError, RunHistory, RunObject, StoredRun, TryHistory
from kubedag.core import engine
from kubedag.core.runpass import ti_from_row
from kubedag.core.spec.dag import DAG
from kubedag.core.spec.loader import DAGValidationError, parse_dag
from kubedag.core.spec.models import API_VERSION
from kubedag.core.timetable import DataInterval, iso_utc
from kubedag.store import repository
from kubedag.store.external import external_states
from kubedag.store.identity import archived_run_id, claim_run, rename_run
from kubedag.store.models import DagRunRow, TaskInstanceHistoryRow
from kubedag.store.rows import pass_rows, write_rows


def db_dag_id(namespace: str, name: str) -> str:
    """The metadata DB's ``dag_id`` of DAG ``name`` in ``namespace``: ``<namespace>/<name>``."""
    return f"{namespace}/{name}"


def save_dag(session: Any, namespace: str, dag: DAG) -> None:
    """Upsert the DAG's row (its spec as JSON, namespace, paused flag). Never commits."""
    repository.upsert_dag(session, db_dag_id(namespace, dag.dag_id), dict(dag.spec), namespace, is_paused=dag.paused)


def save_pass(session: Any, namespace: str, dag: DAG, write: PassWrite) -> None:
    """Write one reconcile pass (:class:`kubedag.app.ports.PassWrite`) in ``session``; never commits.

    First the removal of the XComs of cleared tasks (Airflow's ``clear_xcom_data``), then the run's state, the
    task instances and the tries' history rows (each try's node and pod name; a try launched in the pass gets a
    ``queued`` row with its rendered fields, ``write.rendered``), then the XComs successful tries
    pushed and the archived logs (both after the rows they belong to).
    """
    tries = list(write.tries)
    rows = pass_rows(dag, write.run, list(write.tis), tries)
    for fields in rows.task_instances.values():
        fields.pop("hostname", None)  # the node is known per try, below
    by_key = {(t.task_id, t.try_number): t for t in tries}
    for task_id, try_number, fields in rows.tries:
        record = by_key.get((task_id, try_number))
        fields.pop("hostname", None)
        if record is not None and record.hostname:
            fields["hostname"] = record.hostname
        if record is not None and record.pod_name:
            fields["pod_name"] = record.pod_name
            if task_id in rows.task_instances:
                rows.task_instances[task_id]["pod_name"] = record.pod_name
    written = {(task_id, try_number): fields for task_id, try_number, fields in rows.tries}
    for (task_id, try_number), rendered in write.rendered.items():  # a try whose pod was created in this pass
        if (task_id, try_number) in written:
            written[(task_id, try_number)]["rendered_fields"] = dict(rendered)
        else:
            rows.tries.append((task_id, try_number, {"state": "queued", "rendered_fields": dict(rendered)}))
    dag_id = db_dag_id(namespace, dag.dag_id)
    if write.cleared:
        repository.clear_xcoms(session, dag_id, write.run.run_id, list(write.cleared))
    write_rows(session, replace(rows, dag_id=dag_id))
    for (task_id, try_number), values in write.xcoms.items():
        repository.set_xcoms(session, dag_id, write.run.run_id, task_id, try_number, dict(values))
    for (task_id, try_number), text in write.logs.items():
        repository.record_try(session, dag_id, write.run.run_id, task_id, try_number, log=text)


def archived_tries(session: Any, dag_id: str, run_id: str) -> frozenset[tuple[str, int]]:
    """``(task_id, try_number)`` of the run's tries whose log is archived."""
    h = TaskInstanceHistoryRow
    stmt = sa.select(h.task_id, h.try_number).where(h.dag_id == dag_id, h.run_id == run_id, h.log.is_not(None))
    return frozenset((task_id, try_number) for task_id, try_number in session.execute(stmt))


def run_history(session: Any, dag_id: str, run_id: str) -> RunHistory | None:
    """The run's rows as :class:`kubedag.app.ports.RunHistory` (dates UTC-aware, as :class:`kubedag.store.models.UtcDateTime` returns
    them; logs not loaded: only whether each is archived); None when the DB has no such run."""
    run = repository.get_dag_run(session, dag_id, run_id)
    if run is None:
        return None
    h = TaskInstanceHistoryRow
    stmt = sa.select(h.task_id, h.try_number, h.state, h.start_date, h.end_date, h.exit_code, h.log.is_not(None)).where(
        h.dag_id == dag_id, h.run_id == run_id)
    tries = {(task_id, number): TryHistory(state, start, end, exit_code, bool(has_log))
             for task_id, number, state, start, end, exit_code, has_log in session.execute(stmt)}
    return RunHistory(run.state, run.end_date, load_tis(repository.get_task_instances(session, dag_id, run_id)), tries)


def load_tis(rows: Iterable[Any]) -> dict[str, engine.TaskInstance]:
    """Task instances from their DB rows, by task id."""
    return {row.task_id: ti_from_row(row) for row in rows}


class SqlRunStore:
    """:class:`kubedag.app.ports.RunStore` on a SQLAlchemy ``sessionmaker`` (each call one transaction)."""

    def __init__(self, sessionmaker: Any) -> None:
        self.sessionmaker = sessionmaker

    def save_dag(self, namespace: str, dag: DAG) -> None:
        """See :meth:`kubedag.app.ports.RunStore.save_dag`."""
        with metrics.db_write("save_dag"), self.sessionmaker.begin() as session:
            save_dag(session, namespace, dag)

    def open_run(self, namespace: str, dag: DAG, run: engine.DagRun, owner: RunObject | None = None) -> StoredRun:
        """See :meth:`kubedag.app.ports.RunStore.open_run` (the owner: :func:`kubedag.store.identity.claim_run`)."""
        dag_id = db_dag_id(namespace, dag.dag_id)
        try:
            with metrics.db_write("open_run"), self.sessionmaker.begin() as session:
                if repository.get_dag(session, dag_id) is None:
                    save_dag(session, namespace, dag)
                row = repository.create_dag_run(
                    session, dag_id=dag_id, run_id=run.run_id, run_type=str(run.run_type), logical_date=run.logical_date,
                    data_interval_start=run.data_interval_start, data_interval_end=run.data_interval_end,
                    conf=dict(run.conf))
                if owner is not None:
                    claim_run(row, owner)
                rows = repository.get_task_instances(session, dag_id, run.run_id)
                if not rows:
                    return StoredRun()
                return StoredRun(load_tis(rows), repository.latest_xcoms(session, dag_id, run.run_id),
                                 archived_tries(session, dag_id, run.run_id))
        except IntegrityError:
            with self.sessionmaker() as session:
                other = session.scalars(sa.select(DagRunRow.run_id).where(
                    DagRunRow.dag_id == dag_id, DagRunRow.logical_date == run.logical_date)).first()
            held = f" (run {other})" if other else ""
            raise RunConflictError(f"DAG {dag.dag_id} has another run at logical date {iso_utc(run.logical_date)}"
                                   f"{held}") from None

    def stored_run(self, namespace: str, dag_id: str, run_id: str) -> tuple[str | None, StoredRun] | None:
        """See :meth:`kubedag.app.ports.RunStore.stored_run` (one read-only session)."""
        db_id = db_dag_id(namespace, dag_id)
        with self.sessionmaker() as session:
            row = repository.get_dag_run(session, db_id, run_id)
            if row is None:
                return None
            rows = repository.get_task_instances(session, db_id, run_id)
            if not rows:
                return row.object_uid, StoredRun()
            return row.object_uid, StoredRun(load_tis(rows), repository.latest_xcoms(session, db_id, run_id),
                                             archived_tries(session, db_id, run_id))

    def archive_run(self, namespace: str, dag_id: str, run_id: str, holder_uid: str) -> str | None:
        """See :meth:`kubedag.app.ports.RunStore.archive_run` (:func:`kubedag.store.identity.rename_run`)."""
        db_id = db_dag_id(namespace, dag_id)
        with self.sessionmaker.begin() as session:
            row = repository.get_dag_run(session, db_id, run_id)
            if row is None or row.object_uid != holder_uid:
                return None
            new_id = archived_run_id(run_id, holder_uid)
            rename_run(session, db_id, run_id, new_id)
            return new_id

    def stored_dag(self, namespace: str, name: str) -> DAG | None:
        """See :meth:`kubedag.app.ports.RunStore.stored_dag`."""
        with self.sessionmaker() as session:
            row = repository.get_dag(session, db_dag_id(namespace, name))
            spec = dict(row.spec) if row is not None else None
        if spec is None:
            return None
        try:
            return parse_dag({"apiVersion": API_VERSION, "kind": "DAG", "metadata": {"name": name, "namespace": namespace},
                              "spec": spec})
        except DAGValidationError:
            return None

    def save_pass(self, namespace: str, dag: DAG, write: PassWrite) -> None:
        """See :meth:`kubedag.app.ports.RunStore.save_pass` (timed; the run counts as pending until it lands)."""
        with metrics.db_write("save_pass", (namespace, dag.dag_id, write.run.run_id)), self.sessionmaker.begin() as session:
            save_pass(session, namespace, dag, write)

    def run_history(self, namespace: str, dag_id: str, run_id: str) -> RunHistory | None:
        """See :meth:`kubedag.app.ports.RunStore.run_history`."""
        with self.sessionmaker() as session:
            return run_history(session, db_dag_id(namespace, dag_id), run_id)

    def latest_scheduled_interval(self, namespace: str, dag_id: str) -> DataInterval | None:
        """See :meth:`kubedag.app.ports.RunStore.latest_scheduled_interval`."""
        stmt = (
            sa.select(DagRunRow.data_interval_start, DagRunRow.data_interval_end)
            .where(DagRunRow.dag_id == db_dag_id(namespace, dag_id), DagRunRow.run_type == "scheduled")
            .order_by(DagRunRow.logical_date.desc())
            .limit(1)
        )
        with self.sessionmaker() as session:
            row = session.execute(stmt).first()
        if row is None or row[0] is None or row[1] is None:
            return None
        return DataInterval(row[0], row[1])

    def external_states(self, namespace: str, dag_id: str, task_id: str | None,
                        dates: list[datetime]) -> list[str | None]:
        """See :meth:`kubedag.app.ports.RunStore.external_states` (:func:`kubedag.store.external.external_states`)."""
        with self.sessionmaker() as session:
            return external_states(session, db_dag_id(namespace, dag_id), task_id, dates)

    def recorded_runs(self, namespace: str, dag_id: str) -> list[RecordedRun]:
        """See :meth:`kubedag.app.ports.RunStore.recorded_runs`."""
        with self.sessionmaker() as session:
            rows = repository.list_dag_runs(session, db_dag_id(namespace, dag_id), limit=None)
            return [RecordedRun(r.run_id, r.logical_date.astimezone(timezone.utc), r.state) for r in rows]


__all__ = ["SqlRunStore", "archived_tries", "db_dag_id", "load_tis", "run_history", "save_dag", "save_pass"]

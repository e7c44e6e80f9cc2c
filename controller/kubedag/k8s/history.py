"""The controller's writes and reads of the metadata DB (synchronous; the controller calls them in a thread).

Every write is idempotent (upserts keyed by DAG, run, task and try), so a pass written twice, or
re-written after a restart, changes nothing. In the DB a DAG of the cluster is keyed
``<namespace>/<name>`` (:func:`db_dag_id`): DAG names are unique per namespace only, and a cluster-wide
controller shares one database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from kubedag.core import engine
from kubedag.core.spec.dag import DAG
from kubedag.core.tries import TryRecord


def db_dag_id(namespace: str, name: str) -> str:
    """The metadata DB's ``dag_id`` of DAG ``name`` in ``namespace``: ``<namespace>/<name>``."""
    return f"{namespace}/{name}"


def save_dag(session: Any, namespace: str, dag: DAG) -> None:
    """Upsert the DAG's row (its spec as JSON, namespace, paused flag). Never commits."""
    from kubedag.store import repository

    repository.upsert_dag(session, db_dag_id(namespace, dag.dag_id), dict(dag.spec), namespace, is_paused=dag.paused)


def open_run(session: Any, namespace: str, dag: DAG, run: engine.DagRun) -> list[Any]:
    """Make sure the DAG and the run have rows; return the run's task instance rows (maybe empty).

    Raises ``sqlalchemy.exc.IntegrityError`` when another run of the DAG has the same logical date
    (one run per logical date, as in Airflow).
    """
    from kubedag.store import repository

    dag_id = db_dag_id(namespace, dag.dag_id)
    if repository.get_dag(session, dag_id) is None:
        save_dag(session, namespace, dag)
    repository.create_dag_run(
        session, dag_id=dag_id, run_id=run.run_id, run_type=str(run.run_type), logical_date=run.logical_date,
        data_interval_start=run.data_interval_start, data_interval_end=run.data_interval_end, conf=dict(run.conf),
    )
    return repository.get_task_instances(session, dag_id, run.run_id)


def save_pass(
    session: Any, namespace: str, dag: DAG, run: engine.DagRun,
    tis: Iterable[engine.TaskInstance], tries: Iterable[TryRecord],
    xcoms: Mapping[tuple[str, int], Mapping[str, Any]] | None = None,
    cleared: Iterable[str] = (),
) -> None:
    """Write one reconcile pass: the run's state, the changed task instances, the tries' history rows, the
    XComs successful tries pushed (``(task_id, try_number)`` -> key -> JSON value, written after the task
    instances they belong to) and, first, the removal of the XComs of ``cleared`` tasks (Airflow's
    ``clear_xcom_data`` when a task is cleared)."""
    from kubedag.local.recording import pass_rows, write_rows

    tries = list(tries)
    rows = pass_rows(dag, run, list(tis), tries)
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
    from kubedag.store import repository

    dag_id = db_dag_id(namespace, dag.dag_id)
    cleared = list(cleared)
    if cleared:
        repository.clear_xcoms(session, dag_id, run.run_id, cleared)
    write_rows(session, replace(rows, dag_id=dag_id))
    for (task_id, try_number), values in (xcoms or {}).items():
        repository.set_xcoms(session, dag_id, run.run_id, task_id, try_number, dict(values))


def load_xcoms(session: Any, namespace: str, dag_id: str, run_id: str) -> dict[tuple[str, str], Any]:
    """Every XCom of a run as ``{(task_id, key): value}`` (each from the newest try that has it)."""
    from kubedag.store import repository

    return repository.latest_xcoms(session, db_dag_id(namespace, dag_id), run_id)


def archive_log(session: Any, namespace: str, dag_id: str, run_id: str, task_id: str, try_number: int, log: str) -> None:
    """Store a finished try's pod log (so ``kubedag logs`` works after the pod is deleted)."""
    from kubedag.store import repository

    repository.record_try(session, db_dag_id(namespace, dag_id), run_id, task_id, try_number, log=log)


def latest_scheduled_interval(session: Any, namespace: str, dag_id: str) -> tuple[datetime, datetime] | None:
    """The data interval of the DAG's latest scheduled run in the DB, or None (Airflow's
    ``last_automated_dagrun``, which the timetable continues from)."""
    import sqlalchemy as sa

    from kubedag.store.models import DagRunRow

    stmt = (
        sa.select(DagRunRow.data_interval_start, DagRunRow.data_interval_end)
        .where(DagRunRow.dag_id == db_dag_id(namespace, dag_id), DagRunRow.run_type == "scheduled")
        .order_by(DagRunRow.logical_date.desc())
        .limit(1)
    )
    row = session.execute(stmt).first()
    if row is None or row[0] is None or row[1] is None:
        return None
    return row[0], row[1]


def load_tis(rows: Iterable[Any]) -> dict[str, engine.TaskInstance]:
    """Task instances from their DB rows, by task id."""
    from kubedag.core.runpass import ti_from_row

    return {row.task_id: ti_from_row(row) for row in rows}

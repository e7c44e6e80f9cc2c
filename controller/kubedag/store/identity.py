"""A run's identity in the metadata DB: which DAGRun object a run belongs to, and keeping a deleted object's history
when its run id is used again (issue 13).

A cluster's run is ``(dag_id = <namespace>/<name>, run_id)``, unique in ``dag_run``, and belongs to one object
(``dag_run.object_name``/``object_uid``, migration 0006). :func:`claim_run` checks or records the owner;
:func:`rename_run` moves a run's rows (``dag_run``, ``task_instance``, ``task_instance_history``, ``xcom``) to another
run id in one transaction, so that nothing of the old history is lost or overwritten.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from kubedag.app.ports import ARCHIVED_RUN_SEPARATOR, RunIdTakenError, RunObject
from kubedag.store.models import ID_LEN, DagRunRow, TaskInstanceHistoryRow, TaskInstanceRow, XComRow

_PARKED = dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc)
"""Where a run's logical date is parked for the moment of its renaming (``(dag_id, logical_date)`` is unique)."""


def claim_run(row: DagRunRow, owner: RunObject) -> None:
    """Record ``owner`` on a run that has none; raise :class:`RunIdTakenError` naming the holder when the run
    belongs to another object (another uid)."""
    if row.object_uid is None:
        row.object_name, row.object_uid = owner.name, owner.uid
        return
    if row.object_uid != owner.uid:
        holder = RunObject(row.object_name or "", row.object_uid)
        raise RunIdTakenError(f"run id {row.run_id} belongs to DAGRun {holder.name} (uid {holder.uid})", holder)


def archived_run_id(run_id: str, uid: str) -> str:
    """``<run id>~deleted-<uid[:8]>``, the run id cut so that it stays within 250 characters."""
    suffix = f"{ARCHIVED_RUN_SEPARATOR}{uid[:8]}"
    return run_id[: ID_LEN - len(suffix)] + suffix


def _copy(session: Any, table: Any, where: Any, run_id: str, **values: Any) -> None:
    """INSERT ... SELECT of ``table``'s rows matching ``where`` with ``run_id`` (and ``values``) replaced."""
    columns = [c for c in table.columns if c.name != "id" or not c.primary_key]
    replaced = {"run_id": run_id, **values}
    select = sa.select(*[sa.literal(replaced[c.name], c.type).label(c.name) if c.name in replaced else c
                         for c in columns]).where(where)
    session.execute(sa.insert(table).from_select([c.name for c in columns], select))


def rename_run(session: Any, dag_id: str, run_id: str, new_run_id: str) -> None:
    """Move run ``run_id`` of ``dag_id`` with its task instances, tries and XComs to ``new_run_id``; never commits.

    The foreign keys have no ``ON UPDATE CASCADE`` (as Airflow's), so the rows are copied: the run (its logical
    date parked for a moment, as ``(dag_id, logical_date)`` is unique), then its task instances; the tries and XComs
    are pointed at the copies; the old task instances and run are deleted.
    """
    run = session.scalars(sa.select(DagRunRow).where(DagRunRow.dag_id == dag_id, DagRunRow.run_id == run_id)).one()
    logical_date = run.logical_date
    run.logical_date = _PARKED
    session.flush()
    dr = DagRunRow.__table__
    _copy(session, dr, sa.and_(dr.c.dag_id == dag_id, dr.c.run_id == run_id), new_run_id, logical_date=logical_date)
    ti = TaskInstanceRow.__table__
    _copy(session, ti, sa.and_(ti.c.dag_id == dag_id, ti.c.run_id == run_id), new_run_id)
    for table in (TaskInstanceHistoryRow.__table__, XComRow.__table__):
        session.execute(sa.update(table).where(table.c.dag_id == dag_id, table.c.run_id == run_id)
                        .values(run_id=new_run_id))
    session.execute(sa.delete(ti).where(ti.c.dag_id == dag_id, ti.c.run_id == run_id))
    session.execute(sa.delete(dr).where(dr.c.dag_id == dag_id, dr.c.run_id == run_id))
    session.expire_all()


__all__ = ["archived_run_id", "claim_run", "rename_run"]

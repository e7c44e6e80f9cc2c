"""The ``externalTask`` sensor's one DB read (Airflow 2.10's ``ExternalTaskSensor._get_count``): the states of
another DAG's task instances or runs at some logical dates. The sensor's rules are pure, in
:mod:`kubedag.core.sensors.external`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kubedag.core.states import TaskInstanceState
from kubedag.store.models import DagRunRow, TaskInstanceRow, as_utc


def external_states(session: Any, db_dag_id: str, task_id: str | None, dates: list[datetime]) -> list[str | None]:
    """The state of task ``task_id`` (or, when None, of the run) in the run of ``db_dag_id`` at each of
    ``dates``, in order: a string, ``"none"`` for a task instance without a state (SQL NULL), None when there
    is no run at that logical date or it has no such task instance.

    ``session`` is a SQLAlchemy 2 ``Session`` on kubedag's metadata DB; ``db_dag_id`` is the DB dag id
    (``<namespace>/<name>`` for a cluster DAG, the name for a local one); ``dates`` are timezone-aware. One
    SELECT; a run's logical date is unique per dag id (``dag_run``'s unique constraint), as in Airflow, whose
    ``_get_count`` counts task instances or runs of ``external_dag_id`` in the states at these dates.

    Raises:
        ValueError: a date is naive.
    """
    wanted = [as_utc(f"dates[{i}]", d) for i, d in enumerate(dates)]
    if not wanted:
        return []
    if task_id is None:
        query = sa.select(DagRunRow.logical_date, sa.literal(True), DagRunRow.state).where(
            DagRunRow.dag_id == db_dag_id, DagRunRow.logical_date.in_(wanted)
        )
    else:
        ti = TaskInstanceRow
        query = (
            sa.select(DagRunRow.logical_date, ti.task_id.is_not(None), ti.state)
            .outerjoin(ti, sa.and_(ti.dag_id == DagRunRow.dag_id, ti.run_id == DagRunRow.run_id, ti.task_id == task_id))
            .where(DagRunRow.dag_id == db_dag_id, DagRunRow.logical_date.in_(wanted))
        )
    found: dict[datetime, str | None] = {}
    for logical_date, exists, state in session.execute(query):
        if exists:
            found[logical_date] = state if state is not None else TaskInstanceState.NONE.value
    return [found.get(d) for d in wanted]

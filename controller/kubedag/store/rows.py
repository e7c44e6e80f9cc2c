"""Writing a run pass's rows (:class:`kubedag.app.records.PassRows`) into the metadata DB: one write shared by every
writer of run history (the local executor's writer process, :mod:`kubedag.store.writer`; the controller's run
store, :mod:`kubedag.store.history`; the local scheduler's store)."""

from __future__ import annotations

from typing import Any

from kubedag.app.records import HOSTNAME, PassRows, pass_rows
from kubedag.core import engine
from kubedag.core.states import DagRunState, RunType

__all__ = ["HOSTNAME", "PassRows", "pass_rows", "run_from_row", "write_rows"]


def write_rows(session: Any, rows: PassRows) -> None:
    """Apply one :class:`PassRows` in ``session`` (never commits; idempotent)."""
    from kubedag.store import repository

    repository.set_dag_run_state(session, rows.dag_id, rows.run_id, rows.run_state, start_date=rows.run_start, end_date=rows.run_end)
    repository.record_pass(session, rows.dag_id, rows.run_id, task_instances=rows.task_instances, tries=rows.tries)
    for task_id, try_number, values in rows.xcoms:
        repository.set_xcoms(session, rows.dag_id, rows.run_id, task_id, try_number, values)


def run_from_row(row: Any) -> engine.DagRun:
    """An engine :class:`~kubedag.core.engine.DagRun` from its ``dag_run`` row."""
    return engine.DagRun(
        dag_id=row.dag_id, run_id=row.run_id, run_type=RunType(row.run_type), logical_date=row.logical_date,
        data_interval_start=row.data_interval_start or row.logical_date,
        data_interval_end=row.data_interval_end or row.logical_date,
        state=DagRunState(row.state), start_date=row.start_date, end_date=row.end_date, conf=dict(row.conf or {}),
    )

"""Writing a run pass's rows (:class:`kubedag.app.records.PassRows`) into the metadata DB: one write shared by every
writer of run history (the local executor's writer process, :mod:`kubedag.store.writer`; the controller's run
store, :mod:`kubedag.store.history`; the local scheduler's store)."""

from __future__ import annotations

from typing import Any

from kubedag.app.records import HOSTNAME, PassRows, pass_rows

__all__ = ["HOSTNAME", "PassRows", "pass_rows", "write_rows"]


def write_rows(session: Any, rows: PassRows) -> None:
    """Apply one :class:`PassRows` in ``session`` (never commits; idempotent)."""
    from kubedag.store import repository

    repository.set_dag_run_state(session, rows.dag_id, rows.run_id, rows.run_state, start_date=rows.run_start, end_date=rows.run_end)
    repository.record_pass(session, rows.dag_id, rows.run_id, task_instances=rows.task_instances, tries=rows.tries)
    for task_id, try_number, values in rows.xcoms:
        repository.set_xcoms(session, rows.dag_id, rows.run_id, task_id, try_number, values)

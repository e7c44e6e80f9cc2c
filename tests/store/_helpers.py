"""Helpers shared by the store tests."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from kubedag.store import repository

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)


def make_run(session: Session, dag_id: str = "etl", run_id: str = "r1", logical_date=T0, **kw):
    """Ensure the DAG exists and create a run (test helper)."""
    if repository.get_dag(session, dag_id) is None:
        repository.upsert_dag(session, dag_id, spec={"tasks": []})
    kw.setdefault("run_type", "scheduled")
    return repository.create_dag_run(
        session, dag_id=dag_id, run_id=run_id, logical_date=logical_date, **kw
    )

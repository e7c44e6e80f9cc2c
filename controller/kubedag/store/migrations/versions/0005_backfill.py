"""Backfills: the backfill table (Airflow 3's), dag_run.backfill_id, and indexes for run listings.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

A backfill row is what ``POST /api/v2/backfills`` creates; the local scheduler carries it out, and the runs it
creates (or re-runs) point back to it through ``dag_run.backfill_id`` (Airflow 3's column). The indexes
``(dag_id, start_date)`` and ``(backfill_id)`` keep a run listing of a DAG with 10,000 runs paged in SQL, and
a backfill's runs found without a scan.

``dag_run`` is not rebuilt (SQLite's batch mode would copy it, and with foreign keys on, dropping the old table
would cascade into its task instances): the column is added in place with ``ALTER TABLE ... ADD COLUMN``,
so it has no foreign key constraint (SQLite cannot add one in place; a backfill is never deleted on its own,
and both go with their DAG). Written by hand to match kubedag.store.models (tests/store
check that the migrated schema and the models agree on SQLite and PostgreSQL).
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ID_LEN = 250


def upgrade() -> None:
    op.create_table(
        "backfill",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dag_id", sa.String(ID_LEN), nullable=False),
        sa.Column("from_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("to_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dag_run_conf", sa.JSON(), nullable=False),
        sa.Column("is_paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("is_cancelled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("reprocess_behavior", sa.String(250), nullable=False),
        sa.Column("max_active_runs", sa.Integer(), nullable=False),
        sa.Column("run_backwards", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="backfill_pkey"),
        sa.ForeignKeyConstraint(["dag_id"], ["dag.dag_id"], name="backfill_dag_id_fkey", ondelete="CASCADE"),
    )
    op.create_index("idx_backfill_dag_id_completed_at", "backfill", ["dag_id", "completed_at"])
    op.add_column("dag_run", sa.Column("backfill_id", sa.Integer(), nullable=True))
    op.create_index("idx_dag_run_backfill_id", "dag_run", ["backfill_id"])
    op.create_index("idx_dag_run_dag_id_start_date", "dag_run", ["dag_id", "start_date"])


def downgrade() -> None:
    op.drop_index("idx_dag_run_dag_id_start_date", table_name="dag_run")
    op.drop_index("idx_dag_run_backfill_id", table_name="dag_run")
    op.drop_column("dag_run", "backfill_id")  # SQLite >= 3.35 drops an unreferenced, unindexed column in place
    op.drop_index("idx_backfill_dag_id_completed_at", table_name="backfill")
    op.drop_table("backfill")

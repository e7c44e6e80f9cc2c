"""Initial schema: dag, dag_run, task_instance, task_instance_history.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Written by hand to match kubedag.store.models (tests/store check that the
migrated schema and the models agree on SQLite and PostgreSQL). Columns are
spelled out here on purpose: a migration must not change when models do.
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: Union[str, None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ID_LEN = 250


def _ts(name: str, nullable: bool = True) -> sa.Column:
    """A timestamp column: timezone-aware, stored UTC (models.UtcDateTime)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "dag",
        sa.Column("dag_id", sa.String(ID_LEN), nullable=False),
        sa.Column("namespace", sa.String(253), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("fileloc", sa.String(2000), nullable=True),
        sa.Column("is_paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("dag_id", name="dag_pkey"),
    )

    op.create_table(
        "dag_run",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dag_id", sa.String(ID_LEN), nullable=False),
        sa.Column("run_id", sa.String(ID_LEN), nullable=False),
        sa.Column("run_type", sa.String(50), nullable=False),
        sa.Column("state", sa.String(50), nullable=False),
        _ts("logical_date", nullable=False),
        _ts("data_interval_start"),
        _ts("data_interval_end"),
        sa.Column("conf", sa.JSON(), nullable=False),
        _ts("queued_at"),
        _ts("start_date"),
        _ts("end_date"),
        sa.PrimaryKeyConstraint("id", name="dag_run_pkey"),
        sa.ForeignKeyConstraint(
            ["dag_id"], ["dag.dag_id"], name="dag_run_dag_id_fkey", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("dag_id", "run_id", name="dag_run_dag_id_run_id_key"),
        sa.UniqueConstraint("dag_id", "logical_date", name="dag_run_dag_id_logical_date_key"),
    )
    op.create_index("idx_dag_run_dag_id_state", "dag_run", ["dag_id", "state"], unique=False)

    op.create_table(
        "task_instance",
        sa.Column("dag_id", sa.String(ID_LEN), nullable=False),
        sa.Column("run_id", sa.String(ID_LEN), nullable=False),
        sa.Column("task_id", sa.String(ID_LEN), nullable=False),
        sa.Column("state", sa.String(20), nullable=True),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("max_tries", sa.Integer(), nullable=False),
        _ts("start_date"),
        _ts("end_date"),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("hostname", sa.String(1000), nullable=True),
        sa.Column("pod_name", sa.String(253), nullable=True),
        _ts("next_retry_at"),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("dag_id", "run_id", "task_id", name="task_instance_pkey"),
        sa.ForeignKeyConstraint(
            ["dag_id", "run_id"],
            ["dag_run.dag_id", "dag_run.run_id"],
            name="task_instance_dag_run_fkey",
            ondelete="CASCADE",
        ),
    )
    op.create_index("idx_task_instance_state", "task_instance", ["state"], unique=False)

    op.create_table(
        "task_instance_history",
        sa.Column("dag_id", sa.String(ID_LEN), nullable=False),
        sa.Column("run_id", sa.String(ID_LEN), nullable=False),
        sa.Column("task_id", sa.String(ID_LEN), nullable=False),
        sa.Column("try_number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(20), nullable=True),
        _ts("start_date"),
        _ts("end_date"),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("hostname", sa.String(1000), nullable=True),
        sa.Column("pod_name", sa.String(253), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("log_location", sa.String(2000), nullable=True),
        sa.Column("log", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint(
            "dag_id", "run_id", "task_id", "try_number", name="task_instance_history_pkey"
        ),
        sa.ForeignKeyConstraint(
            ["dag_id", "run_id", "task_id"],
            ["task_instance.dag_id", "task_instance.run_id", "task_instance.task_id"],
            name="task_instance_history_ti_fkey",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("task_instance_history")
    op.drop_index("idx_task_instance_state", table_name="task_instance")
    op.drop_table("task_instance")
    op.drop_index("idx_dag_run_dag_id_state", table_name="dag_run")
    op.drop_table("dag_run")
    op.drop_table("dag")

"""XComs: the xcom table (one row per dag run, task, try and key).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

Written by hand to match kubedag.store.models.XComRow (tests/store check that the
migrated schema and the models agree on SQLite and PostgreSQL). Columns are
spelled out here on purpose: a migration must not change when models do.
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

ID_LEN = 250
XCOM_KEY_LEN = 512


def upgrade() -> None:
    op.create_table(
        "xcom",
        sa.Column("dag_id", sa.String(ID_LEN), nullable=False),
        sa.Column("run_id", sa.String(ID_LEN), nullable=False),
        sa.Column("task_id", sa.String(ID_LEN), nullable=False),
        sa.Column("try_number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key", sa.String(XCOM_KEY_LEN), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dag_id", "run_id", "task_id", "try_number", "key", name="xcom_pkey"),
        sa.ForeignKeyConstraint(
            ["dag_id", "run_id", "task_id"],
            ["task_instance.dag_id", "task_instance.run_id", "task_instance.task_id"],
            name="xcom_task_instance_fkey",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("xcom")

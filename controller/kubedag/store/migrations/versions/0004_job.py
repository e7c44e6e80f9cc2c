"""Schedulers: the job table (one row per scheduler process, its heartbeat; the single-scheduler lock).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Written by hand to match kubedag.store.models.JobRow (tests/store check that the migrated schema and the
models agree). Columns are spelled out here on purpose: a migration must not change when models do.
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_type", sa.String(30), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("hostname", sa.String(500), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("start_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("latest_heartbeat", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="job_pkey"),
    )
    op.create_index("idx_job_job_type_state", "job", ["job_type", "state"])


def downgrade() -> None:
    op.drop_index("idx_job_job_type_state", table_name="job")
    op.drop_table("job")

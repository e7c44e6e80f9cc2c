"""Task instance reason: why a task instance is in its state, kept with its max_tries.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

``task_instance.reason`` holds the text a user reads beside a state (``exit code 1``, ``cleared``,
``upstream_failed: ...``) so that a restarted scheduler or controller reads back what the engine decided,
as it reads back ``max_tries`` (renewed when a task instance is cleared, as Airflow's
``clear_task_instances``). Written by hand to match kubedag.store.models.TaskInstanceRow (tests/store check
that the migrated schema and the models agree on SQLite and PostgreSQL).
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("task_instance") as batch:  # SQLite cannot ALTER in place: batch mode copies
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_instance") as batch:
        batch.drop_column("reason")

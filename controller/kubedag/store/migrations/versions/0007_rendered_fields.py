"""Rendered fields per try (Airflow's ``rendered_task_instance_fields``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

``task_instance_history.rendered_fields``: the rendered ``command``, ``args`` and ``env`` a try was launched with,
the DAG's secrets masked as in logs (``{"command": [...], "args": [...], "env": {...}}``; NULL for a try that was
never launched, and for a try recorded before this revision). The UI's "Rendered" section and the REST API's
``rendered_fields`` read the current try's.

Written by hand to match kubedag.store.models.TaskInstanceHistoryRow (tests/store check that the migrated schema
and the models agree).
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: Union[str, None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("task_instance_history") as batch:
        batch.add_column(sa.Column("rendered_fields", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_instance_history") as batch:
        batch.drop_column("rendered_fields")

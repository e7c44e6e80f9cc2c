"""Run identity: the DAGRun object each dag_run belongs to (issue 13).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

``dag_run.object_name`` / ``object_uid``: the ``metadata.name`` and ``metadata.uid`` of the DAGRun object a
cluster's run belongs to (NULL for a local run, and for a run recorded before this revision: the first object that
opens it claims it). With the unique constraint on ``(dag_id, run_id)`` (``dag_id`` is ``<namespace>/<name>`` on a
cluster) they make a run's identity (namespace, DAG, run id) one object's: a second object with the same run id is
refused while the first exists, and the history of a deleted one is kept under an archived run id when the run id is
used again (:meth:`kubedag.store.history.SqlRunStore.archive_run`).

Written by hand to match kubedag.store.models.DagRunRow (tests/store check that the migrated schema and the models
agree).
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("dag_run") as batch:
        batch.add_column(sa.Column("object_name", sa.String(253), nullable=True))
        batch.add_column(sa.Column("object_uid", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dag_run") as batch:
        batch.drop_column("object_uid")
        batch.drop_column("object_name")

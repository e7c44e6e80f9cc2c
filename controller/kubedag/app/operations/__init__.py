"""The operations trigger, clear, mark, backfill (planning), delete and pause/unpause, written once for both
executors against small ports (:mod:`kubedag.app.operations.ports`).

Locally the ports are the metadata DB and a DAG folder (composed by the CLI from ``kubedag.local`` and
``kubedag.store``); in a cluster, the Kubernetes API (``kubedag.k8s.kubeapi``), where every write goes
through DAGRun and Backfill objects and ``spec.actions``, so that the controller stays the only writer of pods.
"""

from kubedag.app.operations.backfill import PlannedRun, backfill_intervals, plan_backfill
from kubedag.app.operations.ports import (
    AlreadyExists, DagSource, InvalidRequest, LoadedRun, NotFound, OperationError, PauseFlags, RunChange,
    RunsRepository, Unavailable,
)
from kubedag.app.operations.runs import (
    ClearPreview, check_run_id, clear, delete, manual_run, mark, preview_clear, set_paused, trigger,
)
from kubedag.app.operations.runstate import set_run_state

__all__ = [
    "AlreadyExists", "ClearPreview", "DagSource", "InvalidRequest", "LoadedRun", "NotFound", "OperationError",
    "PauseFlags", "PlannedRun", "RunChange", "RunsRepository", "backfill_intervals", "check_run_id", "clear",
    "delete", "manual_run", "mark", "plan_backfill", "preview_clear", "set_paused", "set_run_state", "trigger", "Unavailable",
]

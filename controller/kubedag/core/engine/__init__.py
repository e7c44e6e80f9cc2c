"""The pure task engine: Airflow 2.10's task-instance state machine, without I/O or a clock.

- :mod:`~kubedag.core.engine.trigger_rules`: may a task run given its upstream states?
- :mod:`~kubedag.core.engine.retry`: when a failed try is retried, and whether it may be.
- :mod:`~kubedag.core.engine.model`: immutable task instances, runs and plan actions.
- :mod:`~kubedag.core.engine.plan`: :func:`plan` (one scheduling decision for a run),
  :func:`apply_outcome` and :func:`mark_running` (the executor's reports).
- :mod:`~kubedag.core.engine.actions`: a sensor's "not yet" (:func:`sensor_not_met`), a branch's choice
  (:func:`branch_follow`, :func:`apply_branch`), and the user's :func:`clear` and :func:`mark`.

A runner loops: ``p = plan(dag, run, tis, now)``; store ``p.updates`` and ``p.run``; launch
``p.starts``; stop ``p.kills``; record reports with :func:`mark_running` / :func:`apply_outcome`;
sleep until a report or ``p.wake_at``.
"""

from kubedag.core.engine.actions import ClearResult, apply_branch, branch_follow, clear, mark, select_tasks, sensor_not_met
from kubedag.core.engine.model import DagRun, KillTry, Plan, StartTry, TaskInstance
from kubedag.core.engine.plan import (
    ACTIVE_STATES,
    FAILED_STATES,
    SCHEDULABLE_STATES,
    SUCCESS_STATES,
    apply_outcome,
    format_duration,
    format_instant,
    mark_running,
    plan,
)
from kubedag.core.engine.retry import MAX_RETRY_DELAY, can_retry, exponential_delay, next_retry_at, tries_allowed
from kubedag.core.engine.trigger_rules import CHECKS, RuleResult, UpstreamSummary, evaluate, summarize

__all__ = [
    "ACTIVE_STATES",
    "CHECKS",
    "ClearResult",
    "FAILED_STATES",
    "MAX_RETRY_DELAY",
    "SCHEDULABLE_STATES",
    "SUCCESS_STATES",
    "DagRun",
    "KillTry",
    "Plan",
    "RuleResult",
    "StartTry",
    "TaskInstance",
    "UpstreamSummary",
    "apply_branch",
    "apply_outcome",
    "branch_follow",
    "clear",
    "mark",
    "select_tasks",
    "sensor_not_met",
    "can_retry",
    "evaluate",
    "exponential_delay",
    "format_duration",
    "format_instant",
    "mark_running",
    "next_retry_at",
    "plan",
    "summarize",
    "tries_allowed",
]

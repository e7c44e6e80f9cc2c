"""The notifications of one local step: Airflow's callbacks (``onFailure``, ``onSuccess``, ``onRetry``, the DAG's
run callbacks) for the task instances and the run that changed, as :mod:`kubedag.core.notify` derives them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kubedag.core import engine
from kubedag.core.notify import run_notifications, task_notifications, task_transitions
from kubedag.core.spec.dag import DAG
from kubedag.core.tries import TryRecord


def send_notifications(sender: Any, dag: DAG, before_run: engine.DagRun, run: engine.DagRun,
                       before: Mapping[str, engine.TaskInstance], changed: Mapping[str, engine.TaskInstance],
                       tries: list[TryRecord], read_log: Callable[[engine.TaskInstance], str | None]) -> None:
    """Send (``sender.send(notifier, notification)``) what the step from ``before``/``before_run`` to
    ``changed``/``run`` notifies. A try that failed and was retried within the step (failed -> up_for_retry ->
    queued, with ``retryDelay: 0s``) still notifies ``onRetry``: ``tries`` holds its failed try (the rule is
    :func:`kubedag.core.notify.task_transitions`, shared with the controller)."""
    for was, ti in task_transitions(before, changed, tries):
        for notifier, n in task_notifications(dag, run, was, ti, log=lambda ti=ti: read_log(ti)):
            sender.send(notifier, n)
    for notifier, n in run_notifications(dag, before_run, run):
        sender.send(notifier, n)

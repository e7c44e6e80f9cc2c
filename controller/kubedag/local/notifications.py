"""The notifications of one local step: Airflow's callbacks (``onFailure``, ``onSuccess``, ``onRetry``, the DAG's
run callbacks) for the task instances and the run that changed, as :mod:`kubedag.core.notify` derives them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from kubedag.core import engine
from kubedag.core.notify import run_notifications, task_notifications
from kubedag.core.spec.dag import DAG
from kubedag.core.states import TaskInstanceState
from kubedag.core.tries import TryRecord


def send_notifications(sender: Any, dag: DAG, before_run: engine.DagRun, run: engine.DagRun,
                       before: Mapping[str, engine.TaskInstance], changed: Mapping[str, engine.TaskInstance],
                       tries: list[TryRecord], read_log: Callable[[engine.TaskInstance], str | None]) -> None:
    """Send (``sender.send(notifier, notification)``) what the step from ``before``/``before_run`` to
    ``changed``/``run`` notifies. A try that failed and was retried within the step (failed -> up_for_retry ->
    queued, with ``retryDelay: 0s``) still notifies ``onRetry``: ``tries`` holds its failed try."""
    for task_id, ti in changed.items():
        was = before.get(task_id)
        retried = [t for t in tries if t.task_id == task_id and t.state == TaskInstanceState.FAILED
                   and ti.try_number > t.try_number]
        if retried and was is not None and was.state != TaskInstanceState.UP_FOR_RETRY:
            end = retried[-1]
            mid = replace(was, state=TaskInstanceState.UP_FOR_RETRY, try_number=end.try_number, reason=end.reason,
                          end_date=end.end_date)
            for notifier, n in task_notifications(dag, run, was, mid, log=lambda mid=mid: read_log(mid)):
                sender.send(notifier, n)
            was = mid
        for notifier, n in task_notifications(dag, run, was, ti, log=lambda ti=ti: read_log(ti)):
            sender.send(notifier, n)
    for notifier, n in run_notifications(dag, before_run, run):
        sender.send(notifier, n)

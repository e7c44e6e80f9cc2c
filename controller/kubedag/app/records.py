"""A run pass as metadata DB rows: pure, shared by the local executor, the local scheduler and the controller's
history writer (:func:`pass_rows`), so that every executor records task instances and tries alike."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kubedag.core.states import TaskInstanceState

if TYPE_CHECKING:  # light on purpose: `kubedag dags test` imports this before it forks its DB writer
    from kubedag.core import engine
    from kubedag.core.spec.dag import DAG
    from kubedag.core.tries import TryRecord

HOSTNAME = os.uname().nodename if hasattr(os, "uname") else "localhost"
"""This machine's name, recorded as the ``hostname`` of local task instances and tries."""


@dataclass(frozen=True)
class PassRows:
    """One runner pass as rows: the run's state fields, task instance fields by task_id, and
    ``(task_id, try_number, fields)`` for tries (shapes as :func:`kubedag.store.repository.record_pass`)."""

    dag_id: str
    run_id: str
    run_state: str
    run_start: datetime | None
    run_end: datetime | None
    task_instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    tries: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    xcoms: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    """``(task_id, try_number, {key: JSON value})`` pushed by tries that ended in this pass."""


def pass_rows(
    dag: DAG,
    run: engine.DagRun,
    tis: list[engine.TaskInstance],
    tries: list[TryRecord],
    xcoms: list[tuple[str, int, dict[str, Any]]] | None = None,
) -> PassRows:
    """Turn a runner pass into :class:`PassRows`. Durations in seconds; datetimes stay UTC-aware.
    ``xcoms``: ``(task_id, try_number, {key: value})`` of tries that ended in the pass (see
    :func:`kubedag.core.execution.finish_try`)."""
    ti_rows: dict[str, dict[str, Any]] = {}
    for ti in tis:
        task = dag.tasks.get(ti.task_id)
        duration = (ti.end_date - ti.start_date).total_seconds() if ti.start_date and ti.end_date else None
        ti_rows[ti.task_id] = {
            "state": None if ti.state == TaskInstanceState.NONE else str(ti.state),
            "try_number": ti.try_number,
            "max_tries": ti.max_tries if ti.max_tries is not None else task.retries if task else 0,
            "reason": ti.reason,
            "start_date": ti.start_date, "end_date": ti.end_date, "next_retry_at": ti.next_retry_at,
            "duration": duration, "exit_code": ti.exit_code, "hostname": HOSTNAME,
        }
    try_rows = []
    for t in tries:
        fields: dict[str, Any] = {"state": str(t.state), "hostname": HOSTNAME}
        for name in ("start_date", "end_date", "exit_code", "reason", "log_location"):
            value = getattr(t, name)
            if value is not None:
                fields[name] = value
        if t.start_date and t.end_date:
            fields["duration"] = (t.end_date - t.start_date).total_seconds()
        if t.rendered_fields is not None:  # masked by the executor that launched the try
            fields["rendered_fields"] = dict(t.rendered_fields)
        try_rows.append((t.task_id, t.try_number, fields))
    return PassRows(run.dag_id, run.run_id, str(run.state), run.start_date, run.end_date, ti_rows, try_rows,
                    list(xcoms or ()))

"""Clear and mark actions on a run (a DAGRun's ``spec.actions``), applied once each, at the start of a pass.

As Airflow 2.10's "Clear" and "Mark success/failed" (:func:`kubedag.core.engine.clear`,
:func:`kubedag.core.engine.mark`): an action is identified by its ``id`` and applied once (its id joins the
run's applied list, ``status.appliedActions`` on a cluster). A clear removes the cleared tasks' XComs (Airflow's
``clear_xcom_data``), their rescheduled-sensor pokes and in-process verdicts; a running try it clears or marks is
stopped and recorded as failed with the reason. An action that cannot apply (an unknown task, a bad state) is
recorded as applied with a Warning event naming the problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from kubedag.app.memory import RunMemory
from kubedag.core import engine
from kubedag.core.spec.dag import DAG
from kubedag.core.spec.dagrun import RunAction
from kubedag.core.states import TaskInstanceState
from kubedag.core.tries import TryRecord



@dataclass(frozen=True)
class Stop:
    """A try's pod or process to stop (delete), its poke number, and why."""

    task_id: str
    try_number: int
    poke: int
    reason: str


@dataclass(frozen=True)
class Event:
    """A user-facing event about the run: ``kind`` ``Normal`` | ``Warning``, CamelCase ``reason``, ``message``."""

    kind: str
    reason: str
    message: str


@dataclass(frozen=True)
class Applied:
    """What :func:`apply_actions` did: the new memory, task instances changed (to write), try rows of stopped
    tries, the tries to stop, tasks whose XComs to remove, and events."""

    memory: RunMemory
    changed: Mapping[str, engine.TaskInstance] = field(default_factory=dict)
    tries: tuple[TryRecord, ...] = ()
    stops: tuple[Stop, ...] = ()
    cleared: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()


def apply_actions(dag: DAG, memory: RunMemory, actions: Sequence[Mapping[str, Any]], now: datetime) -> Applied:
    """Apply the actions of ``actions`` (raw ``spec.actions`` entries) whose id is not in ``memory.applied``, in
    order. Pure; never raises for a bad action (see the module docstring)."""
    pending = [raw for raw in actions if isinstance(raw, Mapping) and raw.get("id") and raw["id"] not in memory.applied]
    if not pending:
        return Applied(memory)
    run, tis = memory.run, dict(memory.tis)
    applied, pokes, checks, xcoms = list(memory.applied), dict(memory.pokes), dict(memory.checks), dict(memory.xcoms)
    changed: dict[str, engine.TaskInstance] = {}
    tries: list[TryRecord] = []
    stops: list[Stop] = []
    cleared: list[str] = []
    events: list[Event] = []
    for raw in pending:
        ident = raw["id"]
        applied.append(ident)
        try:
            action = RunAction.model_validate(raw)
            if action.type == "clear":
                res = engine.clear(dag, run, tis, action.tasks, upstream=action.upstream,
                                   downstream=action.downstream, only_failed=action.only_failed, now=now)
            else:
                res = engine.mark(dag, run, tis, action.tasks, TaskInstanceState(action.state), now=now)
        except (ValidationError, ValueError) as exc:
            events.append(Event("Warning", "ActionFailed", f"action {ident}: {exc}"[:1024]))
            continue
        before = dict(tis)
        run = res.run
        tis.update(res.updates)
        changed.update(res.updates)
        for kill in res.kills:
            stops.append(Stop(kill.task_id, kill.try_number, pokes.get(kill.task_id, 0), kill.reason))
            tries.append(TryRecord(kill.task_id, kill.try_number, TaskInstanceState.FAILED,
                                   before[kill.task_id].start_date, now, None, kill.reason))
        if action.type == "clear":
            for task_id in res.task_ids:
                pokes.pop(task_id, None)
                checks.pop(task_id, None)
                for key in [k for k in xcoms if k[0] == task_id]:
                    del xcoms[key]
            cleared += [t for t in res.task_ids if t not in cleared]
        what = "cleared" if action.type == "clear" else f"marked {action.state}"
        events.append(Event("Normal", "Cleared" if action.type == "clear" else "Marked",
                            f"action {ident}: {what} {', '.join(res.task_ids) or 'nothing'}"[:1024]))
    new = replace(memory, run=run, tis=tis, applied=tuple(applied), pokes=pokes, checks=checks, xcoms=xcoms)
    return Applied(new, changed, tuple(tries), tuple(stops), tuple(cleared), tuple(events))


__all__ = ["Applied", "Event", "Stop", "apply_actions"]

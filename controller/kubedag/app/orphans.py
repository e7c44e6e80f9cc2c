"""A run whose DAG was deleted (issue 13: ``kubectl delete dag`` left its manual runs ``running``/``queued`` forever).

Airflow's ``airflow dags delete`` removes a DAG's runs from the metadata DB, and a run whose DAG file disappeared stays
``running`` with nothing to schedule it. On a cluster the DAGRun objects a DAG created (scheduled, backfill) are
deleted with it through their owner reference; a run created by hand has no owner and outlives its DAG. kubedag ends
such a run rather than leave it stalled: its history stays in the metadata DB, and its object says why.

:func:`end_orphaned_run` (pure): every unfinished task instance becomes ``removed`` (Airflow's state for a task no
longer in its DAG), a try that was queued or running ends ``failed`` and is stopped, and the run ``failed``, each
with reason ``dag_deleted: DAG <name> was deleted``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from kubedag.app.memory import RunMemory
from kubedag.app.ports import PassWrite
from kubedag.core import engine
from kubedag.core.engine.plan import ACTIVE_STATES
from kubedag.core.states import DagRunState
from kubedag.core.states import TaskInstanceState as S
from kubedag.core.tries import TryRecord

_UNFINISHED = frozenset({S.NONE, S.SCHEDULED, S.QUEUED, S.RUNNING, S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE})


@dataclass(frozen=True)
class OrphanEnd:
    """How an orphaned run ends: ``memory`` after it, ``write`` for the run store, ``stops``: ``(task_id,
    try_number, poke)`` of the tries whose pods are to be deleted, ``reason`` of the run."""

    memory: RunMemory
    write: PassWrite
    stops: tuple[tuple[str, int, int], ...]
    reason: str


def end_orphaned_run(dag_name: str, memory: RunMemory, now: datetime) -> OrphanEnd:
    """End the run of ``memory`` whose DAG ``dag_name`` was deleted, at ``now`` (UTC-aware); see the module
    docstring. A finished run is returned as it is (an empty write)."""
    why = f"dag_deleted: DAG {dag_name} was deleted"
    if memory.run.finished:
        return OrphanEnd(memory, PassWrite(run=memory.run), (), memory.run.reason or why)
    changed: dict[str, engine.TaskInstance] = {}
    tries, stops = [], []
    for task_id, ti in memory.tis.items():
        if ti.state not in _UNFINISHED:
            continue
        if ti.state in ACTIVE_STATES and ti.try_number:
            tries.append(TryRecord(task_id, ti.try_number, S.FAILED, ti.start_date or now, now, reason=why))
            stops.append((task_id, ti.try_number, memory.poke(task_id, ti.try_number)))
        changed[task_id] = replace(ti, state=S.REMOVED, reason=f"removed: {why}", end_date=now, next_retry_at=None)
    run = replace(memory.run, state=DagRunState.FAILED, start_date=memory.run.start_date or now, end_date=now, reason=why)
    new = replace(memory, run=run, tis={**memory.tis, **changed})
    return OrphanEnd(new, PassWrite(run=run, tis=tuple(changed.values()), tries=tuple(tries)), tuple(stops), why)


__all__ = ["OrphanEnd", "end_orphaned_run"]

"""What the controller knows of one DAG run between two passes: an immutable :class:`RunMemory`.

A pass (:func:`kubedag.app.reconcile.reconcile_run`) takes one and returns the next; the worker holding the run's
key keeps it once the pass's write landed. Rebuilt after a restart by :func:`open_memory` from the run store
(and the executor's own record, a DAGRun's status), so nothing in it is needed for correctness that cannot be
found again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubedag.app.ports import StoredRun, TryKey
from kubedag.core import engine, runpass
from kubedag.core.states import TaskInstanceState as S


@dataclass(frozen=True)
class RunMemory:
    """What the controller knows of one DAG run between two passes (immutable: a pass returns a new one).

    ``run``/``tis``: the run and its task instances. ``launched``: task_id -> the try number whose pod (or
    process) is known created. ``pokes``: task_id -> the current poke of a rescheduled sensor's try (its pod is
    numbered by poke). ``xcoms``: ``(task_id, key)`` -> value, for templates. ``applied``: ids of ``spec.actions``
    applied. ``archived``: tries whose log is in the DB. ``rejected``: tries whose pod the API server refused ->
    why. ``checks``: task_id -> ``(try_number, verdict)`` of in-process tasks (kept until ``recheck_at``).
    ``sla_reported``: tasks whose SLA miss was reported. ``pool_blocked``: pools some task waits on.
    """

    run: engine.DagRun
    tis: Mapping[str, engine.TaskInstance]
    launched: Mapping[str, int] = field(default_factory=dict)
    pokes: Mapping[str, int] = field(default_factory=dict)
    xcoms: Mapping[tuple[str, str], Any] = field(default_factory=dict)
    applied: tuple[str, ...] = ()
    archived: frozenset[TryKey] = frozenset()
    rejected: Mapping[TryKey, str] = field(default_factory=dict)
    checks: Mapping[str, tuple[int, runpass.ControllerCheck]] = field(default_factory=dict)
    sla_reported: frozenset[str] = frozenset()
    pool_blocked: frozenset[str] = frozenset()

    def poke(self, task_id: str, try_number: int) -> int:
        """The poke number of a try's pod: the current poke for the task's current try, else 0."""
        ti = self.tis.get(task_id)
        return self.pokes.get(task_id, 0) if ti is not None and ti.try_number == try_number else 0


def open_memory(run: engine.DagRun, stored: StoredRun, status_tis: Mapping[str, engine.TaskInstance], *,
                launched: Mapping[str, int], pokes: Mapping[str, int], applied: Sequence[str]) -> RunMemory:
    """A run's memory when it is (re)opened: task instances from the store, else from the executor's record of
    them (a DAGRun's status, when the DB is new); ``launched``/``pokes``/``applied`` from that record.

    A rescheduled sensor's try that has not ended and is past its first poke is not taken as archived even when
    the DB has a log for it: that log is an earlier poke's, and the current poke's pod log is still to be read
    (as a pass forgets the try's archive when it starts a new poke; :func:`kubedag.app.reconcile.reconcile_run`)."""
    tis = dict(stored.tis or status_tis)
    poking = {(t, ti.try_number) for t, ti in tis.items()
              if pokes.get(t, 0) > 0 and ti.state in (*engine.ACTIVE_STATES, S.UP_FOR_RESCHEDULE)}
    return RunMemory(run=run, tis=tis, launched=dict(launched), pokes=dict(pokes),
                     xcoms=dict(stored.xcoms), applied=tuple(applied), archived=stored.archived - poking)


__all__ = ["RunMemory", "open_memory"]

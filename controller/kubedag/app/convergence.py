"""A history that converges (issue 13): the metadata DB made to agree with a finished run's executor record.

Once a run is finished, its executor record is the truth: on a cluster the DAGRun's status (the run's state, each
task instance's state and try number) and the pods still kept (each try's end, exit code and log). The DB may lag
behind it: a pass whose status write landed while its DB write did not (a DB outage, then a restart), or rows lost
or corrupted. :func:`converge_history` compares what the DB holds (:class:`kubedag.app.ports.RunHistory`) with
that record and returns the :class:`kubedag.app.ports.PassWrite` that makes the DB agree; never the other way
round: a finished run's status is not changed from the DB.

Every finished try then ends in the DB with its final state, end time, exit code (when the executor knew one) and
log, or a log saying why it is unavailable (:data:`LOG_UNAVAILABLE`). A failed try's reason comes from its kept pod,
else from the status's task entry (``r``: the only record of a failure that never had a pod, such as a template
that does not render, when the controller was killed between the status write and the DB write), else it is
:data:`RECONCILED`. The events of the pass the DB missed were never posted either: :attr:`Convergence.events`
names the failures it recorded (one Warning, ``TaskFailed``, per convergence that records any). Pure: the caller
reads the DB and the pods, reads the logs of tries whose pod is kept (:attr:`Convergence.logs_to_read`), writes
and posts the events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from kubedag.app.actions import Event
from kubedag.app.ports import PassWrite, RunHistory, TryHistory, TryKey
from kubedag.core import engine, runpass
from kubedag.core.states import DagRunState
from kubedag.core.states import TaskInstanceState as S
from kubedag.core.tries import TryRecord

FINISHED_RUN = (DagRunState.SUCCESS, DagRunState.FAILED)
RAN = (S.SUCCESS, S.FAILED)
"""Task instance states of a try that ran and ended."""
ENDED_TRY_STATES = ("success", "failed", "up_for_retry", "up_for_reschedule", "skipped")
"""Try history states that are an outcome (a try row left ``running``/``queued`` was never finished in the DB)."""
LOG_UNAVAILABLE = "kubedag: log unavailable: {why}\n"
"""The archived log of a try whose log could not be read (its pod was gone before the DB recorded the log)."""
RECONCILED = "recorded from the DAGRun status after the DB missed it"
"""``reason`` of a task instance or try whose end is known only from the run's status (no pod kept)."""


@dataclass(frozen=True)
class Convergence:
    """What :func:`converge_history` found: ``write`` (None: the DB agrees), ``tis``: the task instances as the
    executor record has them (the run's memory takes them), ``logs_to_read``: tries whose pod is kept but whose
    log the DB lacks (the caller reads and archives them), ``repaired``: how many rows ``write`` corrects,
    ``events``: to post once ``write`` landed (see the module docstring)."""

    write: PassWrite | None
    tis: Mapping[str, engine.TaskInstance] = field(default_factory=dict)
    logs_to_read: frozenset[TryKey] = frozenset()
    repaired: int = 0
    events: tuple[Event, ...] = ()


def converge_history(run: engine.DagRun, status_tis: Mapping[str, engine.TaskInstance], history: RunHistory,
                     observed: Mapping[TryKey, runpass.TryObservation], *, pod_name: str = "its pod",
                     mask: Callable[[str], str] | None = None) -> Convergence:
    """The DB write that makes a finished run's history agree with its executor record (see the module docstring).

    ``run``: the run as its status has it (state, start and end; UTC-aware). ``status_tis``: task id -> state and
    try number from the status (:func:`kubedag.k8s.observe.tis_from_status`). ``history``: the DB's rows.
    ``observed``: the tries whose pod is kept, read as :class:`kubedag.core.runpass.TryObservation`.
    ``pod_name``: how the unavailable-log text names the pods. ``mask``: hides secret values in the reasons written
    and posted (a kept pod's message can hold one), as the pass's own writes
    (:func:`kubedag.app.reconcile.reconcile_run`). A run that is not finished converges through its own passes: the
    result is then empty.
    """
    if run.state not in FINISHED_RUN:
        return Convergence(None, {})
    repaired = 0
    tis: dict[str, engine.TaskInstance] = {}
    changed: dict[str, engine.TaskInstance] = {}
    for task_id, wanted in status_tis.items():
        stored = history.tis.get(task_id)
        ti = _task_instance(run, wanted, stored, observed)
        if mask is not None and ti.reason:
            ti = replace(ti, reason=mask(ti.reason))
        tis[task_id] = ti
        if stored is None or (stored.state, stored.try_number) != (ti.state, ti.try_number) \
                or (ti.state in RAN and (stored.end_date is None or stored.exit_code != ti.exit_code)):
            changed[task_id] = ti
    tries: list[TryRecord] = []
    logs: dict[TryKey, str] = {}
    to_read: set[TryKey] = set()
    for task_id, ti in tis.items():
        for number in range(1, ti.try_number + 1):
            key = (task_id, number)
            stored_try = history.tries.get(key)
            current = number == ti.try_number
            if stored_try is None and not current:
                continue  # an earlier try the DB never heard of: nothing known of it to record
            if current and ti.state not in RAN:
                continue  # not run to an end (skipped, upstream_failed...) or still its own business
            record = _try_record(run, ti, key, stored_try, observed.get(key), current)
            if record is not None and mask is not None and record.reason:
                record = replace(record, reason=mask(record.reason))
            if record is not None:
                tries.append(record)
            if stored_try is None or not stored_try.has_log:
                if key in observed:
                    to_read.add(key)
                else:
                    logs[key] = LOG_UNAVAILABLE.format(why=f"{pod_name} of try {number} was gone before its log was archived")
    run_stale = history.state != str(run.state) or (history.end_date is None and run.end_date is not None)
    repaired = len(changed) + len(tries) + len(logs) + int(run_stale)
    if not repaired:
        return Convergence(None, tis, frozenset(to_read))
    write = PassWrite(run=run, tis=tuple(changed.values()), tries=tuple(tries), logs=logs)
    return Convergence(write, tis, frozenset(to_read), repaired, _failure_events(changed, history))


def _failure_events(changed: Mapping[str, engine.TaskInstance], history: RunHistory) -> tuple[Event, ...]:
    """One Warning naming the failed tries the DB had not recorded as failed, with their reasons (none when no
    reason is known: :data:`RECONCILED` names no problem)."""
    named = [f"task {ti.task_id} (try {ti.try_number}): {ti.reason}" for ti in changed.values()
             if ti.state == S.FAILED and ti.reason and ti.reason != RECONCILED
             and _missed(history.tis.get(ti.task_id), ti)]
    if not named:
        return ()
    return (Event("Warning", "TaskFailed", f"failed, recorded after a restart: {'; '.join(named)}"[:1024]),)


def _missed(stored: engine.TaskInstance | None, ti: engine.TaskInstance) -> bool:
    """Whether the DB's task instance ``stored`` lacks the failure of ``ti`` (another state or try)."""
    return stored is None or (stored.state, stored.try_number) != (ti.state, ti.try_number)


def _task_instance(run: engine.DagRun, wanted: engine.TaskInstance, stored: engine.TaskInstance | None,
                   observed: Mapping[TryKey, runpass.TryObservation]) -> engine.TaskInstance:
    """The task instance of the status (state, try), with its dates, exit code and reason from the pod when kept,
    else from the DB when it has that try, else ended with the run."""
    same_try = stored is not None and stored.try_number == wanted.try_number
    base = stored if stored is not None and same_try else wanted
    seen = observed.get((wanted.task_id, wanted.try_number))
    ti = replace(base, state=wanted.state, try_number=wanted.try_number)
    if wanted.state not in RAN or wanted.try_number == 0:
        return replace(ti, next_retry_at=None) if stored is not None and stored.state != wanted.state else ti
    start = (seen.started_at if seen else None) or ti.start_date or run.start_date
    end = (seen.finished_at if seen else None) or ti.end_date or run.end_date
    exit_code = seen.exit_code if seen is not None and seen.exit_code is not None else ti.exit_code
    reason = ti.reason
    stored_reason = stored is not None and same_try and stored.state == wanted.state and stored.reason
    if seen is not None and seen.reason and wanted.state == S.FAILED:
        reason = seen.reason
    elif wanted.reason and not stored_reason:
        reason = wanted.reason  # the status's: the DB missed this end
    elif seen is None and not same_try:
        reason = reason or RECONCILED
    return replace(ti, start_date=start, end_date=end, exit_code=exit_code, reason=reason, next_retry_at=None)


def _try_record(run: engine.DagRun, ti: engine.TaskInstance, key: TryKey, stored: TryHistory | None,
                seen: runpass.TryObservation | None, current: bool) -> TryRecord | None:
    """The history row of one try as it must end, or None when the DB has it right."""
    if current:
        state = ti.state
    elif seen is not None and seen.finished:
        state = S.SUCCESS if seen.phase == "succeeded" else S.FAILED
    else:
        state = S.FAILED  # a later try exists: this one did not succeed
    end = (seen.finished_at if seen else None) or (stored.end_date if stored else None) \
        or (ti.end_date if current else ti.start_date) or run.end_date
    exit_code = seen.exit_code if seen is not None and seen.exit_code is not None else \
        (stored.exit_code if stored is not None and stored.exit_code is not None else (ti.exit_code if current else None))
    if stored is not None and stored.state == str(state) and stored.end_date is not None and stored.exit_code == exit_code:
        return None
    if stored is not None and stored.state in ENDED_TRY_STATES and stored.end_date is not None and not current \
            and stored.exit_code == exit_code:
        return None  # an earlier try recorded with its outcome (failed, up_for_retry...): kept as it is
    start = (seen.started_at if seen else None) or (stored.start_date if stored else None) or (ti.start_date if current else None)
    reason = (seen.reason if seen is not None and state == S.FAILED else None) \
        or (ti.reason if current and seen is None and state == S.FAILED else None) \
        or (None if seen is not None else RECONCILED)
    return TryRecord(key[0], key[1], state, start, end, exit_code=exit_code, reason=reason)


__all__ = ["Convergence", "LOG_UNAVAILABLE", "RECONCILED", "converge_history"]

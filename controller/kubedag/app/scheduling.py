"""Which scheduled runs of a DAG to create now: one decision shared by the controller and the local scheduler.

As Airflow's scheduler (``SchedulerJobRunner._create_dag_runs`` with ``DagModel.calculate_dagrun_date_fields``):
a run is created for every data interval whose ``run_after`` has passed, oldest first, after the last
automated data interval, within the DAG's ``startDate``/``endDate`` and ``catchup`` (the timetable's
:class:`~kubedag.core.timetable.TimeRestriction`), while fewer than ``maxActiveRuns`` runs are active (queued or
running). A paused DAG creates nothing and has no next run. Pure: "now" is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kubedag.core.spec.dag import DAG
from kubedag.core.timetable import DagRunInfo, DataInterval


@dataclass(frozen=True)
class ScheduleDecision:
    """What :func:`decide` found.

    ``create``: the scheduled runs to create now, oldest first (their ``logical_date`` and ``data_interval``;
    the run id is :func:`kubedag.core.timetable.run_id` of ``"scheduled"``). ``last``: the last automated data
    interval once they exist (to pass back next time). ``next``: the first run not created yet (its
    ``run_after`` is a DAG's ``nextRunAt``), None when the timetable has no more runs or the DAG is paused.
    ``blocked``: True when ``next`` is due but ``maxActiveRuns`` holds it back (Airflow logs "exceeds
    max_active_runs"; kubedag emits a ``MaxActiveRunsReached`` event). ``wake_at``: when time alone changes the
    decision (``next.run_after`` if it is in the future), None otherwise (a finished run or an unpause wakes it).
    """

    create: tuple[DagRunInfo, ...]
    last: DataInterval | None
    next: DagRunInfo | None
    blocked: bool
    wake_at: datetime | None


def decide(dag: DAG, last: DataInterval | None, active_runs: int, now: datetime, *, limit: int = 1000) -> ScheduleDecision:
    """The scheduled runs of ``dag`` to create at ``now`` (UTC-aware).

    ``last``: the data interval of the DAG's latest scheduled run (None: none yet). ``active_runs``: its queued
    or running runs of any type (Airflow counts them all against ``max_active_runs``). ``limit`` caps one
    decision (a DAG with a long catchup creates the rest in the next decision).

    Raises:
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    if dag.paused:
        return ScheduleDecision((), last, None, False, None)
    create: list[DagRunInfo] = []
    info = dag.timetable.next_dagrun_info(last_automated_data_interval=last, restriction=dag.restriction, now=now)
    blocked = False
    while info is not None and info.run_after <= now and len(create) < limit:
        if active_runs + len(create) >= dag.max_active_runs:
            blocked = True
            break
        create.append(info)
        last = info.data_interval
        info = dag.timetable.next_dagrun_info(last_automated_data_interval=last, restriction=dag.restriction, now=now)
    wake_at = info.run_after if info is not None and info.run_after > now else None
    return ScheduleDecision(tuple(create), last, info, blocked, wake_at)

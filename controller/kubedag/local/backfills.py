"""How the local scheduler carries out a backfill (Airflow 3's, a ``backfill`` row): what to start next, from what
exists now, so that a restarted scheduler resumes where it was.

:func:`backfill_todo` plans with :func:`kubedag.app.operations.backfill.plan_backfill` (every schedule interval
whose logical date is in ``[from_date, to_date]``) and maps Airflow 3's ``reprocess_behavior`` onto its actions, as
Airflow 3's ``_create_backfill`` / ``_get_dag_run_no_create_reason`` decide for each date:

* no run at that date: ``create`` a ``backfill`` run;
* a run of this backfill: counted (``active`` while it is queued or running, else done);
* another run that is queued or running: left alone, whatever the behaviour ("in progress");
* another finished run: left alone with ``none``; re-run (``reset``: cleared, it becomes a run of this backfill)
  with ``failed`` when it failed, with ``completed`` whatever it ended as.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from kubedag.app.operations.backfill import PlannedRun, plan_backfill
from kubedag.app.scheduler_ports import OpenBackfill, RunAtDate
from kubedag.core.spec.dag import DAG

_UNFINISHED = ("queued", "running")


def _reprocess(behavior: str, state: str) -> bool:
    """Whether an existing finished run in ``state`` is run again under Airflow 3's ``reprocess_behavior``."""
    if behavior == "completed":
        return True
    return behavior == "failed" and state == "failed"


def backfill_todo(backfill: OpenBackfill, dag: DAG,
                  existing: Mapping[datetime, RunAtDate]) -> tuple[list[PlannedRun], int]:
    """The runs still to start (``create`` or ``reset``), in the order they start (oldest logical date first;
    newest first with ``run_backwards``), and how many runs of the backfill are unfinished now.

    Raises:
        kubedag.app.operations.ports.InvalidRequest: the range is invalid for the DAG (as :func:`plan_backfill`).
    """
    planned = plan_backfill(dag, backfill.from_date, backfill.to_date,
                            {d: (r.run_id, r.state) for d, r in existing.items()}, reset=False,
                            fields=("from_date", "to_date"))
    todo: list[PlannedRun] = []
    active = 0
    for p in planned:
        if p.action == "create":
            todo.append(p)
            continue
        run = existing[p.logical_date]
        if run.backfill_id == backfill.id:
            active += run.state in _UNFINISHED
        elif run.state not in _UNFINISHED and _reprocess(backfill.reprocess_behavior, run.state):
            todo.append(replace(p, action="reset"))
    if backfill.run_backwards:
        todo.reverse()
    return todo, active


__all__ = ["backfill_todo"]

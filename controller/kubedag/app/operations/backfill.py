"""Backfill planning, one rule for both executors: Airflow 2.10's ``airflow dags backfill -s START -e END``.

:func:`plan_backfill` (pure) lists, oldest first, every schedule interval whose logical date is in
``[start, end]`` (:func:`kubedag.core.timetable.backfill_infos`, Airflow's
``DAG.iter_dagrun_infos_between(start, end, align=True)``) and what to do with it: ``create`` a run of type
``backfill`` (run id ``backfill__<logical date>``), or, when a run exists at that logical date (whatever its
type), leave it alone (``exists``) or, with ``reset``, clear it and run it again (``reset``). Naive dates
are read in the DAG's timezone, as every date of a manifest.

Used by the local ``kubedag dags backfill -f`` (which then runs the ``create``/``reset`` runs itself), by
``--dry-run`` against a cluster, and by the controller's Backfill reconciler (which adds its own bookkeeping:
``maxActiveRuns`` slots and reset actions it already appended).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubedag.app.operations.ports import InvalidRequest
from kubedag.core import timetable
from kubedag.core.spec.dag import DAG, to_utc


@dataclass(frozen=True)
class PlannedRun:
    """One interval of a backfill. ``action``: ``create`` (a new backfill run), ``reset`` (an existing run
    cleared and run again) or ``exists`` (an existing run, left alone). ``state``: the existing run's.
    Instants are UTC-aware."""

    run_id: str
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    action: str
    state: str | None = None

    def as_json(self) -> dict[str, Any]:
        """``{run_id, logical_date, data_interval_start, data_interval_end, action, state}``, instants ISO 8601 UTC."""
        return {"run_id": self.run_id, "logical_date": timetable.iso_utc(self.logical_date),
                "data_interval_start": timetable.iso_utc(self.data_interval_start),
                "data_interval_end": timetable.iso_utc(self.data_interval_end), "action": self.action,
                "state": self.state}


CLI_FIELDS = ("--start-date", "--end-date")
"""How :func:`backfill_intervals` names the range in errors by default (``kubedag dags backfill``'s options); a
Backfill object's are ``("spec.startDate", "spec.endDate")``."""


def backfill_intervals(dag: DAG, start: datetime, end: datetime, *,
                       fields: tuple[str, str] = CLI_FIELDS) -> list[timetable.DagRunInfo]:
    """The intervals of a backfill of ``dag`` over ``[start, end]`` (naive: in the DAG's timezone), oldest first.

    Raises:
        InvalidRequest: ``end`` before ``start`` (naming both by ``fields``), or more than
            :data:`kubedag.core.timetable.MAX_RUNS` intervals.
    """
    start_utc, end_utc = to_utc(start, dag.timezone), to_utc(end, dag.timezone)
    assert start_utc is not None and end_utc is not None
    if end_utc < start_utc:
        raise InvalidRequest(f"{fields[1]} {timetable.iso_utc(end_utc)} is before {fields[0]} "
                             f"{timetable.iso_utc(start_utc)}")
    try:
        return timetable.backfill_infos(dag.timetable, start_utc, end_utc)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


def plan_backfill(dag: DAG, start: datetime, end: datetime, existing: Mapping[datetime, tuple[str, str | None]],
                  *, reset: bool = False, fields: tuple[str, str] = CLI_FIELDS) -> list[PlannedRun]:
    """The runs of ``airflow dags backfill -s START -e END`` (see the module docstring), oldest first.

    ``existing``: logical date (UTC) -> ``(run_id, state)`` of the DAG's runs
    (:meth:`~kubedag.app.operations.ports.RunsRepository.runs_by_logical_date`).

    Raises:
        InvalidRequest: as :func:`backfill_intervals` (``fields`` names the range's two ends).
    """
    out = []
    for info in backfill_intervals(dag, start, end, fields=fields):
        found = existing.get(info.logical_date)
        interval = info.data_interval
        if found is None:
            out.append(PlannedRun(timetable.run_id("backfill", info.logical_date), info.logical_date,
                                  interval.start, interval.end, "create"))
        else:
            out.append(PlannedRun(found[0], info.logical_date, interval.start, interval.end,
                                  "reset" if reset else "exists", found[1]))
    return out

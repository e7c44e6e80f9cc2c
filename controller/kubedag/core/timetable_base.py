"""The parts of Airflow 2.10's timetables every schedule shares (``airflow/timetables/base.py``: data intervals,
time restrictions, run infos, the ``Timetable`` protocol) and the two trivial timetables
(``airflow/timetables/simple.py``: ``schedule=None`` and ``@once``). Re-exported by
:mod:`kubedag.core.timetable`, which adds the periodic ones. Every datetime accepted must be timezone-aware
(naive -> ``ValueError``); every datetime returned is aware and in UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

UTC = dt.timezone.utc


def _utc(value: dt.datetime, what: str = "datetime") -> dt.datetime:
    """Return aware ``value`` converted to UTC; raise ``ValueError`` if it is naive."""
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class DataInterval:
    """The ``[start, end)`` span of data a DAG run operates over (``airflow.timetables.base.DataInterval``).

    ``start``/``end`` are aware datetimes, stored converted to UTC; naive ones raise
    ``ValueError``. Like Airflow, ``start <= end`` is not enforced.
    """

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _utc(self.start, "DataInterval.start"))
        object.__setattr__(self, "end", _utc(self.end, "DataInterval.end"))

    @classmethod
    def exact(cls, at: dt.datetime) -> DataInterval:
        """Zero-length interval ``[at, at]`` (Airflow's ``DataInterval.exact``)."""
        return cls(at, at)


@dataclass(frozen=True)
class TimeRestriction:
    """Bounds on automated scheduling (``airflow.timetables.base.TimeRestriction``).

    ``earliest`` is the DAG's ``start_date``, ``latest`` its ``end_date`` (aware
    datetimes or None, stored in UTC; both inclusive), ``catchup`` the DAG's flag.
    Naive datetimes raise ``ValueError``.
    """

    earliest: dt.datetime | None
    latest: dt.datetime | None
    catchup: bool

    def __post_init__(self) -> None:
        for name in ("earliest", "latest"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _utc(getattr(self, name), f"TimeRestriction.{name}"))


@dataclass(frozen=True)
class DagRunInfo:
    """One run to create (``airflow.timetables.base.DagRunInfo``).

    ``run_after`` (aware, stored in UTC) is the earliest time the scheduler creates
    the run; ``data_interval`` the span it covers.
    """

    run_after: dt.datetime
    data_interval: DataInterval

    def __post_init__(self) -> None:
        object.__setattr__(self, "run_after", _utc(self.run_after, "DagRunInfo.run_after"))

    @classmethod
    def exact(cls, at: dt.datetime) -> DagRunInfo:
        """A run at ``at`` over the zero-length interval ``[at, at]`` (Airflow's ``DagRunInfo.exact``)."""
        return cls(at, DataInterval.exact(at))

    @classmethod
    def interval(cls, start: dt.datetime, end: dt.datetime) -> DagRunInfo:
        """A run over ``[start, end)`` created once ``end`` has passed (Airflow's ``DagRunInfo.interval``)."""
        return cls(end, DataInterval(start, end))

    @property
    def logical_date(self) -> dt.datetime:
        """The run's logical date (formerly ``execution_date``): the data interval start, in UTC."""
        return self.data_interval.start


@runtime_checkable
class Timetable(Protocol):
    """What every timetable provides (``airflow.timetables.base.Timetable``, minus I/O and the clock).

    ``can_be_scheduled`` is False only for ``NullTimetable``; ``periodic`` is False for
    Null and Once; ``summary`` is the short UI text (the expanded cron expression for
    cron timetables).
    """

    can_be_scheduled: bool
    periodic: bool

    @property
    def summary(self) -> str:
        """Short human-readable form of the schedule."""

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction, now: dt.datetime
    ) -> DagRunInfo | None:
        """Run after the last automated run's interval (None: first run), or None; ``now`` aware."""

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        """Data interval given to a run triggered manually at ``run_after`` (aware)."""


class _TrivialTimetable:
    """Shared parts of Null and Once (Airflow's ``simple._TrivialTimetable``)."""

    periodic = False
    can_be_scheduled = True

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        """``DataInterval(run_after, run_after)``, as Airflow's ``_TrivialTimetable``; naive -> ``ValueError``."""
        return DataInterval.exact(_utc(run_after, "run_after"))


class NullTimetable(_TrivialTimetable):
    """``schedule=None``: never schedules; only manual triggers (Airflow's ``simple.NullTimetable``)."""

    can_be_scheduled = False
    summary = "None"

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction, now: dt.datetime
    ) -> DagRunInfo | None:
        """Always None: a null schedule never creates runs."""
        _utc(now, "now")
        return None


class OnceTimetable(_TrivialTimetable):
    """``schedule="@once"`` (Airflow's ``simple.OnceTimetable``).

    Exactly one run, at ``start_date`` over ``[start_date, start_date]``, whatever
    ``catchup`` says; none without a start date, none if ``start_date > end_date``.
    """

    summary = "@once"

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction, now: dt.datetime
    ) -> DagRunInfo | None:
        """The single run at ``restriction.earliest``, or None once it exists (any previous interval)."""
        _utc(now, "now")
        if last_automated_data_interval is not None or restriction.earliest is None:
            return None
        if restriction.latest is not None and restriction.earliest > restriction.latest:
            return None
        return DagRunInfo.exact(restriction.earliest)

"""Airflow 2.10 timetables: when scheduled DAG runs happen and which data interval they cover.

A port of Airflow 2.10's ``airflow/timetables/{base,simple,interval,_cron}.py`` (cron and ``timedelta``
schedules; the base types and the trivial timetables are in :mod:`kubedag.core.timetable_base`, re-exported
here) and ``airflow/utils/dates.cron_presets``. pendulum is replaced by ``zoneinfo`` (``_make_aware``
reproduces pendulum's ``Timezone.convert``), and the clock is never read: where Airflow
calls ``DateTime.utcnow()`` a ``now`` argument is used. Every datetime accepted must be
timezone-aware (naive -> ``ValueError``); every datetime returned is aware and in UTC.
"""

from __future__ import annotations

import copy
import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kubedag.core.durations import parse_duration
from kubedag.core.timetable_base import (  # noqa: F401 - re-exported: the base types every caller imports from here
    UTC, DagRunInfo, DataInterval, NullTimetable, OnceTimetable, Timetable, TimeRestriction, _utc,
)

#: ``airflow.utils.dates.cron_presets`` (Airflow 2.10); ``@weekly`` is Sunday 00:00.
PRESETS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}
RUN_TYPES = ("scheduled", "manual", "backfill")
#: Upper bound on runs produced by one call of ``due_runs``/``backfill_infos``.
MAX_RUNS = 100_000


def _make_aware(naive: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Airflow's ``timezone.make_aware`` (which forces ``fold=1``) + pendulum ``Timezone.convert``, in UTC.

    Ambiguous wall time (DST fall-back) -> the *second* occurrence. Non-existent
    wall time (spring-forward gap) -> shifted forward by the gap (Berlin 02:30 ->
    03:30 CEST).
    """
    naive = naive.replace(fold=1)
    before, after = tz.utcoffset(naive.replace(fold=0)), tz.utcoffset(naive)
    if after > before:  # skipped time: pendulum adds the gap for fold=1
        naive = naive + (after - before)
    return naive.replace(tzinfo=tz).astimezone(UTC)


class _DataIntervalTimetable:
    """Timetables of periodic data intervals (Airflow 2.10's ``interval._DataIntervalTimetable``): a subclass
    gives ``_get_next``/``_get_prev`` (the schedule's times after/before an instant), ``_align_to_next``/
    ``_align_to_prev`` and ``_skip_to_latest`` (the bound of a run without catchup)."""

    periodic = True
    can_be_scheduled = True

    def _get_next(self, current: dt.datetime) -> dt.datetime:
        raise NotImplementedError

    def _get_prev(self, current: dt.datetime) -> dt.datetime:
        raise NotImplementedError

    def _align_to_next(self, current: dt.datetime) -> dt.datetime:
        raise NotImplementedError

    def _align_to_prev(self, current: dt.datetime) -> dt.datetime:
        raise NotImplementedError

    def _skip_to_latest(self, earliest: dt.datetime | None, now: dt.datetime) -> dt.datetime:
        raise NotImplementedError

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction, now: dt.datetime
    ) -> DagRunInfo | None:
        """Next run, as ``_DataIntervalTimetable.next_dagrun_info`` (Airflow 2.10).

        First run (``last_automated_data_interval`` None): starts at ``start_date``
        aligned up to a schedule time (catchup) or at ``_skip_to_latest(now)`` (no
        catchup); None without a start date when catching up. Later runs start at
        the previous end (aligned down), but never before that bound. No run if its
        *start* is after ``restriction.latest`` (``start > latest``; inclusive end).
        ``now``: aware datetime; naive raises ``ValueError``.
        """
        now = _utc(now, "now")
        earliest = restriction.earliest
        if not restriction.catchup:
            earliest = self._skip_to_latest(earliest, now)
        elif earliest is not None:
            earliest = self._align_to_next(earliest)
        if last_automated_data_interval is None:
            if earliest is None:
                return None
            start = earliest
        else:
            start = self._align_to_prev(last_automated_data_interval.end)
            if earliest is not None:
                start = max(start, earliest)
        if restriction.latest is not None and start > restriction.latest:
            return None
        return DagRunInfo.interval(start, self._get_next(start))



class CronDataIntervalTimetable(_DataIntervalTimetable):
    """``schedule="<cron>"`` (Airflow's ``interval.CronDataIntervalTimetable`` + ``_cron.CronMixin``).

    ``cron``: a 5-field expression or a key of ``PRESETS``; ``timezone``: IANA name in
    which the cron is evaluated. Raises ``ValueError`` for either being invalid.
    A run covers ``[start, end)`` between consecutive cron fire times; its logical
    date is ``start`` and it runs after ``end``.
    """

    def __init__(self, cron: str, timezone: str = "UTC") -> None:
        validate_timezone(timezone)
        validate_schedule(cron)
        if cron is None or cron == "@once":
            raise ValueError(f"{cron!r} is not a cron schedule; use timetable_for()")
        self.expression: str = PRESETS.get(cron, cron)
        self.timezone: str = timezone
        self._tz = ZoneInfo(timezone)
        # One parsed croniter, never moved itself: each step re-points a shallow copy of it with set_current()
        # (as cheap as re-pointing it, 3x cheaper than re-parsing). croniter's calculation only rebinds the
        # copy's own attributes (cur, dst_start_time, ...) and works on copies of the parsed fields, so threads
        # stepping at once never share a cursor: no lock is needed. Results are memoised (pure functions); the
        # memo is a dict whose get and set are atomic, and a race at worst computes the same value twice.
        from croniter import croniter  # imported on first use: manual-only DAGs never need it

        self._cron = croniter(self.expression)
        self._memo: dict[tuple[bool, dt.datetime], dt.datetime] = {}
        # _cron._covers_every_hour: croniter normalises a full hour field to "*".
        self._every_hour = self._cron.expanded[1] == ["*"]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CronDataIntervalTimetable) and repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        return f"CronDataIntervalTimetable({self.expression!r}, {self.timezone!r})"

    @property
    def summary(self) -> str:
        """The expanded cron expression, e.g. ``"0 0 * * *"`` for ``@daily`` (as Airflow's ``CronMixin.summary``)."""
        return self.expression

    # --- CronMixin (airflow/timetables/_cron.py) ------------------------------
    def _naive(self, current: dt.datetime) -> dt.datetime:
        # timezone.make_naive: local wall clock, fold dropped.
        return current.astimezone(self._tz).replace(tzinfo=None, fold=0)

    def _step(self, current: dt.datetime, forward: bool) -> dt.datetime:
        """``CronMixin._get_next`` (forward) / ``_get_prev``, memoised."""
        current = current.astimezone(UTC)
        key = (forward, current)
        if key in self._memo:
            return self._memo[key]
        naive = self._naive(current)
        cron = copy.copy(self._cron)
        cron.set_current(naive, force=True)
        scheduled = cron.get_next(dt.datetime) if forward else cron.get_prev(dt.datetime)
        if not self._every_hour:
            result = _make_aware(scheduled, self._tz)
        else:  # "fold hour" fix: apply the wall-clock delta to the absolute instant
            result = current + (scheduled - naive)
        if len(self._memo) > 4096:
            self._memo.clear()
        self._memo[key] = result
        return result

    def _get_next(self, current: dt.datetime) -> dt.datetime:
        """First fire time strictly after ``current`` (``CronMixin._get_next``)."""
        return self._step(current, True)

    def _get_prev(self, current: dt.datetime) -> dt.datetime:
        """Last fire time before ``current`` in wall-clock terms (``CronMixin._get_prev``).

        Around DST this may equal or even follow ``current`` (see tests).
        """
        return self._step(current, False)

    def _align_to_next(self, current: dt.datetime) -> dt.datetime:
        """``current`` if it is a fire time, else the next one (``CronMixin._align_to_next``)."""
        next_time = self._get_next(current)
        return next_time if self._get_prev(next_time) != current else current

    def _align_to_prev(self, current: dt.datetime) -> dt.datetime:
        """``current`` if it is a fire time, else the previous one (``CronMixin._align_to_prev``)."""
        prev_time = self._get_prev(current)
        return prev_time if self._get_next(prev_time) != current else current

    # --- CronDataIntervalTimetable / _DataIntervalTimetable (interval.py) ------
    def _skip_to_latest(self, earliest: dt.datetime | None, now: dt.datetime) -> dt.datetime:
        """Start of the latest *complete* interval at ``now``, not before aligned ``earliest``.

        As ``CronDataIntervalTimetable._skip_to_latest`` with ``DateTime.utcnow()``
        replaced by ``now``: if ``now`` is on a boundary the interval ending at ``now``
        is chosen, otherwise the one ending at the last boundary before ``now``.
        """
        last_start = self._get_prev(now)
        next_start = self._get_next(last_start)
        if next_start == now:  # now is on an interval boundary
            new_start = last_start
        elif next_start > now:  # now is between boundaries
            new_start = self._get_prev(last_start)
        else:  # pragma: no cover - Airflow raises the same
            raise AssertionError("next schedule shouldn't be earlier")
        if earliest is None:
            return new_start
        return max(new_start, self._align_to_next(earliest))

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        """Interval of a manual run: the last complete period before ``run_after``.

        As ``CronDataIntervalTimetable.infer_manual_data_interval``:
        ``end = _align_to_prev(run_after)``, ``start = _get_prev(end)``; e.g. ``@daily``
        triggered at 01:00 on the 25th covers [24th 00:00, 25th 00:00). Naive -> ``ValueError``.
        """
        end = self._align_to_prev(_utc(run_after, "run_after"))
        return DataInterval(self._get_prev(end), end)


class DeltaDataIntervalTimetable(_DataIntervalTimetable):
    """``schedule: 10m`` (any duration): Airflow 2.10's ``interval.DeltaDataIntervalTimetable`` for a
    ``timedelta`` schedule, "every ``delta`` from ``start_date``".

    ``delta``: a positive :class:`~datetime.timedelta` (zero or negative -> ``ValueError``, as Airflow's
    ``validate``). A run covers ``[start, start + delta)``, its logical date is ``start`` and it runs after
    the interval ends. Intervals are not aligned to anything but ``start_date`` (``_align_to_next`` and
    ``_align_to_prev`` return their argument), so the timezone plays no part.
    """

    def __init__(self, delta: dt.timedelta) -> None:
        if not isinstance(delta, dt.timedelta) or delta <= dt.timedelta(0):
            raise ValueError(f"schedule interval must be positive, not {delta!r}")
        self.delta = delta

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DeltaDataIntervalTimetable) and self.delta == other.delta

    def __hash__(self) -> int:
        return hash(self.delta)

    def __repr__(self) -> str:
        return f"DeltaDataIntervalTimetable({self.delta!r})"

    @property
    def summary(self) -> str:
        """``str(delta)``, e.g. ``"0:10:00"`` for ``10m`` (as Airflow's ``summary``)."""
        return str(self.delta)

    def _get_next(self, current: dt.datetime) -> dt.datetime:
        return current.astimezone(UTC) + self.delta

    def _get_prev(self, current: dt.datetime) -> dt.datetime:
        return current.astimezone(UTC) - self.delta

    def _align_to_next(self, current: dt.datetime) -> dt.datetime:
        return current

    def _align_to_prev(self, current: dt.datetime) -> dt.datetime:
        return current

    def _skip_to_latest(self, earliest: dt.datetime | None, now: dt.datetime) -> dt.datetime:
        """As Airflow 2.10's ``DeltaDataIntervalTimetable._skip_to_latest`` with ``utcnow()`` replaced by ``now``:
        ``now`` rounded down to a multiple of ``delta`` since the Unix epoch (``_round``), one interval back,
        not before ``earliest`` (unaligned)."""
        seconds = now.timestamp()
        rounded = dt.datetime.fromtimestamp(seconds - seconds % self.delta.total_seconds(), UTC)
        new_start = self._get_prev(rounded)
        return new_start if earliest is None else max(new_start, earliest)

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        """``[run_after - delta, run_after)``, as Airflow's ``DeltaDataIntervalTimetable.infer_manual_data_interval``.
        Naive -> ``ValueError``."""
        run_after = _utc(run_after, "run_after")
        return DataInterval(self._get_prev(run_after), run_after)


def _schedule_delta(schedule: str) -> dt.timedelta | None:
    """The interval of a duration schedule (``10m``, ``1h30m``, ``2d``), or None when ``schedule`` is not one."""
    if schedule.startswith("@") or len(schedule.split()) != 1:
        return None
    try:
        return parse_duration(schedule)
    except ValueError:
        return None


def validate_timezone(name: str) -> None:
    """Raise ``ValueError("unknown timezone 'X'")`` unless ``name`` is an IANA zone (e.g. "Europe/Berlin")."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"unknown timezone {name!r}")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown timezone {name!r}") from exc


def validate_schedule(schedule: str | None) -> None:
    """Check a DAG ``schedule``: None, ``"@once"``, a ``PRESETS`` key, a 5-field cron, or a positive duration
    (``10m``, ``1h30m``: see :mod:`kubedag.core.durations`).

    Raises ``ValueError`` naming the problem: ``unknown schedule preset '@x'``,
    ``invalid cron expression '61 * * * *': <croniter's reason>`` (also for
    expressions that can never fire, e.g. ``0 0 30 2 *``, which Airflow 2.10 would
    only discover at scheduling time).
    """
    if schedule is None or schedule == "@once":
        return
    if not isinstance(schedule, str):
        raise ValueError(f"schedule must be a string or null, got {type(schedule).__name__}")
    if schedule.startswith("@"):
        if schedule not in PRESETS:
            known = ", ".join(["@once", *PRESETS])
            raise ValueError(f"unknown schedule preset {schedule!r}; expected one of {known}")
        return
    delta = _schedule_delta(schedule)
    if delta is not None:
        if delta <= dt.timedelta(0):
            raise ValueError(f"schedule interval must be positive, not {schedule!r}")
        return
    n = len(schedule.split())
    if n == 1:
        raise ValueError(f"invalid schedule {schedule!r}: expected a cron expression (5 fields: minute hour dom "
                         "month dow), a preset such as '@daily', or a duration such as '10m', '1h30m', '2d'")
    if n != 5:
        raise ValueError(f"invalid cron expression {schedule!r}: expected 5 fields (minute hour dom month dow), got {n}")
    try:
        from croniter import CroniterError, croniter

        croniter(schedule, start_time=dt.datetime(2000, 1, 1)).get_next(dt.datetime)
    except (CroniterError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"invalid cron expression {schedule!r}: {exc}") from exc


def timetable_for(schedule: str | None, timezone: str = "UTC") -> Timetable:
    """Timetable for a DAG ``schedule`` as Airflow 2.10's ``create_timetable`` does.

    None -> ``NullTimetable``; ``"@once"`` -> ``OnceTimetable``; a duration -> ``DeltaDataIntervalTimetable``
    (Airflow's ``schedule=timedelta(...)``); a preset or 5-field cron -> ``CronDataIntervalTimetable(schedule,
    timezone)``. Raises ``ValueError`` for an invalid schedule or unknown timezone.
    """
    validate_timezone(timezone)
    validate_schedule(schedule)
    if schedule is None:
        return NullTimetable()
    if schedule == "@once":
        return OnceTimetable()
    delta = _schedule_delta(schedule)
    if delta is not None:
        return DeltaDataIntervalTimetable(delta)
    return CronDataIntervalTimetable(schedule, timezone)


def infer_automated_data_interval(timetable: Timetable, logical_date: dt.datetime) -> DataInterval:
    """The data interval of a scheduled or backfill run known only by its logical date, as Airflow 2.10's
    ``DAG.infer_automated_data_interval``: ``[logical_date, next fire time)`` for a cron schedule,
    ``[logical_date, logical_date + delta)`` for a duration, the instant itself for ``@once`` and null
    schedules. ``logical_date`` aware (naive -> ``ValueError``)."""
    start = _utc(logical_date, "logical_date")
    if isinstance(timetable, _DataIntervalTimetable):
        return DataInterval(start, timetable._get_next(start))
    return DataInterval.exact(start)


def next_logical_date(timetable: Timetable, interval: DataInterval) -> dt.datetime | None:
    """The logical date of the scheduled run after the one covering ``interval``, ignoring ``start_date``,
    ``end_date`` and ``catchup``, as Airflow 2.10's ``DAG.next_dagrun_info(data_interval, restricted=False)``
    (the template context's ``next_ds``); None for ``@once`` and null schedules. UTC-aware."""
    unrestricted = TimeRestriction(None, None, catchup=True)
    info = timetable.next_dagrun_info(last_automated_data_interval=interval, restriction=unrestricted, now=interval.end)
    return None if info is None else info.logical_date


def previous_logical_date(timetable: Timetable, logical_date: dt.datetime) -> dt.datetime | None:
    """The schedule's time before ``logical_date`` (aware), as Airflow 2.10's ``DAG.previous_schedule`` (the
    template context's ``prev_ds``): the previous cron fire time, ``logical_date - delta`` for a duration, None
    for ``@once`` and null schedules. UTC-aware."""
    if isinstance(timetable, _DataIntervalTimetable):
        return timetable._get_prev(_utc(logical_date, "logical_date"))
    return None


def run_id(run_type: str, logical_date: dt.datetime) -> str:
    """Airflow's ``DagRun.generate_run_id``: ``f"{run_type}__{logical_date in UTC .isoformat()}"``.

    ``run_type`` in ``RUN_TYPES``; e.g. ``scheduled__2026-11-01T16:00:00+00:00``.
    Raises ``ValueError`` for another run type or a naive ``logical_date``.
    """
    if run_type not in RUN_TYPES:
        raise ValueError(f"unknown run type {run_type!r}; expected one of {', '.join(RUN_TYPES)}")
    return f"{run_type}__{_utc(logical_date, 'logical_date').isoformat()}"


def _iterate(timetable: Timetable, restriction: TimeRestriction, now: dt.datetime, after, limit: int):
    """Yield successive ``next_dagrun_info`` results feeding each interval back; > ``limit`` -> ValueError."""
    last, count = after, 0
    while True:
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction, now=now)
        if info is None or (last is not None and info.data_interval.end <= last.end):
            return  # schedule ended, or it stopped advancing: never loop forever
        count += 1
        if count > limit:
            raise ValueError(f"more than {limit} runs; narrow start_date/end_date or set catchup=false")
        yield info
        last = info.data_interval


def due_runs(
    timetable: Timetable, restriction: TimeRestriction, now: dt.datetime, *, limit: int = MAX_RUNS
) -> list[DagRunInfo]:
    """Runs the scheduler creates, oldest first, for a DAG first deployed at ``now`` with no runs.

    Iterates ``next_dagrun_info`` from no previous run while ``run_after <= now``
    (Airflow's ``DagModel.next_dagrun_create_after <= now``). With ``catchup=False``
    that is at most the latest complete interval. ``now`` aware (naive ->
    ``ValueError``); raises ``ValueError`` if more than ``limit`` runs are due.
    """
    now = _utc(now, "now")
    runs = []
    for info in _iterate(timetable, restriction, now, None, limit):
        if info.run_after > now:
            break
        runs.append(info)
    return runs


def upcoming_runs(
    timetable: Timetable, restriction: TimeRestriction, now: dt.datetime, after: DataInterval | None, count: int
) -> list[DagRunInfo]:
    """The next ``count`` (>= 0) runs following the run whose interval is ``after`` (None: from the first).

    ``now`` (aware) matters for ``catchup=False``. Fewer are returned if the
    schedule ends (``end_date``, ``@once``, null schedule).
    """
    now = _utc(now, "now")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    runs: list[DagRunInfo] = []
    for info in _iterate(timetable, restriction, now, after, count) if count else ():
        runs.append(info)
        if len(runs) == count:
            break
    return runs


def backfill_infos(
    timetable: Timetable, start: dt.datetime, end: dt.datetime, *, limit: int = MAX_RUNS
) -> list[DagRunInfo]:
    """Runs of ``airflow dags backfill -s START -e END``: ``DAG.iter_dagrun_infos_between(start, end, align=True)``.

    Uses ``TimeRestriction(start, end, catchup=True)``: the first logical date is
    ``start`` aligned up to a fire time; runs follow while their *logical date*
    is ``<= end`` (inclusive; a run's interval may extend past ``end``). ``@once``
    gives one run at ``start``; a null schedule none. Aware datetimes only
    (naive -> ``ValueError``); more than ``limit`` runs -> ``ValueError``.
    """
    restriction = TimeRestriction(_utc(start, "start"), _utc(end, "end"), catchup=True)
    # "now" is irrelevant when catchup=True; pass end so the argument is well-formed.
    return list(_iterate(timetable, restriction, restriction.latest, None, limit))


def iso_utc(value: dt.datetime | None) -> str | None:
    """An aware datetime as ISO 8601 in UTC (``2026-11-01T16:00:00+00:00``), the form of every instant in
    kubedag's JSON output; None stays None."""
    return None if value is None else value.astimezone(UTC).isoformat()


def _run_dict(info: DagRunInfo) -> dict[str, str]:
    start, end = info.data_interval.start.isoformat(), info.data_interval.end.isoformat()
    return {"run_id": run_id("scheduled", info.logical_date), "logical_date": start,
            "data_interval_start": start, "data_interval_end": end, "run_after": info.run_after.isoformat()}


def schedule_report(timetable: Timetable, restriction: TimeRestriction, now: dt.datetime, count: int = 5) -> dict:
    """JSON-ready schedule summary (an external contract).

    Returns ``{"due": [RUN...], "upcoming": [RUN...], "manual": {...} | None}``:
    ``due`` = ``due_runs``; ``upcoming`` = the next ``count`` runs after the last due
    one; ``manual`` = ``{"data_interval_start", "data_interval_end"}`` of
    ``infer_manual_data_interval(run_after=now)`` for cron and duration timetables, None for
    ``@once`` and null schedules. RUN = ``{"run_id", "logical_date",
    "data_interval_start", "data_interval_end", "run_after"}``; run ids are of type
    ``scheduled``; all times are UTC ISO-8601 strings (``+00:00``).
    """
    now = _utc(now, "now")
    due = due_runs(timetable, restriction, now)
    upcoming = upcoming_runs(timetable, restriction, now, due[-1].data_interval if due else None, count)
    manual = None
    if isinstance(timetable, _DataIntervalTimetable):
        interval = timetable.infer_manual_data_interval(run_after=now)
        manual = {"data_interval_start": interval.start.isoformat(), "data_interval_end": interval.end.isoformat()}
    return {"due": [_run_dict(i) for i in due], "upcoming": [_run_dict(i) for i in upcoming], "manual": manual}

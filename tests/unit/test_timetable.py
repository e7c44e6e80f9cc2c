"""Tests for kubedag.core.timetable against Airflow 2.10's scheduling semantics.

Every expected datetime below was worked out by hand from Airflow 2.10's source
(airflow/timetables/interval.py, _cron.py, simple.py, models/dag.py) and the tz
database, never computed with the code under test. 2026 DST dates used:
Europe/Berlin springs forward 29 Mar 02:00 CET -> 03:00 CEST and falls back
25 Oct 03:00 CEST -> 02:00 CET; America/New_York springs forward 8 Mar
02:00 EST -> 03:00 EDT and falls back 1 Nov 02:00 EDT -> 01:00 EST.
1 Jan 2026 is a Thursday.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from kubedag.core.timetable import (
    PRESETS,
    CronDataIntervalTimetable,
    DagRunInfo,
    DataInterval,
    NullTimetable,
    OnceTimetable,
    Timetable,
    TimeRestriction,
    backfill_infos,
    due_runs,
    run_id,
    schedule_report,
    timetable_for,
    upcoming_runs,
    validate_schedule,
    validate_timezone,
)

UTC = dt.timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def u(*args: int) -> dt.datetime:
    """An aware UTC datetime."""
    return dt.datetime(*args, tzinfo=UTC)


def intervals(infos: list[DagRunInfo]) -> list[tuple[dt.datetime, dt.datetime]]:
    return [(i.data_interval.start, i.data_interval.end) for i in infos]


def catchup(start: dt.datetime | None, end: dt.datetime | None = None) -> TimeRestriction:
    return TimeRestriction(earliest=start, latest=end, catchup=True)


def no_catchup(start: dt.datetime | None, end: dt.datetime | None = None) -> TimeRestriction:
    return TimeRestriction(earliest=start, latest=end, catchup=False)


FAR_PAST = u(2000, 1, 1)


# --- cron data intervals ------------------------------------------------------------


def test_cron_run_covers_interval_logical_date_is_start_run_after_is_end():
    tt = timetable_for("0 0 * * *")
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=catchup(u(2026, 1, 1)), now=FAR_PAST)
    assert info == DagRunInfo(u(2026, 1, 2), DataInterval(u(2026, 1, 1), u(2026, 1, 2)))
    assert info.logical_date == u(2026, 1, 1)
    assert info.run_after == u(2026, 1, 2)


def test_catchup_creates_every_complete_interval_oldest_first():
    runs = due_runs(timetable_for("@daily"), catchup(u(2026, 1, 1)), now=u(2026, 1, 3, 12))
    assert intervals(runs) == [(u(2026, 1, 1), u(2026, 1, 2)), (u(2026, 1, 2), u(2026, 1, 3))]
    assert [r.run_after for r in runs] == [u(2026, 1, 2), u(2026, 1, 3)]


def test_run_is_due_exactly_when_run_after_equals_now():
    # The scheduler creates a run once next_dagrun_create_after <= now.
    runs = due_runs(timetable_for("@daily"), catchup(u(2026, 1, 1)), now=u(2026, 1, 3))
    assert [r.logical_date for r in runs] == [u(2026, 1, 1), u(2026, 1, 2)]
    runs = due_runs(timetable_for("@daily"), catchup(u(2026, 1, 1)), now=u(2026, 1, 2, 23, 59, 59))
    assert [r.logical_date for r in runs] == [u(2026, 1, 1)]


def test_start_date_off_boundary_is_aligned_to_next_fire_time():
    # _align_to_next: 10:30 is not a @daily fire time -> the first interval starts at the next midnight.
    runs = upcoming_runs(timetable_for("@daily"), catchup(u(2026, 1, 1, 10, 30)), FAR_PAST, None, 2)
    assert intervals(runs) == [(u(2026, 1, 2), u(2026, 1, 3)), (u(2026, 1, 3), u(2026, 1, 4))]


def test_start_date_on_boundary_is_kept():
    runs = upcoming_runs(timetable_for("0 6 * * *"), catchup(u(2026, 1, 1, 6)), FAR_PAST, None, 1)
    assert intervals(runs) == [(u(2026, 1, 1, 6), u(2026, 1, 2, 6))]


def test_catchup_true_without_start_date_never_schedules():
    assert due_runs(timetable_for("@daily"), catchup(None), now=u(2026, 1, 10)) == []


def test_start_date_in_non_utc_zone_is_the_same_instant():
    # 2026-01-01 01:00 Berlin (CET, +01:00) == 2026-01-01 00:00 UTC, a @daily (UTC) boundary.
    start = dt.datetime(2026, 1, 1, 1, tzinfo=BERLIN)
    runs = upcoming_runs(timetable_for("@daily"), catchup(start), FAR_PAST, None, 1)
    assert intervals(runs) == [(u(2026, 1, 1), u(2026, 1, 2))]


# --- catchup=False: _skip_to_latest -------------------------------------------------


def test_no_catchup_between_boundaries_runs_only_latest_complete_interval():
    # now 15:00 on the 10th: last_start = 10th 00:00, next_start = 11th > now -> new_start = 9th.
    tt = timetable_for("@daily")
    restriction = no_catchup(u(2026, 1, 1))
    due = due_runs(tt, restriction, now=u(2026, 1, 10, 15))
    assert intervals(due) == [(u(2026, 1, 9), u(2026, 1, 10))]
    upcoming = upcoming_runs(tt, restriction, u(2026, 1, 10, 15), due[-1].data_interval, 2)
    assert intervals(upcoming) == [(u(2026, 1, 10), u(2026, 1, 11)), (u(2026, 1, 11), u(2026, 1, 12))]


def test_no_catchup_on_boundary_runs_interval_ending_now():
    # now exactly on a boundary: next_start == now -> new_start = last_start (9th).
    due = due_runs(timetable_for("@daily"), no_catchup(u(2026, 1, 1)), now=u(2026, 1, 10))
    assert intervals(due) == [(u(2026, 1, 9), u(2026, 1, 10))]


def test_no_catchup_never_starts_before_aligned_start_date():
    # Latest complete interval starts on the 9th, but start_date 10th 06:00 aligns to the 11th.
    tt = timetable_for("@daily")
    restriction = no_catchup(u(2026, 1, 10, 6))
    assert due_runs(tt, restriction, now=u(2026, 1, 10, 15)) == []
    assert intervals(upcoming_runs(tt, restriction, u(2026, 1, 10, 15), None, 1)) == [
        (u(2026, 1, 11), u(2026, 1, 12))
    ]


def test_no_catchup_without_start_date_still_schedules_latest():
    # Airflow's _skip_to_latest(None) returns the latest interval start instead of None.
    due = due_runs(timetable_for("@hourly"), no_catchup(None), now=u(2026, 1, 10, 15, 20))
    assert intervals(due) == [(u(2026, 1, 10, 14), u(2026, 1, 10, 15))]


def test_no_catchup_later_run_after_a_gap_skips_missed_intervals():
    # Last run covered 1st-2nd; at now = 10th 15:00 the next run starts at max(2nd, 9th) = 9th.
    tt = timetable_for("@daily")
    info = tt.next_dagrun_info(
        last_automated_data_interval=DataInterval(u(2026, 1, 1), u(2026, 1, 2)),
        restriction=no_catchup(u(2026, 1, 1)),
        now=u(2026, 1, 10, 15),
    )
    assert (info.data_interval.start, info.data_interval.end) == (u(2026, 1, 9), u(2026, 1, 10))


# --- end_date -----------------------------------------------------------------------


def test_end_date_compares_interval_start_inclusively():
    # No run when start > latest; a run *starting* at end_date is still created,
    # even though its interval (3rd -> 4th) extends past end_date.
    tt = timetable_for("@daily")
    due = due_runs(tt, catchup(u(2026, 1, 1), u(2026, 1, 3)), now=u(2026, 2, 1))
    assert intervals(due) == [
        (u(2026, 1, 1), u(2026, 1, 2)),
        (u(2026, 1, 2), u(2026, 1, 3)),
        (u(2026, 1, 3), u(2026, 1, 4)),
    ]
    due = due_runs(tt, catchup(u(2026, 1, 1), u(2026, 1, 2, 12)), now=u(2026, 2, 1))
    assert [r.logical_date for r in due] == [u(2026, 1, 1), u(2026, 1, 2)]
    assert upcoming_runs(tt, catchup(u(2026, 1, 1), u(2026, 1, 2, 12)), u(2026, 2, 1), due[-1].data_interval, 3) == []


def test_schedule_change_realigns_previous_interval_end():
    # A previous run's end (12:00) is not a @daily fire time: _align_to_prev moves it to
    # 00:00 of the same day, so the new interval re-covers the morning.
    info = timetable_for("@daily").next_dagrun_info(
        last_automated_data_interval=DataInterval(u(2026, 1, 1, 11), u(2026, 1, 1, 12)),
        restriction=catchup(u(2025, 1, 1)),
        now=FAR_PAST,
    )
    assert (info.data_interval.start, info.data_interval.end) == (u(2026, 1, 1), u(2026, 1, 2))


# --- presets ------------------------------------------------------------------------


def test_presets_match_airflow_cron_presets():
    assert PRESETS == {
        "@hourly": "0 * * * *",
        "@daily": "0 0 * * *",
        "@weekly": "0 0 * * 0",
        "@monthly": "0 0 1 * *",
        "@quarterly": "0 0 1 */3 *",
        "@yearly": "0 0 1 1 *",
    }


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("@hourly", [(u(2026, 1, 1, 0), u(2026, 1, 1, 1)), (u(2026, 1, 1, 1), u(2026, 1, 1, 2))]),
        ("@daily", [(u(2026, 1, 1), u(2026, 1, 2)), (u(2026, 1, 2), u(2026, 1, 3))]),
        # Thursday 1 Jan aligns to Sunday 4 Jan 00:00.
        ("@weekly", [(u(2026, 1, 4), u(2026, 1, 11)), (u(2026, 1, 11), u(2026, 1, 18))]),
        ("@monthly", [(u(2026, 1, 1), u(2026, 2, 1)), (u(2026, 2, 1), u(2026, 3, 1))]),
        ("@quarterly", [(u(2026, 1, 1), u(2026, 4, 1)), (u(2026, 4, 1), u(2026, 7, 1))]),
        ("@yearly", [(u(2026, 1, 1), u(2027, 1, 1)), (u(2027, 1, 1), u(2028, 1, 1))]),
    ],
)
def test_preset_intervals(preset, expected):
    tt = timetable_for(preset)
    assert tt.summary == PRESETS[preset]  # Airflow's summary shows the expanded expression
    assert intervals(upcoming_runs(tt, catchup(u(2026, 1, 1)), FAR_PAST, None, 2)) == expected


def test_daily_in_berlin_fires_at_local_midnight():
    # 00:00 CET = 23:00 UTC the previous day (winter); 00:00 CEST = 22:00 UTC (summer).
    tt = timetable_for("@daily", "Europe/Berlin")
    runs = upcoming_runs(tt, catchup(u(2026, 1, 1)), FAR_PAST, None, 1)
    assert intervals(runs) == [(u(2026, 1, 1, 23), u(2026, 1, 2, 23))]
    runs = upcoming_runs(tt, catchup(u(2026, 7, 1)), FAR_PAST, None, 1)
    assert intervals(runs) == [(u(2026, 7, 1, 22), u(2026, 7, 2, 22))]


# --- DST ----------------------------------------------------------------------------
# Airflow's CronMixin evaluates the cron on naive local wall-clock time, then:
#  * for crons whose hour field is not "*" (_covers_every_hour False) it localises the
#    naive result with make_aware(fold=1) + pendulum convert: an ambiguous time means
#    its SECOND occurrence, a non-existent time is shifted forward by the gap;
#  * for crons firing every hour it adds the naive wall-clock delta to the absolute
#    current instant ("fold hour" fix), so hourly intervals stay 1 h long in UTC.


def test_dst_daily_0200_new_york_spring_forward_shifts_to_0300_edt():
    # Pins make_aware's gap rule: 8 Mar 02:00 does not exist -> 03:00 EDT = 07:00 UTC.
    tt = timetable_for("0 2 * * *", "America/New_York")
    runs = upcoming_runs(tt, catchup(u(2026, 3, 6, 7)), FAR_PAST, None, 4)
    assert intervals(runs) == [
        (u(2026, 3, 6, 7), u(2026, 3, 7, 7)),  # 02:00 EST -> 02:00 EST
        (u(2026, 3, 7, 7), u(2026, 3, 8, 7)),  # 02:00 EST -> 03:00 EDT (24 h)
        (u(2026, 3, 8, 7), u(2026, 3, 9, 6)),  # 03:00 EDT -> 02:00 EDT (23 h)
        (u(2026, 3, 9, 6), u(2026, 3, 10, 6)),
    ]


def test_dst_daily_0200_new_york_fall_back_gives_25h_interval():
    # 1 Nov 02:00 EST is unambiguous (the repeated hour is 01:00-02:00): 07:00 UTC.
    tt = timetable_for("0 2 * * *", "America/New_York")
    runs = upcoming_runs(tt, catchup(u(2026, 10, 31, 6)), FAR_PAST, None, 2)
    assert intervals(runs) == [(u(2026, 10, 31, 6), u(2026, 11, 1, 7)), (u(2026, 11, 1, 7), u(2026, 11, 2, 7))]


def test_dst_daily_0130_new_york_fall_back_uses_second_occurrence():
    # Pins make_aware(fold=1): 1 Nov 01:30 happens twice; Airflow picks 01:30 EST (06:30 UTC),
    # not 01:30 EDT (05:30 UTC).
    tt = timetable_for("30 1 * * *", "America/New_York")
    runs = upcoming_runs(tt, catchup(u(2026, 10, 31, 5, 30)), FAR_PAST, None, 2)
    assert intervals(runs) == [
        (u(2026, 10, 31, 5, 30), u(2026, 11, 1, 6, 30)),
        (u(2026, 11, 1, 6, 30), u(2026, 11, 2, 6, 30)),
    ]


def test_dst_daily_0130_new_york_spring_forward_is_unaffected():
    # 01:30 exists on 8 Mar (before the 02:00 jump): 01:30 EST = 06:30 UTC, then 01:30 EDT = 05:30 UTC.
    tt = timetable_for("30 1 * * *", "America/New_York")
    runs = upcoming_runs(tt, catchup(u(2026, 3, 7, 6, 30)), FAR_PAST, None, 2)
    assert intervals(runs) == [(u(2026, 3, 7, 6, 30), u(2026, 3, 8, 6, 30)), (u(2026, 3, 8, 6, 30), u(2026, 3, 9, 5, 30))]


def test_dst_daily_0200_berlin_both_transitions():
    # Spring: 29 Mar 02:00 does not exist -> 03:00 CEST = 01:00 UTC.
    # Fall: 25 Oct 02:00 is ambiguous -> second occurrence 02:00 CET = 01:00 UTC.
    tt = timetable_for("0 2 * * *", "Europe/Berlin")
    spring = upcoming_runs(tt, catchup(u(2026, 3, 27, 1)), FAR_PAST, None, 3)
    assert intervals(spring) == [
        (u(2026, 3, 27, 1), u(2026, 3, 28, 1)),  # 02:00 CET -> 02:00 CET
        (u(2026, 3, 28, 1), u(2026, 3, 29, 1)),  # 02:00 CET -> 03:00 CEST (24 h)
        (u(2026, 3, 29, 1), u(2026, 3, 30, 0)),  # 03:00 CEST -> 02:00 CEST (23 h)
    ]
    fall = upcoming_runs(tt, catchup(u(2026, 10, 24, 0)), FAR_PAST, None, 2)
    assert intervals(fall) == [(u(2026, 10, 24, 0), u(2026, 10, 25, 1)), (u(2026, 10, 25, 1), u(2026, 10, 26, 1))]


def test_dst_hourly_berlin_fall_back_runs_repeated_hour_twice():
    # Pins the _covers_every_hour "fold hour" fix: 02:00 CEST (00:00 UTC) and 02:00 CET
    # (01:00 UTC) are both fire times; every interval is exactly one UTC hour.
    tt = timetable_for("0 * * * *", "Europe/Berlin")
    runs = upcoming_runs(tt, catchup(u(2026, 10, 24, 23)), FAR_PAST, None, 4)
    assert intervals(runs) == [
        (u(2026, 10, 24, 23), u(2026, 10, 25, 0)),  # 01:00 CEST -> 02:00 CEST
        (u(2026, 10, 25, 0), u(2026, 10, 25, 1)),  # 02:00 CEST -> 02:00 CET
        (u(2026, 10, 25, 1), u(2026, 10, 25, 2)),  # 02:00 CET -> 03:00 CET
        (u(2026, 10, 25, 2), u(2026, 10, 25, 3)),
    ]


def test_dst_hourly_berlin_spring_forward_skips_missing_hour():
    # 01:00 CET (00:00 UTC) -> next wall-clock hour 02:00 is 1 h later = 03:00 CEST (01:00 UTC).
    tt = timetable_for("0 * * * *", "Europe/Berlin")
    runs = upcoming_runs(tt, catchup(u(2026, 3, 29, 0)), FAR_PAST, None, 2)
    assert intervals(runs) == [(u(2026, 3, 29, 0), u(2026, 3, 29, 1)), (u(2026, 3, 29, 1), u(2026, 3, 29, 2))]


def test_dst_quirk_start_date_on_eve_of_spring_forward_is_pushed_a_day():
    # start_date 28 Mar 02:00 CET (01:00 UTC) IS a fire time, but _align_to_next checks
    # _get_prev(_get_next(start)) == start, and _get_prev(29 Mar 03:00 CEST) maps naive 02:00
    # back onto 03:00 CEST itself, so Airflow treats start_date as unaligned and the first
    # interval is the one starting on 29 Mar.
    tt = timetable_for("0 2 * * *", "Europe/Berlin")
    runs = upcoming_runs(tt, catchup(u(2026, 3, 28, 1)), FAR_PAST, None, 1)
    assert intervals(runs) == [(u(2026, 3, 29, 1), u(2026, 3, 30, 0))]


def test_dst_quirk_manual_run_on_spring_forward_day_gets_zero_length_interval():
    # _get_prev(07:00 UTC = 03:00 EDT) -> naive 02:00 -> shifted to 03:00 EDT = 07:00 UTC again,
    # so infer_manual_data_interval gives [07:00, 07:00] for a trigger later on 8 Mar.
    tt = timetable_for("0 2 * * *", "America/New_York")
    assert tt.infer_manual_data_interval(run_after=u(2026, 3, 8, 12)) == DataInterval(u(2026, 3, 8, 7), u(2026, 3, 8, 7))


def test_dst_quirk_no_catchup_on_spring_forward_day_skips_previous_interval():
    # Same _get_prev quirk inside _skip_to_latest: at 12:00 UTC on 8 Mar the "latest complete
    # interval" is computed as 8 Mar 07:00 -> 9 Mar 06:00, which is not complete yet, so the
    # 7 Mar -> 8 Mar interval is never run by a DAG deployed then.
    tt = timetable_for("0 2 * * *", "America/New_York")
    restriction = no_catchup(u(2026, 3, 1))
    assert due_runs(tt, restriction, now=u(2026, 3, 8, 12)) == []
    assert intervals(upcoming_runs(tt, restriction, u(2026, 3, 8, 12), None, 1)) == [(u(2026, 3, 8, 7), u(2026, 3, 9, 6))]
    assert intervals(due_runs(tt, restriction, now=u(2026, 3, 9, 12))) == [(u(2026, 3, 8, 7), u(2026, 3, 9, 6))]


def test_dst_quirk_prev_fire_time_can_be_in_the_future_during_repeated_hour():
    # At 05:45 UTC on 1 Nov (01:45 EDT, first pass) the previous wall-clock 01:30 is localised to
    # its second occurrence, 06:30 UTC: the manual interval ends after the trigger time and the
    # no-catchup "latest" interval is 31 Oct 05:30 -> 1 Nov 06:30 (not yet due).
    tt = timetable_for("30 1 * * *", "America/New_York")
    now = u(2026, 11, 1, 5, 45)
    assert tt.infer_manual_data_interval(run_after=now) == DataInterval(u(2026, 10, 31, 5, 30), u(2026, 11, 1, 6, 30))
    restriction = no_catchup(u(2026, 10, 1))
    assert due_runs(tt, restriction, now=now) == []
    assert intervals(upcoming_runs(tt, restriction, now, None, 1)) == [(u(2026, 10, 31, 5, 30), u(2026, 11, 1, 6, 30))]


# --- manual runs --------------------------------------------------------------------


def test_manual_interval_is_last_complete_period():
    tt = timetable_for("@daily")
    # Airflow's own example: triggered 01:00 on the 25th -> [24th 00:00, 25th 00:00).
    assert tt.infer_manual_data_interval(run_after=u(2026, 1, 25, 1)) == DataInterval(u(2026, 1, 24), u(2026, 1, 25))
    # On a boundary, _align_to_prev keeps it: the interval ending exactly then.
    assert tt.infer_manual_data_interval(run_after=u(2026, 1, 25)) == DataInterval(u(2026, 1, 24), u(2026, 1, 25))
    hourly = timetable_for("@hourly")
    assert hourly.infer_manual_data_interval(run_after=u(2026, 1, 25, 10, 30)) == DataInterval(
        u(2026, 1, 25, 9), u(2026, 1, 25, 10)
    )


def test_manual_interval_for_once_and_null_is_exact():
    at = u(2026, 5, 6, 7, 8, 9)
    assert OnceTimetable().infer_manual_data_interval(run_after=at) == DataInterval(at, at)
    assert NullTimetable().infer_manual_data_interval(run_after=at) == DataInterval(at, at)


# --- @once and None -----------------------------------------------------------------


def test_once_runs_once_at_start_date_with_zero_length_interval():
    tt = timetable_for("@once")
    start = u(2026, 1, 5, 10, 17)
    for restriction in (catchup(start), no_catchup(start)):
        due = due_runs(tt, restriction, now=u(2026, 1, 6))
        assert due == [DagRunInfo(start, DataInterval(start, start))]
        assert upcoming_runs(tt, restriction, u(2026, 1, 6), due[0].data_interval, 5) == []
    # Before start_date: not due yet, but it is the one upcoming run.
    assert due_runs(tt, catchup(start), now=u(2026, 1, 1)) == []
    assert intervals(upcoming_runs(tt, catchup(start), u(2026, 1, 1), None, 5)) == [(start, start)]


def test_once_without_start_date_or_after_end_date_never_runs():
    tt = timetable_for("@once")
    assert due_runs(tt, catchup(None), now=u(2026, 1, 6)) == []
    assert due_runs(tt, catchup(u(2026, 1, 5), u(2026, 1, 4)), now=u(2026, 1, 6)) == []
    # end_date == start_date is inclusive.
    assert len(due_runs(tt, catchup(u(2026, 1, 5), u(2026, 1, 5)), now=u(2026, 1, 6))) == 1


def test_null_never_schedules():
    tt = timetable_for(None)
    assert isinstance(tt, NullTimetable)
    assert tt.next_dagrun_info(last_automated_data_interval=None, restriction=catchup(u(2026, 1, 1)), now=u(2026, 2, 1)) is None
    assert due_runs(tt, catchup(u(2026, 1, 1)), now=u(2026, 2, 1)) == []
    assert upcoming_runs(tt, catchup(u(2026, 1, 1)), u(2026, 2, 1), None, 5) == []


def test_timetable_flags_and_summaries():
    null, once, cron = timetable_for(None), timetable_for("@once"), timetable_for("@daily", "Europe/Berlin")
    assert (null.can_be_scheduled, null.periodic, null.summary) == (False, False, "None")
    assert (once.can_be_scheduled, once.periodic, once.summary) == (True, False, "@once")
    assert (cron.can_be_scheduled, cron.periodic, cron.summary) == (True, True, "0 0 * * *")
    assert isinstance(once, OnceTimetable) and isinstance(cron, CronDataIntervalTimetable)
    assert all(isinstance(t, Timetable) for t in (null, once, cron))
    assert cron == CronDataIntervalTimetable("0 0 * * *", "Europe/Berlin")


# --- validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("61 * * * *", r"invalid cron expression '61 \* \* \* \*': "),
        ("0 24 * * *", r"invalid cron expression '0 24 \* \* \*': "),
        ("* * *", r"invalid cron expression '\* \* \*': expected 5 fields"),
        ("* * * * * *", r"invalid cron expression '\* \* \* \* \* \*': expected 5 fields"),
        ("0 0 30 2 *", r"invalid cron expression '0 0 30 2 \*': "),  # 30 Feb never fires
        ("not a cron", r"invalid cron expression 'not a cron'"),
        ("@annually", r"unknown schedule preset '@annually'"),
        ("@continuous", r"unknown schedule preset '@continuous'"),
    ],
)
def test_invalid_schedules_raise_clear_value_error(schedule, message):
    with pytest.raises(ValueError, match=message):
        validate_schedule(schedule)
    with pytest.raises(ValueError, match=message):
        timetable_for(schedule)


@pytest.mark.parametrize("schedule", [None, "@once", *PRESETS, "*/15 9-17 * * MON-FRI", "0 0 L * *"])
def test_valid_schedules_pass(schedule):
    validate_schedule(schedule)


@pytest.mark.parametrize("name", ["Mars/Olympus", "America", "", "../etc/passwd", "utc"])
def test_unknown_timezone_raises(name):
    with pytest.raises(ValueError, match=f"unknown timezone '{name}'"):
        validate_timezone(name)
    with pytest.raises(ValueError, match="unknown timezone"):
        timetable_for("@daily", name)


def test_naive_datetimes_are_rejected():
    naive = dt.datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        TimeRestriction(naive, None, True)
    with pytest.raises(ValueError, match="timezone-aware"):
        DataInterval(naive, u(2026, 1, 2))
    with pytest.raises(ValueError, match="timezone-aware"):
        due_runs(timetable_for("@daily"), catchup(u(2026, 1, 1)), now=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        timetable_for("@daily").infer_manual_data_interval(run_after=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        run_id("manual", naive)


# --- run ids, loop guard ------------------------------------------------------------


def test_run_id_uses_utc_isoformat():
    assert run_id("scheduled", u(2026, 11, 1, 16)) == "scheduled__2026-11-01T16:00:00+00:00"
    # 11:00 EST == 16:00 UTC.
    assert run_id("manual", dt.datetime(2026, 11, 1, 11, tzinfo=NEW_YORK)) == "manual__2026-11-01T16:00:00+00:00"
    assert run_id("backfill", u(2026, 1, 2, 3, 4, 5, 6)) == "backfill__2026-01-02T03:04:05.000006+00:00"
    with pytest.raises(ValueError, match="unknown run type 'asset_triggered'"):
        run_id("asset_triggered", u(2026, 1, 1))


def test_due_runs_loop_guard():
    with pytest.raises(ValueError, match="more than 100 runs"):
        due_runs(timetable_for("* * * * *"), catchup(u(2026, 1, 1)), now=u(2026, 1, 2), limit=100)


def test_upcoming_count_zero_and_negative():
    assert upcoming_runs(timetable_for("@daily"), catchup(u(2026, 1, 1)), FAR_PAST, None, 0) == []
    with pytest.raises(ValueError, match="count must be >= 0"):
        upcoming_runs(timetable_for("@daily"), catchup(u(2026, 1, 1)), FAR_PAST, None, -1)


# --- backfill: DAG.iter_dagrun_infos_between(align=True) ----------------------------


def test_backfill_aligns_start_and_includes_logical_date_equal_to_end():
    runs = backfill_infos(timetable_for("@daily"), u(2026, 1, 1, 10), u(2026, 1, 4))
    assert intervals(runs) == [
        (u(2026, 1, 2), u(2026, 1, 3)),
        (u(2026, 1, 3), u(2026, 1, 4)),
        (u(2026, 1, 4), u(2026, 1, 5)),  # logical date == end is included
    ]
    runs = backfill_infos(timetable_for("@daily"), u(2026, 1, 1), u(2026, 1, 2, 23))
    assert [r.logical_date for r in runs] == [u(2026, 1, 1), u(2026, 1, 2)]


def test_backfill_once_null_and_empty_range():
    assert intervals(backfill_infos(timetable_for("@once"), u(2026, 1, 1, 5), u(2026, 1, 9))) == [
        (u(2026, 1, 1, 5), u(2026, 1, 1, 5))
    ]
    assert backfill_infos(timetable_for(None), u(2026, 1, 1), u(2026, 1, 9)) == []
    assert backfill_infos(timetable_for("@daily"), u(2026, 1, 2, 1), u(2026, 1, 2, 23)) == []


# --- schedule_report contract -------------------------------------------------------


def test_schedule_report_exact_json_for_cron_across_fall_back():
    # 0 11 * * * in New York: 11:00 EDT = 15:00 UTC until 31 Oct, 11:00 EST = 16:00 UTC from 1 Nov.
    # start_date 30 Oct 00:00 UTC (29 Oct 20:00 EDT) aligns to 30 Oct 15:00 UTC.
    tt = timetable_for("0 11 * * *", "America/New_York")
    report = schedule_report(tt, catchup(u(2026, 10, 30)), now=u(2026, 11, 1, 17), count=2)

    def run(start: str, end: str) -> dict[str, str]:
        return {
            "run_id": f"scheduled__{start}",
            "logical_date": start,
            "data_interval_start": start,
            "data_interval_end": end,
            "run_after": end,
        }

    assert report == {
        "due": [
            run("2026-10-30T15:00:00+00:00", "2026-10-31T15:00:00+00:00"),
            run("2026-10-31T15:00:00+00:00", "2026-11-01T16:00:00+00:00"),
        ],
        "upcoming": [
            run("2026-11-01T16:00:00+00:00", "2026-11-02T16:00:00+00:00"),
            run("2026-11-02T16:00:00+00:00", "2026-11-03T16:00:00+00:00"),
        ],
        "manual": {"data_interval_start": "2026-10-31T15:00:00+00:00", "data_interval_end": "2026-11-01T16:00:00+00:00"},
    }
    assert json.loads(json.dumps(report)) == report


def test_schedule_report_for_once_and_null():
    once = schedule_report(timetable_for("@once"), catchup(u(2026, 1, 5)), now=u(2026, 1, 1))
    assert once == {
        "due": [],
        "upcoming": [
            {
                "run_id": "scheduled__2026-01-05T00:00:00+00:00",
                "logical_date": "2026-01-05T00:00:00+00:00",
                "data_interval_start": "2026-01-05T00:00:00+00:00",
                "data_interval_end": "2026-01-05T00:00:00+00:00",
                "run_after": "2026-01-05T00:00:00+00:00",
            }
        ],
        "manual": None,
    }
    assert schedule_report(timetable_for(None), catchup(u(2026, 1, 5)), now=u(2026, 1, 1)) == {
        "due": [],
        "upcoming": [],
        "manual": None,
    }


def test_schedule_report_no_catchup_has_single_due_run():
    report = schedule_report(timetable_for("@hourly"), no_catchup(u(2026, 1, 1)), now=u(2026, 3, 1, 10, 5), count=1)
    assert [r["run_id"] for r in report["due"]] == ["scheduled__2026-03-01T09:00:00+00:00"]
    assert [r["run_id"] for r in report["upcoming"]] == ["scheduled__2026-03-01T10:00:00+00:00"]
    assert report["manual"] == {"data_interval_start": "2026-03-01T09:00:00+00:00", "data_interval_end": "2026-03-01T10:00:00+00:00"}


def test_one_cron_timetable_used_from_many_threads_gives_every_thread_the_sequential_answers():
    # The controller steps a DAG's timetable from worker threads; the timetable holds no lock (the core imports
    # no threading), so each step must work on its own cursor. Expected times worked out by hand: "*/7 * * * *"
    # fires at :00 :07 ... :56 of every hour (Europe/Berlin's offset is whole hours, so UTC minutes are kept).
    import sys
    from concurrent.futures import ThreadPoolExecutor

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, so unsafe sharing would show
    tt = CronDataIntervalTimetable("*/7 * * * *", "Europe/Berlin")
    base = dt.datetime(2026, 1, 1, tzinfo=UTC)
    starts = [base + dt.timedelta(minutes=i, seconds=30) for i in range(3000)]  # distinct (no memo hit), off the fire times

    def expected(start: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        hour = start.replace(minute=0, second=0)
        prev = start.minute // 7 * 7
        nxt = prev + 7
        return (hour + dt.timedelta(minutes=nxt) if nxt < 60 else hour + dt.timedelta(hours=1),
                hour + dt.timedelta(minutes=prev))

    def steps(start: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        return tt._get_next(start), tt._get_prev(start)

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(steps, starts))
    finally:
        sys.setswitchinterval(old)
    assert answers == [expected(s) for s in starts]

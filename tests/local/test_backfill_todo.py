"""What the local scheduler starts next for a backfill, from the runs that exist (Airflow 3's reprocess behaviours:
``none`` leaves existing runs, ``failed`` re-runs failed ones, ``completed`` every finished one; a queued or
running run of someone else is never touched; the backfill's own runs are counted, never redone)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kubedag.app.scheduler_ports import OpenBackfill, RunAtDate
from kubedag.core.spec import parse_dag
from kubedag.local.backfills import backfill_todo

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)
DAG = parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "d"},
                 "spec": {"schedule": "@daily", "startDate": "2026-11-01T00:00:00Z",
                          "tasks": [{"name": "a", "command": ["true"]}]}})
EXISTING = {
    T0: RunAtDate("scheduled__0", "success"),
    T0 + DAY: RunAtDate("scheduled__1", "failed"),
    T0 + 2 * DAY: RunAtDate("manual__2", "running"),
    T0 + 3 * DAY: RunAtDate("backfill__3", "queued", backfill_id=7),
    T0 + 4 * DAY: RunAtDate("backfill__4", "failed", backfill_id=7),
}


def backfill(behavior: str, backwards: bool = False) -> OpenBackfill:
    return OpenBackfill(7, "d", T0, T0 + 6 * DAY, behavior, 2, False, backwards)


@pytest.mark.parametrize(("behavior", "expected"), [
    ("none", [("backfill__2026-11-06T00:00:00+00:00", "create"), ("backfill__2026-11-07T00:00:00+00:00", "create")]),
    ("failed", [("scheduled__1", "reset"), ("backfill__2026-11-06T00:00:00+00:00", "create"),
                ("backfill__2026-11-07T00:00:00+00:00", "create")]),
    ("completed", [("scheduled__0", "reset"), ("scheduled__1", "reset"),
                   ("backfill__2026-11-06T00:00:00+00:00", "create"), ("backfill__2026-11-07T00:00:00+00:00", "create")]),
])
def test_reprocess_behaviours(behavior, expected):
    todo, active = backfill_todo(backfill(behavior), DAG, EXISTING)
    assert [(p.run_id, p.action) for p in todo] == expected
    assert active == 1  # backfill__3 is its own and queued; backfill__4 (its own, failed) is never redone


def test_run_backwards_starts_with_the_newest_date():
    todo, _ = backfill_todo(backfill("failed", backwards=True), DAG, EXISTING)
    assert [p.logical_date for p in todo] == [T0 + 6 * DAY, T0 + 5 * DAY, T0 + DAY]


def test_nothing_left_once_every_run_is_there():
    existing = {T0 + i * DAY: RunAtDate(f"backfill__{i}", "success", 7) for i in range(7)}
    assert backfill_todo(backfill("completed"), DAG, existing) == ([], 0)

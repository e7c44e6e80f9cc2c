"""app.scheduling.decide: which scheduled runs to create, as Airflow's scheduler does."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from kubedag.app.scheduling import decide
from kubedag.core.spec.loader import parse_dag

UTC = timezone.utc


def dag(**spec):
    base = {"schedule": "@daily", "startDate": "2026-01-01", "catchup": True, "maxActiveRuns": 16,
            "tasks": [{"name": "t", "command": ["true"]}]}
    return parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "d"},
                      "spec": {**base, **spec}})


def test_catchup_creates_every_due_interval_oldest_first():
    d = decide(dag(), None, 0, datetime(2026, 1, 4, 1, tzinfo=UTC))
    assert [i.logical_date.day for i in d.create] == [1, 2, 3]
    assert d.last.end == datetime(2026, 1, 4, tzinfo=UTC)
    assert d.next.logical_date == datetime(2026, 1, 4, tzinfo=UTC)
    assert d.wake_at == datetime(2026, 1, 5, tzinfo=UTC) and not d.blocked


def test_without_catchup_only_the_latest_interval_runs():
    d = decide(dag(catchup=False), None, 0, datetime(2026, 1, 4, 1, tzinfo=UTC))
    assert [i.logical_date.day for i in d.create] == [3]


def test_max_active_runs_holds_back_the_rest_and_says_so():
    d = decide(dag(maxActiveRuns=2), None, 1, datetime(2026, 1, 4, 1, tzinfo=UTC))
    assert [i.logical_date.day for i in d.create] == [1]
    assert d.blocked and d.next.logical_date.day == 2 and d.wake_at is None


def test_resuming_after_the_last_interval_creates_nothing_twice():
    first = decide(dag(), None, 0, datetime(2026, 1, 3, 1, tzinfo=UTC))
    again = decide(dag(), first.last, 0, datetime(2026, 1, 3, 2, tzinfo=UTC))
    assert again.create == ()


def test_paused_dag_creates_nothing_and_has_no_next_run():
    d = decide(replace(dag(), paused=True), None, 0, datetime(2026, 1, 4, tzinfo=UTC))
    assert d.create == () and d.next is None and d.wake_at is None


def test_end_date_is_inclusive_and_then_no_next_run():
    d = decide(dag(endDate="2026-01-02"), None, 0, datetime(2026, 2, 1, tzinfo=UTC))
    assert [i.logical_date.day for i in d.create] == [1, 2] and d.next is None


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(dag(), None, 0, datetime(2026, 1, 4))

"""Airflow 2.10's Jinja filters (``airflow.templates.FILTERS``): ``{{ value | ds }}`` and its siblings, for any
datetime a template holds (``data_interval_end``, ``prev_start_date_success``, ``macros.datetime(...)``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any


def ds_filter(value: datetime | None) -> str | None:
    """``{{ value | ds }}``: ``YYYY-MM-DD`` (Airflow's ``airflow.templates.ds_filter``); None stays None."""
    return None if value is None else value.strftime("%Y-%m-%d")


def ds_nodash_filter(value: datetime | None) -> str | None:
    """``{{ value | ds_nodash }}``: ``YYYYMMDD`` (Airflow's ``ds_nodash_filter``); None stays None."""
    return None if value is None else value.strftime("%Y%m%d")


def ts_filter(value: datetime | None) -> str | None:
    """``{{ value | ts }}``: ISO 8601 (Airflow's ``ts_filter``); None stays None."""
    return None if value is None else value.isoformat()


def ts_nodash_filter(value: datetime | None) -> str | None:
    """``{{ value | ts_nodash }}``: ``YYYYMMDDTHHMMSS`` (Airflow's ``ts_nodash_filter``); None stays None."""
    return None if value is None else value.strftime("%Y%m%dT%H%M%S")


def ts_nodash_with_tz_filter(value: datetime | None) -> str | None:
    """``{{ value | ts_nodash_with_tz }}``: ISO 8601 without ``-`` and ``:`` (Airflow's ``ts_nodash_with_tz_filter``)."""
    return None if value is None else value.isoformat().replace("-", "").replace(":", "")


FILTERS: dict[str, Callable[[Any], Any]] = {
    "ds": ds_filter,
    "ds_nodash": ds_nodash_filter,
    "ts": ts_filter,
    "ts_nodash": ts_nodash_filter,
    "ts_nodash_with_tz": ts_nodash_with_tz_filter,
}
"""Airflow 2.10's ``airflow.templates.FILTERS``, the Jinja filters every template may use."""

"""The ``externalTask`` sensor (Airflow 2.10's ``ExternalTaskSensor``, ``airflow/sensors/external_task.py``).

It needs no pod: the controller (locally, the ``python -m kubedag.sensors external`` program) evaluates it
against the metadata DB at every poke::

    dates = external_logical_dates(check, run.logical_date, render)   # which runs of the other DAG
    states = external_states(session, db_dag_id, check.task, dates)    # kubedag.store.external: the DB read
    outcome = external_outcome(check, states)                          # met / not_met / failed / skipped
    message = external_summary(check, dates, states)                   # one line for the log and the status

Everything here is pure; the one DB query, :func:`kubedag.store.external.external_states`, is in the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from kubedag.core.spec.external import external_check_problems
from kubedag.core.states import TaskInstanceState
from kubedag.core.templating import TemplateError

if TYPE_CHECKING:
    from kubedag.core.spec.models import ExternalTaskCheck

__all__ = [
    "ExternalOutcome", "external_check_problems", "external_logical_dates", "external_outcome", "external_summary",
    "parse_logical_date",
]

ExternalOutcome = Literal["met", "not_met", "failed", "skipped"]

_FIELD = "sensor.externalTask"


def parse_logical_date(text: Any, field: str) -> datetime:
    """``text``, an ISO 8601 date (``2026-11-01``, ``2026-11-01T00:00:00Z``), as a UTC-aware datetime; a date
    without an offset is UTC.

    Raises:
        kubedag.core.templating.TemplateError: (a ValueError) naming ``field`` when ``text`` is not such a string.
    """
    if not isinstance(text, str):
        raise TemplateError(field, f"expected an ISO 8601 date string, got {json.dumps(text)}")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TemplateError(
            field, f"{text!r} is not an ISO 8601 date such as 2026-11-01 or 2026-11-01T00:00:00Z"
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def external_logical_dates(
    check: ExternalTaskCheck, run_logical_date: datetime, render: Callable[[str, str], str]
) -> list[datetime]:
    """The logical dates of the other DAG's runs to wait for, as UTC-aware datetimes.

    Airflow's ``ExternalTaskSensor._get_dttm_filter``: ``executionDelta`` set: this run's logical date minus
    it (``if self.execution_delta:``, so ``0s`` is the same date); ``logicalDates`` set (kubedag's template in
    place of ``execution_date_fn``): ``render(check.logical_dates, "sensor.externalTask.logicalDates")`` gives
    one ISO 8601 date (``2026-11-01``, ``2026-11-01T00:00:00Z``, a JSON string of one) or a JSON list of them;
    dates without an offset are UTC; otherwise: this run's logical date. Duplicates are kept (harmless).

    Raises:
        ValueError: ``run_logical_date`` is naive.
        kubedag.core.templating.TemplateError: (a ValueError) naming ``sensor.externalTask.logicalDates`` when the
            rendered text is not a date or a non-empty JSON list of dates (an empty list would wait for nothing:
            Airflow then counts 0 == 0 and succeeds at once, surely not what was meant), or from ``render``.
    """
    if run_logical_date.tzinfo is None or run_logical_date.utcoffset() is None:
        raise ValueError(f"run_logical_date={run_logical_date!r} is naive; pass a timezone-aware (UTC) datetime")
    run_logical_date = run_logical_date.astimezone(timezone.utc)
    if check.execution_delta:
        return [run_logical_date - check.execution_delta]
    if check.logical_dates is None:
        return [run_logical_date]
    field = f"{_FIELD}.logicalDates"
    text = render(check.logical_dates, field).strip()
    if text[:1] in ('[', '"'):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise TemplateError(field, f"rendered {text!r}, which is not valid JSON: {exc}") from None
    else:
        value = text
    if isinstance(value, list):
        if not value:
            raise TemplateError(field, "rendered an empty list: no logical date to wait for")
        return [parse_logical_date(item, f"{field}[{i}]") for i, item in enumerate(value)]
    return [parse_logical_date(value, field)]


def external_outcome(check: ExternalTaskCheck, states: list[str | None]) -> ExternalOutcome:
    """The sensor's verdict given the target's state at each logical date.

    ``states[i]`` is the state of the task instance ``check.task`` (a :class:`~kubedag.core.states.TaskInstanceState`
    value, ``"none"`` for one with no state yet) or, without a task, of the run (a
    :class:`~kubedag.core.states.DagRunState` value) at the i-th date; None when that run or task instance does
    not exist (it counts in no list). Airflow 2.10's ``ExternalTaskSensor.poke``, in its order: any state in
    ``failedStates`` -> ``"failed"`` (Airflow's ``AirflowException``; the caller applies ``softFail``, which
    makes it a skip); any in ``skippedStates`` -> ``"skipped"`` (``AirflowSkipException``); every state in
    ``allowedStates`` -> ``"met"``; else ``"not_met"``.

    Raises:
        ValueError: naming the field, for a problem :func:`external_check_problems` reports, or no states.
    """
    problems = external_check_problems(check)
    if problems:
        raise ValueError("; ".join(problems))
    if not states:
        raise ValueError("states: no logical date to check (pass one state per date)")
    if any(s is not None and s in check.failed_states for s in states):
        return "failed"
    if any(s is not None and s in check.skipped_states for s in states):
        return "skipped"
    if all(s is not None and s in check.allowed_states for s in states):
        return "met"
    return "not_met"


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def external_summary(check: ExternalTaskCheck, dates: list[datetime], states: list[str | None]) -> str:
    """One line saying what the sensor sees, for the log and the status, e.g.
    ``waiting for load-data.load at 2026-11-01T00:00:00Z: no such run or task instance yet`` or
    ``load-data.load at 2026-11-01T00:00:00Z is failed (in failedStates)``.

    Raises:
        ValueError: as :func:`external_outcome`, or ``dates`` and ``states`` differ in length.
    """
    if len(dates) != len(states):
        raise ValueError(f"dates and states differ in length ({len(dates)} != {len(states)})")
    target = f"{check.dag}.{check.task}" if check.task else f"the run of {check.dag}"
    missing = "no such run or task instance yet" if check.task else "no such run yet"
    outcome = external_outcome(check, states)
    pairs = list(zip(dates, states))
    if outcome in ("failed", "skipped"):
        bad = check.failed_states if outcome == "failed" else check.skipped_states
        at, state = next((d, s) for d, s in pairs if s is not None and s in bad)
        return f"{target} at {_iso(at)} is {state} (in {outcome}States)"
    if outcome == "met":
        when = _iso(dates[0]) if len(dates) == 1 else f"all {len(dates)} logical dates"
        return f"{target} at {when} is {', '.join(dict.fromkeys(s or '' for s in states))}"
    waiting = [(d, s) for d, s in pairs if s is None or s not in check.allowed_states]
    at, state = waiting[0]
    more = f" (and {len(waiting) - 1} more logical dates)" if len(waiting) > 1 else ""
    want = " or ".join(check.allowed_states)
    return f"waiting for {target} at {_iso(at)}: {missing if state is None else f'{state} (want {want})'}{more}"

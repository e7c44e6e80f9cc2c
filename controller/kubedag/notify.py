"""Notifications: what to tell the DAG's notifiers (Slack, JSON webhooks) and a sender that tells them.

Two parts in one module:

- Pure (no I/O, no clock): :class:`Notification`, the JSON bodies :func:`payload` and :func:`slack_payload`,
  and the functions deciding what to notify from state transitions: :func:`task_notifications` (Airflow's
  ``on_failure_callback``, ``on_success_callback``, ``on_retry_callback``), :func:`run_notifications` (the
  DAG's ``on_failure_callback`` / ``on_success_callback``) and :func:`sla_misses` / :func:`next_sla_check`
  (Airflow 2's task ``sla`` and the DAG's ``sla_miss_callback``).
- Adapter: :class:`WebhookSender` POSTs the bodies from background threads with retries, never raising
  into or blocking its caller; the caller supplies how a :class:`~kubedag.core.spec.models.Notifier` becomes a
  URL and headers (:func:`static_resolver`, :func:`secret_resolver`), so reading Kubernetes Secrets stays
  in the Kubernetes adapter.

A caller (the local runner, the controller) compares each task instance and run before and after a change,
sends what the pure functions return, and keeps a timer for :func:`next_sla_check`::

    for notifier, n in task_notifications(dag, run, before, after, log=lambda: read_log(...)):
        sender.send(notifier, n)

Reasons and log tails may hold secrets: :class:`WebhookSender` passes both through its ``mask`` callable
(e.g. ``kubedag.secrets.Masker.mask``) before anything leaves the process.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, get_args

from kubedag import __version__
from kubedag.core.engine.model import DagRun, TaskInstance
from kubedag.core.engine.plan import format_duration, format_instant
from kubedag.core.spec.dag import DAG
from kubedag.core.spec.models import Notifier
from kubedag.core.states import DagRunState, RunType, TaskInstanceState

log = logging.getLogger("kubedag.notify")

S = TaskInstanceState

Event = Literal["task_failure", "task_success", "task_retry", "dag_failure", "dag_success", "sla_miss"]
EVENTS: tuple[str, ...] = get_args(Event)

LOG_TAIL_LINES = 50
"""At most this many last lines of a try's log go into a notification."""
LOG_TAIL_BYTES = 4096
"""And at most this many bytes (UTF-8) of them."""

SLA_MET_STATES = frozenset({S.SUCCESS, S.SKIPPED})
"""A task instance in one of these states by its deadline met its SLA (Airflow 2's ``manage_slas`` query)."""

SLA_RUN_TYPES = frozenset({RunType.SCHEDULED})
"""Runs whose SLAs are checked. Airflow 2: "Manually-triggered tasks and tasks in event-driven DAGs will not
be checked for an SLA miss" (core-concepts/tasks.rst); backfills cover past intervals, whose deadlines have
passed before they start, and Airflow's ``manage_slas`` only looks at intervals after the latest success."""


# --------------------------------------------------------------------------------------------------
# What a notification says


@dataclass(frozen=True)
class Notification:
    """One thing to tell a notifier; the notifier decides the body's shape (:func:`payload`, :func:`slack_payload`).

    ``event``: one of :data:`EVENTS`. ``task_id``/``try_number``: None for ``dag_failure``/``dag_success``;
    ``try_number`` is the try that ended (Airflow 2.10 numbering, 1 = first), for ``sla_miss`` the current or last
    try (0 = never tried). ``state``: the task instance's or run's state as Airflow spells it. ``reason``: why, for a
    user (``"exit code 1"``, ``"task_failure: leaf task load (failed)"``). ``log_tail``: the end of the try's log
    (see :func:`tail`), None when not known or not relevant. ``logical_date`` is timezone-aware.

    Raises:
        ValueError: for an unknown ``event`` or a naive ``logical_date``.
    """

    event: Event
    dag_id: str
    run_id: str
    logical_date: datetime
    task_id: str | None = None
    try_number: int | None = None
    state: str | None = None
    reason: str | None = None
    log_tail: str | None = None

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"unknown notification event {self.event!r}; expected one of {', '.join(EVENTS)}")
        if self.logical_date.tzinfo is None:
            raise ValueError(f"Notification.logical_date must be timezone-aware, got {self.logical_date!r}")


def tail(text: str | None, *, max_lines: int = LOG_TAIL_LINES, max_bytes: int = LOG_TAIL_BYTES) -> str | None:
    """The last ``max_lines`` lines of ``text`` within ``max_bytes`` UTF-8 bytes; None for None or blank text.

    Whole lines are dropped from the start until the rest fits, so a secret on one line is never cut in half
    (which would defeat masking); only a last line longer than ``max_bytes`` is itself cut, keeping its end.
    """
    if text is None or not text.strip():
        return None
    lines = text.rstrip("\n").splitlines()[-max_lines:]
    sizes = [len(line.encode()) + 1 for line in lines]
    total = sum(sizes) - 1
    while len(lines) > 1 and total > max_bytes:
        total -= sizes.pop(0)
        lines.pop(0)
    out = "\n".join(lines)
    if len(out.encode()) > max_bytes:
        out = out.encode()[-max_bytes:].decode(errors="ignore")
    return out


def masked(n: Notification, mask: Callable[[str], str] | None) -> Notification:
    """``n`` with ``mask`` applied to ``reason`` and ``log_tail`` (the fields that may quote a secret).

    If ``mask`` raises, the field is replaced by ``"(hidden: masking failed)"``: an unmasked text is never sent.
    """
    if mask is None:
        return n

    def apply(value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return mask(value)
        except Exception:  # noqa: BLE001 - a broken masker must not leak or crash the caller
            log.warning("masking a notification field failed; the field is hidden", exc_info=True)
            return "(hidden: masking failed)"

    return replace(n, reason=apply(n.reason), log_tail=apply(n.log_tail))


def payload(n: Notification, *, mask: Callable[[str], str] | None = None, sent_at: datetime | None = None) -> dict[str, Any]:
    """The JSON body POSTed to a generic ``webhook`` notifier. ``mask``: see :func:`masked`.

    Shape (instants in ISO 8601 UTC with ``Z``)::

        {
          "event": "task_failure",      # task_failure | task_success | task_retry | dag_failure | dag_success | sla_miss
          "dag_id": "etl",
          "run_id": "scheduled__2026-01-01T00:00:00+00:00",
          "logical_date": "2026-01-01T00:00:00Z",
          "task_id": "load",            # null for dag_failure / dag_success
          "try_number": 2,              # null for dag_failure / dag_success
          "state": "failed",            # the task instance's or run's state
          "reason": "exit code 1",      # may be null
          "log_tail": "...",            # last lines of the try's log (<= 50 lines, 4 KiB); may be null
          "sent_at": "2026-01-01T01:02:03.456789Z"
        }

    ``sent_at`` defaults to now.
    """
    n = masked(n, mask)
    return {
        "event": n.event,
        "dag_id": n.dag_id,
        "run_id": n.run_id,
        "logical_date": format_instant(n.logical_date),
        "task_id": n.task_id,
        "try_number": n.try_number,
        "state": n.state,
        "reason": n.reason,
        "log_tail": tail(n.log_tail),
        "sent_at": format_instant(sent_at or datetime.now(timezone.utc)),
    }


_TITLES: dict[str, tuple[str, str]] = {
    "task_failure": (":red_circle:", "Task failed"),
    "task_retry": (":large_orange_circle:", "Task up for retry"),
    "task_success": (":large_green_circle:", "Task succeeded"),
    "dag_failure": (":red_circle:", "DAG run failed"),
    "dag_success": (":large_green_circle:", "DAG run succeeded"),
    "sla_miss": (":alarm_clock:", "SLA missed"),
}
SLACK_HEADER_MAX = 150
"""Characters of a Slack header block's text."""
SLACK_TEXT_MAX = 3000
"""Characters of a Slack section block's text."""


def _slack_escape(text: str) -> str:
    """Slack mrkdwn's three control characters (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_code(text: str, limit: int) -> str:
    """``text`` as a mrkdwn code block of at most ``limit`` characters, keeping the end of the text."""
    body = _slack_escape(text).replace("```", "``\u200b`")
    budget = limit - len("```\n\n```")
    if len(body) > budget:
        body = body[-budget:]
        newline = body.find("\n")
        # start at a line boundary (or after a cut HTML entity) so the block does not open mid-token
        body = body[newline + 1 :] if newline >= 0 else re.sub(r"^[a-z#0-9]{0,5};", "", body)
    return f"```\n{body}\n```"


def slack_payload(n: Notification, channel: str | None = None, *, mask: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The body POSTed to a Slack incoming webhook (https://api.slack.com/messaging/webhooks).

    ``{"text": fallback, "blocks": [header, section with fields, reason section?, log tail section?],
    "channel"?: channel}``: the header names the event and the task or DAG; the fields give DAG, run, logical
    date, task and try (task events) and state; the reason and the log tail (in a code block, its end kept within
    Slack's 3000 characters) follow when known. ``channel`` is included when set (honoured by legacy webhooks;
    app webhooks post to their own channel). ``mask``: see :func:`masked`.
    """
    n = masked(n, mask)
    emoji, what = _TITLES[n.event]
    subject = f"{n.dag_id}.{n.task_id}" if n.task_id else n.dag_id
    title = f"{what}: {subject}"
    fields = [("DAG", n.dag_id), ("Run", n.run_id), ("Logical date", format_instant(n.logical_date))]
    if n.task_id is not None:
        fields.append(("Task", n.task_id))
    if n.try_number is not None:
        fields.append(("Try", str(n.try_number)))
    if n.state is not None:
        fields.append(("State", n.state))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(f"{emoji} {title}", SLACK_HEADER_MAX), "emoji": True}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": _clip(f"*{k}*\n{_slack_escape(v)}", 2000)} for k, v in fields],
        },
    ]
    if n.reason:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(f"*Reason*\n{_slack_escape(n.reason)}", SLACK_TEXT_MAX)}})
    log_tail = tail(n.log_tail)
    if log_tail:
        heading = "*Log tail*\n"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": heading + _slack_code(log_tail, SLACK_TEXT_MAX - len(heading))}})
    text = f"{emoji} {title} (run {n.run_id})" + (f": {n.reason}" if n.reason else "")
    body: dict[str, Any] = {"text": _clip(_slack_escape(text), SLACK_TEXT_MAX), "blocks": blocks}
    if channel:
        body["channel"] = channel
    return body


# --------------------------------------------------------------------------------------------------
# What to notify


_TASK_EVENTS: dict[TaskInstanceState, tuple[Event, str]] = {
    S.FAILED: ("task_failure", "on_failure"),
    S.SUCCESS: ("task_success", "on_success"),
    S.UP_FOR_RETRY: ("task_retry", "on_retry"),
}


def task_notifications(
    dag: DAG,
    run: DagRun,
    before: TaskInstance | None,
    after: TaskInstance,
    *,
    log: str | Callable[[], str | None] | None = None,
) -> list[tuple[Notifier, Notification]]:
    """What to notify for a task instance that changed from ``before`` (None: new) to ``after``.

    As Airflow 2.10's task callbacks: entering ``failed`` -> ``task_failure`` to the task's ``onFailure``
    (``on_failure_callback``, called by ``TaskInstance.handle_failure`` when no retry is left, also after an
    execution timeout, or when a running try is marked failed); entering ``up_for_retry`` -> ``task_retry`` to
    ``onRetry`` (``on_retry_callback``; a failure that is retried calls no failure callback); entering ``success``
    -> ``task_success`` to ``onSuccess``. Nothing for ``upstream_failed`` (set by the scheduler's trigger-rule
    check, which calls no callback), ``skipped``, ``removed`` or any other state. "Entering" means the state
    differs from ``before``'s, or is the same for a later try (a retry that ended the same way between two
    observations). Each returned pair is one notifier of the task (from ``defaults`` when the task sets none)
    with the notification, in the manifest's order; [] when the task has no notifier for the event or is no
    longer in ``dag``.

    ``log``: the try's log, or a callable returning it, called only when a ``task_failure`` or ``task_retry`` is
    returned; its :func:`tail` becomes ``log_tail`` (success notifications carry none).
    """
    entry = _TASK_EVENTS.get(after.state)
    task = dag.tasks.get(after.task_id)
    if entry is None or task is None:
        return []
    if before is not None and before.state == after.state and before.try_number == after.try_number:
        return []
    event, attr = entry
    notifiers: tuple[Notifier, ...] = getattr(task, attr)
    if not notifiers:
        return []
    log_tail = None
    if event != "task_success" and log is not None:
        log_tail = tail(log() if callable(log) else log)
    n = Notification(
        event=event,
        dag_id=run.dag_id,
        run_id=run.run_id,
        logical_date=run.logical_date,
        task_id=after.task_id,
        try_number=after.try_number,
        state=str(after.state),
        reason=after.reason,
        log_tail=log_tail,
    )
    return [(notifier, n) for notifier in notifiers]


def run_notifications(dag: DAG, before_run: DagRun | None, after_run: DagRun) -> list[tuple[Notifier, Notification]]:
    """What to notify for a run that changed from ``before_run`` (None: new) to ``after_run``.

    As Airflow 2.10's ``DagRun.update_state`` / ``_schedule_dag_run``: a run entering ``failed`` (a leaf failed,
    ``all_tasks_deadlocked``, or ``dagrun_timeout``) -> ``dag_failure`` to the DAG's ``onFailure``
    (``on_failure_callback``); entering ``success`` -> ``dag_success`` to ``onSuccess``. The run's ``reason``
    (Airflow's callback message) is the notification's. [] when the run did not just finish or the DAG has no
    notifier for it.
    """
    if not after_run.finished or (before_run is not None and before_run.state == after_run.state):
        return []
    if after_run.state == DagRunState.FAILED:
        event: Event = "dag_failure"
        notifiers = dag.on_failure
    else:
        event, notifiers = "dag_success", dag.on_success
    if not notifiers:
        return []
    n = Notification(
        event=event,
        dag_id=after_run.dag_id,
        run_id=after_run.run_id,
        logical_date=after_run.logical_date,
        state=str(after_run.state),
        reason=after_run.reason,
    )
    return [(notifier, n) for notifier in notifiers]


def sla_deadline(run: DagRun, sla: timedelta) -> datetime:
    """When a task of ``run`` with ``sla`` (a timedelta) must have succeeded: ``run.data_interval_end + sla``.

    Airflow 2 measures an SLA from the end of the run's schedule interval (``manage_slas`` compares the
    following schedule's logical date, i.e. this run's ``data_interval_end``, plus ``task.sla`` with now).
    """
    return run.data_interval_end + sla


def _sla_met(ti: TaskInstance | None, deadline: datetime) -> bool:
    return (
        ti is not None
        and ti.state in SLA_MET_STATES
        and (ti.end_date is None or ti.end_date <= deadline)
    )


def sla_misses(
    dag: DAG,
    run: DagRun,
    tis: Mapping[str, TaskInstance],
    now: datetime,
    already: AbstractSet[str] = frozenset(),
) -> list[tuple[str, Notification]]:
    """The tasks of ``run`` that missed their ``sla`` by ``now`` and were not reported yet, in DAG order.

    ``tis``: task_id -> task instance (a task without one has not started). A task with an ``sla`` misses it
    when ``now >= deadline`` (see :func:`sla_deadline`) and it did not reach ``success`` or ``skipped`` by the
    deadline: still unfinished, failed, upstream_failed, or succeeded after it (judged by ``end_date``, so a
    check that runs late still reports it). Tasks in ``already`` (the task ids reported for this run; this
    function does not change it) are skipped, so each task is reported once per run; add the returned ids to
    it. Only scheduled runs are checked (:data:`SLA_RUN_TYPES`). Each pair is ``(task_id, sla_miss
    notification)``; send it to the DAG's ``onSlaMiss`` (Airflow's ``sla_miss_callback``), and record the
    miss even when the DAG has no notifier. Tasks over their SLA keep running, as in Airflow.

    Raises:
        ValueError: if ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    if run.run_type not in SLA_RUN_TYPES:
        return []
    out: list[tuple[str, Notification]] = []
    for task_id, task in dag.tasks.items():
        if task.sla is None or task_id in already:
            continue
        deadline = sla_deadline(run, task.sla)
        ti = tis.get(task_id)
        if now < deadline or _sla_met(ti, deadline):
            continue
        state = str(ti.state) if ti is not None else str(S.NONE)
        if ti is not None and ti.state in SLA_MET_STATES:
            how = f"{state} at {format_instant(ti.end_date)}" if ti.end_date else state
        else:
            how = f"still {state}" if ti is None or not ti.state.finished else state
        reason = (
            f"missed its SLA of {format_duration(task.sla)} after the data interval's end: "
            f"due by {format_instant(deadline)}, {how}"
        )
        out.append(
            (
                task_id,
                Notification(
                    event="sla_miss",
                    dag_id=run.dag_id,
                    run_id=run.run_id,
                    logical_date=run.logical_date,
                    task_id=task_id,
                    try_number=ti.try_number if ti is not None else 0,
                    state=state,
                    reason=reason,
                ),
            )
        )
    return out


def next_sla_check(
    dag: DAG,
    run: DagRun,
    tis: Mapping[str, TaskInstance],
    now: datetime,
    already: AbstractSet[str] = frozenset(),
) -> datetime | None:
    """The earliest future instant (> ``now``) at which :func:`sla_misses` may report a miss for ``run``.

    The nearest deadline of a task with an ``sla`` that has not met it yet and is not in ``already``; None when
    there is none (no ``sla``, every one met or reported, or a run type not checked). Deadlines at or before
    ``now`` are :func:`sla_misses`'s at ``now``: call it first. A finished run may still miss an SLA later (a
    failed task never succeeds), so keep the timer after the run ends until this returns None; recompute it
    whenever a task instance changes.

    Raises:
        ValueError: if ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    if run.run_type not in SLA_RUN_TYPES:
        return None
    deadlines = [
        deadline
        for task_id, task in dag.tasks.items()
        if task.sla is not None and task_id not in already
        for deadline in (sla_deadline(run, task.sla),)
        if deadline > now and not _sla_met(tis.get(task_id), deadline)
    ]
    return min(deadlines, default=None)


# --------------------------------------------------------------------------------------------------
# Sending


Resolver = Callable[[Notifier], tuple[str, Mapping[str, str]]]
"""Turns a notifier into ``(url, extra headers)``; raises (any exception) when it cannot (e.g. a missing Secret)."""


def secret_resolver(lookup: Callable[[str, str], str]) -> Resolver:
    """A :data:`Resolver` reading ``webhookUrlFrom`` / ``urlFrom`` with ``lookup(secret_name, key) -> value``.

    ``slack`` -> (the Secret's URL, no header); ``webhook`` -> (``url`` or the Secret's URL, its ``headers``).
    ``lookup`` raises (e.g. KeyError) when the Secret or key is missing; the resolver lets it through, and
    :class:`WebhookSender` logs it.
    """

    def resolve(notifier: Notifier) -> tuple[str, Mapping[str, str]]:
        if notifier.slack is not None:
            ref = notifier.slack.webhook_url_from
            return lookup(ref.name, ref.key).strip(), {}
        hook = notifier.webhook
        if hook is None:  # the model forbids it; be explicit for type checkers
            raise ValueError("notifier has neither slack nor webhook")
        if hook.url is not None:
            return hook.url, dict(hook.headers)
        assert hook.url_from is not None
        return lookup(hook.url_from.name, hook.url_from.key).strip(), dict(hook.headers)

    return resolve


def static_resolver(secrets: Mapping[tuple[str, str], str]) -> Resolver:
    """A :data:`Resolver` over Secret values known up front: ``{(secret_name, key): decoded value}``.

    For local runs, where Secrets come from YAML documents next to the DAG. A missing entry raises
    ``KeyError("Secret 'name' has no key 'key'")`` when a notification is sent (logged, not raised, by the sender).
    """

    def lookup(name: str, key: str) -> str:
        try:
            return secrets[(name, key)]
        except KeyError:
            raise KeyError(f"Secret {name!r} has no key {key!r}") from None

    return secret_resolver(lookup)


def notifier_kind(notifier: Notifier) -> Literal["slack", "webhook"]:
    """``"slack"`` or ``"webhook"``."""
    return "slack" if notifier.slack is not None else "webhook"


def redact_url(url: str | None) -> str:
    """``scheme://host[:port]`` of ``url``: what may be logged of a webhook URL (Slack's path is its secret)."""
    if not url:
        return "(no url)"
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid url)"
    return f"{parts.scheme}://{host}{port}" if parts.scheme else "(invalid url)"


@dataclass(frozen=True)
class Delivery:
    """The outcome of one notification to one notifier, kept in :attr:`WebhookSender.deliveries`.

    ``kind``: ``"slack"``/``"webhook"``. ``target``: the URL redacted by :func:`redact_url` (None when it could
    not be resolved). ``attempts``: HTTP requests made (0 when it was never sent). ``status``: the last HTTP
    status, None without one. ``error``: why it failed, None when ``ok``. ``finished_at``: UTC.
    """

    notification: Notification
    kind: str
    target: str | None
    ok: bool
    attempts: int
    status: int | None
    error: str | None
    finished_at: datetime


@dataclass(eq=False)
class _Job:
    notifier: Notifier
    notification: Notification
    kind: str
    body: bytes
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    attempts: int = 0
    status: int | None = None
    error: str | None = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would turn a redirected POST into a GET without body; treat a 3xx as a failed delivery instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        return None


class _Retryable(Exception):
    """An attempt failed in a way worth retrying; ``retry_after`` (seconds) when the server asked for it."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class _Permanent(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


MAX_RETRY_AFTER = 60.0
"""Seconds; a ``Retry-After`` longer than this is cut to it."""
RETRY_STATUSES = frozenset({408, 429})
"""HTTP statuses retried besides every 5xx."""


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER) if value else None
    except ValueError:  # an HTTP date: not worth parsing for a notification
        return None


class WebhookSender:
    """Delivers notifications in the background: POSTs JSON with ``urllib`` from daemon worker threads.

    ``resolve_url(notifier) -> (url, headers)`` is called on a worker thread (it may read a Secret); if it
    raises, the delivery is logged as failed and not retried. Only ``http``/``https`` URLs are accepted;
    redirects are not followed. An attempt that fails with a connection error, a timeout (``timeout`` seconds
    per connect or read), a 5xx, 408 or 429 is retried up to ``retries`` times after ``backoff * 2 ** (n - 1)``
    seconds (n = 1 for the first retry; a ``Retry-After`` up to 60 s is honoured when longer); another status
    fails at once. A failed delivery is logged as a warning with the URL redacted (Slack's URL is a secret);
    nothing is ever raised into the caller. ``mask`` is applied to every notification's ``reason`` and
    ``log_tail`` before it is serialised (see :func:`masked`). ``workers`` deliveries run at once; retries wait
    without holding a worker. The last ``history`` outcomes are kept in :attr:`deliveries`.

    Raises:
        ValueError: for a negative ``retries``, a non-positive ``timeout`` or ``workers``, or a negative ``backoff``.
    """

    def __init__(
        self,
        resolve_url: Resolver,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 1.0,
        mask: Callable[[str], str] | None = None,
        workers: int = 4,
        history: int = 100,
    ) -> None:
        if retries < 0 or timeout <= 0 or backoff < 0 or workers < 1:
            raise ValueError("WebhookSender needs retries >= 0, timeout > 0, backoff >= 0 and workers >= 1")
        self._resolve = resolve_url
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._mask = mask
        self._workers = workers
        self._cond = threading.Condition()
        self._ready: deque[_Job] = deque()
        self._delayed: list[tuple[float, int, _Job]] = []  # (monotonic due time, seq, job), a heap
        self._seq = itertools.count()
        self._pending = 0  # accepted, not finished
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._results: deque[Delivery] = deque(maxlen=history)
        self._opener = urllib.request.build_opener(_NoRedirect())

    # -- public API ------------------------------------------------------------------------------

    def send(self, notifier: Notifier, notification: Notification) -> None:
        """Queue ``notification`` for ``notifier`` and return at once; never raises.

        A sender that is closed drops it (logged and recorded as a failed delivery).
        """
        try:
            kind = notifier_kind(notifier)
            if kind == "slack":
                assert notifier.slack is not None
                body = slack_payload(notification, notifier.slack.channel, mask=self._mask)
            else:
                body = payload(notification, mask=self._mask)
            job = _Job(notifier, notification, kind, json.dumps(body).encode())
        except Exception as exc:  # noqa: BLE001 - never raise into the scheduling loop
            log.warning("could not build the %s notification for %s: %s", notification.event, _about(notification), exc)
            return
        with self._cond:
            if self._closed:
                job.error = "sender closed"
                self._record(job, ok=False)
                log.warning("notification %s for %s dropped: the sender is closed", notification.event, _about(notification))
                return
            self._pending += 1
            self._ready.append(job)
            self._start_workers()
            self._cond.notify()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (None: no limit) until every accepted notification is delivered or
        given up. Returns True if none is pending."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        """Stop accepting notifications and give up those not sent yet or waiting for a retry (each logged and
        recorded); call :meth:`flush` first to deliver them. Returns at once; a request in flight ends in the
        background within ``timeout``. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            dropped = list(self._ready) + [job for _, _, job in self._delayed]
            self._ready.clear()
            self._delayed.clear()
            for job in dropped:
                job.error = f"sender closed ({job.error})" if job.error else "sender closed"
                self._finish(job, ok=False)
            self._cond.notify_all()

    @property
    def deliveries(self) -> list[Delivery]:
        """The most recent delivery outcomes, oldest first (bounded by ``history``)."""
        with self._cond:
            return list(self._results)

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------

    def _start_workers(self) -> None:
        """Start missing worker threads (lazily, at the first send); called with the lock held."""
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < self._workers:
            t = threading.Thread(target=self._work, name=f"kubedag-notify-{len(self._threads)}", daemon=True)
            self._threads.append(t)
            t.start()

    def _next_job(self) -> _Job | None:
        """The next job due, waiting for one; None once closed."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    self._ready.append(heapq.heappop(self._delayed)[2])
                if self._ready:
                    return self._ready.popleft()
                self._cond.wait(self._delayed[0][0] - now if self._delayed else None)

    def _work(self) -> None:
        while (job := self._next_job()) is not None:
            try:
                self._attempt(job)
            except Exception as exc:  # noqa: BLE001 - a worker must survive anything
                log.exception("unexpected error delivering a notification")
                job.error = f"internal error: {exc}"
                with self._cond:
                    self._finish(job, ok=False)

    def _attempt(self, job: _Job) -> None:
        if job.url is None:
            try:
                url, headers = self._resolve(job.notifier)
            except Exception as exc:  # noqa: BLE001 - e.g. a missing Secret: log, never raise
                job.error = f"could not resolve the {job.kind} URL: {exc}"
                self._give_up(job)
                return
            job.url, job.headers = url, dict(headers)
        job.attempts += 1
        try:
            job.status = self._post(job)
        except _Retryable as exc:
            job.status, job.error = exc.status, str(exc)
            with self._cond:
                if job.attempts <= self._retries and self._closed:
                    job.error = f"sender closed ({job.error})"
                elif job.attempts <= self._retries:
                    delay = self._backoff * 2 ** (job.attempts - 1)
                    if exc.retry_after is not None:
                        delay = max(delay, exc.retry_after)
                    heapq.heappush(self._delayed, (time.monotonic() + delay, next(self._seq), job))
                    self._cond.notify()
                    log.debug("notification to %s failed (%s); retrying in %.3gs", redact_url(job.url), exc, delay)
                    return
            self._give_up(job)
            return
        except _Permanent as exc:
            job.status, job.error = exc.status, str(exc)
            self._give_up(job)
            return
        job.error = None
        log.debug("notification %s for %s delivered to %s", job.notification.event, _about(job.notification), redact_url(job.url))
        with self._cond:
            self._finish(job, ok=True)

    def _post(self, job: _Job) -> int:
        """POST the job's body once; its HTTP status on 2xx. Raises _Retryable or _Permanent."""
        assert job.url is not None
        scheme = urllib.parse.urlsplit(job.url).scheme.lower()
        if scheme not in ("http", "https"):
            raise _Permanent(f"unsupported URL scheme {scheme!r}: only http and https")
        headers = {"Content-Type": "application/json", "User-Agent": f"kubedag/{__version__}", **job.headers}
        try:
            request = urllib.request.Request(job.url, data=job.body, headers=headers, method="POST")
            with self._opener.open(request, timeout=self._timeout) as response:
                response.read(65536)
                return response.status
        except urllib.error.HTTPError as exc:
            status, retry_after = exc.code, _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            exc.close()
            if status >= 500 or status in RETRY_STATUSES:
                raise _Retryable(f"HTTP {status}", status, retry_after) from None
            raise _Permanent(f"HTTP {status}", status) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise _Retryable(f"timed out after {self._timeout:g}s") from None
            raise _Retryable(f"connection failed: {reason}") from None
        except TimeoutError:
            raise _Retryable(f"timed out after {self._timeout:g}s") from None
        except (http.client.HTTPException, OSError) as exc:
            raise _Retryable(f"connection failed: {type(exc).__name__}: {exc}") from None
        except ValueError as exc:  # a malformed URL
            raise _Permanent(f"invalid URL: {exc}") from None

    def _give_up(self, job: _Job) -> None:
        log.warning(
            "notification %s for %s to %s %s failed after %d attempt(s): %s",
            job.notification.event,
            _about(job.notification),
            job.kind,
            redact_url(job.url) if job.url else "(unresolved)",
            job.attempts,
            job.error,
        )
        with self._cond:
            self._finish(job, ok=False)

    def _finish(self, job: _Job, *, ok: bool) -> None:
        """Record the job's outcome and count it done; called with the lock held."""
        self._record(job, ok=ok)
        self._pending -= 1
        self._cond.notify_all()

    def _record(self, job: _Job, *, ok: bool) -> None:
        self._results.append(
            Delivery(
                notification=job.notification,
                kind=job.kind,
                target=redact_url(job.url) if job.url else None,
                ok=ok,
                attempts=job.attempts,
                status=job.status,
                error=None if ok else job.error,
                finished_at=datetime.now(timezone.utc),
            )
        )


def _about(n: Notification) -> str:
    """``dag/run[/task try N]`` for log messages."""
    task = f" task {n.task_id}" + (f" try {n.try_number}" if n.try_number else "") if n.task_id else ""
    return f"dag {n.dag_id} run {n.run_id}{task}"

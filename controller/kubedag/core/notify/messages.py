"""What a notification says and where it goes: :class:`Notification`, the JSON bodies :func:`payload` (a generic
webhook) and :func:`slack_payload` (a Slack incoming webhook), :func:`tail` and :func:`masked` (what of a log and a
reason may leave the process), and the resolvers turning a notifier into a URL (:func:`secret_resolver`,
:func:`static_resolver`). Pure: no I/O; the sender is :class:`kubedag.http.notify.WebhookSender`.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Literal, get_args

from kubedag.core.engine.plan import format_instant
from kubedag.core.spec.models import Notifier

log = logging.getLogger("kubedag.notify")

Event = Literal["task_failure", "task_success", "task_retry", "dag_failure", "dag_success", "sla_miss"]
EVENTS: tuple[str, ...] = get_args(Event)

LOG_TAIL_LINES = 50
"""At most this many last lines of a try's log go into a notification."""
LOG_TAIL_BYTES = 4096
"""And at most this many bytes (UTF-8) of them."""

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
# Where it goes


Resolver = Callable[[Notifier], tuple[str, Mapping[str, str]]]
"""Turns a notifier into ``(url, extra headers)``; raises (any exception) when it cannot (e.g. a missing Secret)."""


def secret_resolver(lookup: Callable[[str, str], str]) -> Resolver:
    """A :data:`Resolver` reading ``webhookUrlFrom`` / ``urlFrom`` with ``lookup(secret_name, key) -> value``.

    ``slack`` -> (the Secret's URL, no header); ``webhook`` -> (``url`` or the Secret's URL, its ``headers``).
    ``lookup`` raises (e.g. KeyError) when the Secret or key is missing; the resolver lets it through, and
    :class:`kubedag.http.notify.WebhookSender` logs it.
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

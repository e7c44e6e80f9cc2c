"""Notifications' rules: what to tell the DAG's notifiers (Slack, JSON webhooks), pure (no I/O, no clock).

- :mod:`.messages`: :class:`Notification`, the JSON bodies :func:`payload` and :func:`slack_payload`, and how a
  :class:`~kubedag.core.spec.models.Notifier` becomes a URL and headers (:func:`static_resolver`,
  :func:`secret_resolver`; reading Kubernetes Secrets stays in the Kubernetes adapter);
- :mod:`.callbacks`: what to notify from state transitions: :func:`task_notifications` (Airflow's
  ``on_failure_callback``, ``on_success_callback``, ``on_retry_callback``), :func:`run_notifications` (the DAG's
  ``on_failure_callback`` / ``on_success_callback``) and :func:`sla_misses` / :func:`next_sla_check` (Airflow 2's
  task ``sla`` and the DAG's ``sla_miss_callback``).

The sender, :class:`kubedag.http.notify.WebhookSender`, POSTs the bodies from background threads with retries.
A caller (the local runner, the controller) compares each task instance and run before and after a change,
sends what the pure functions return, and keeps a timer for :func:`next_sla_check`::

    for notifier, n in task_notifications(dag, run, before, after, log=lambda: read_log(...)):
        sender.send(notifier, n)

Reasons and log tails may hold secrets: the sender passes both through its ``mask`` callable (e.g.
``kubedag.core.secrets.Masker.mask``, see :func:`masked`) before anything leaves the process.
"""

from kubedag.core.notify.callbacks import (
    SLA_MET_STATES,
    SLA_RUN_TYPES,
    next_sla_check,
    run_notifications,
    sla_deadline,
    sla_misses,
    task_notifications,
    task_transitions,
)
from kubedag.core.notify.messages import (
    EVENTS,
    LOG_TAIL_BYTES,
    LOG_TAIL_LINES,
    SLACK_HEADER_MAX,
    SLACK_TEXT_MAX,
    Event,
    Notification,
    Resolver,
    masked,
    notifier_kind,
    payload,
    redact_url,
    secret_resolver,
    slack_payload,
    static_resolver,
    tail,
)

__all__ = [
    "EVENTS", "LOG_TAIL_BYTES", "LOG_TAIL_LINES", "SLACK_HEADER_MAX", "SLACK_TEXT_MAX", "SLA_MET_STATES",
    "SLA_RUN_TYPES", "Event", "Notification", "Resolver", "masked", "next_sla_check", "notifier_kind", "payload",
    "redact_url", "run_notifications", "secret_resolver", "slack_payload", "sla_deadline", "sla_misses",
    "static_resolver", "tail", "task_notifications", "task_transitions",
]

"""HTTP adapter: outgoing calls (webhook and Slack notifications, the built-in ``http`` sensor check), and the
probes and metrics endpoint of a process (:mod:`kubedag.http.probes`)."""

from __future__ import annotations

from typing import Any


def webhook_sender(*args: Any, **kwargs: Any) -> Any:
    """A :class:`kubedag.http.notify.WebhookSender` made with these arguments; the module (``urllib.request``,
    ``threading``) is imported on the first call, for start-up time: most DAGs notify nobody. Entry points give
    this to the executors as their ``make_sender``."""
    from kubedag.http.notify import WebhookSender  # imported on first use: start-up time

    return WebhookSender(*args, **kwargs)

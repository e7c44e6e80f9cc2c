"""The controller's event sink (core/v1 Events) and notification sink (webhooks and Slack, Secrets read through
the API): :class:`kubedag.app.ports.EventSink` and :class:`kubedag.app.ports.NotificationSink` on a cluster.

Both are best effort and never block a pass: an Event is posted in the background, a notification goes to the
webhook sender the entry point gives (:func:`kubedag.http.webhook_sender`, threads of its own). Secret values the controller has seen are masked in both.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubedag.core import engine
from kubedag.core.notify import secret_resolver
from kubedag.k8s.client import KubeClient
from kubedag.k8s.workqueue import Background

log = logging.getLogger("kubedag.controller")


class EventPoster:
    """Posts a core/v1 Event about an object (:class:`kubedag.app.ports.EventSink`)."""

    def __init__(self, client: Callable[[], KubeClient | None], background: Background, mask: Callable[[str], str],
                 clock: Callable[[], datetime]) -> None:
        self._client, self._background, self._mask, self._clock = client, background, mask, clock
        self.instance = socket.gethostname()

    def __call__(self, about: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        """Post the Event in the background (never blocks, never fails the caller)."""
        client = self._client()
        if client is None:
            return
        meta = about.get("metadata") or {}
        now = engine.format_instant(self._clock())
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name', 'kubedag')}.", "namespace": meta.get("namespace") or "default"},
            "involvedObject": {"apiVersion": about.get("apiVersion"), "kind": about.get("kind"), "name": meta.get("name"),
                               "namespace": meta.get("namespace"), "uid": meta.get("uid")},
            "reason": reason, "message": self._mask(message), "type": kind,
            "source": {"component": "kubedag-controller"},
            "reportingComponent": "kubedag.io/controller", "reportingInstance": self.instance,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        self._background.spawn(client.create("v1", "events", event["metadata"]["namespace"], event), f"posting event {reason}")


@dataclass(frozen=True)
class _NamespacedNotifier:
    """A notifier with the namespace whose Secrets its URL comes from (what the sender's resolver gets)."""

    namespace: str
    notifier: Any

    def __iter__(self) -> Any:
        return iter((self.namespace, self.notifier))

    @property
    def slack(self) -> Any:
        return self.notifier.slack

    @property
    def webhook(self) -> Any:
        return self.notifier.webhook


class WebhookNotifications:
    """Sends notifications with the sender ``make_sender(resolver, *, mask)`` makes on first use (the entry
    point's :func:`kubedag.http.webhook_sender`; None: notifiers are not sent, and a warning says so once); its
    resolver reads a notifier's Secret through the API (from the sender's thread, on the controller's loop)."""

    def __init__(self, client: Callable[[], KubeClient | None], mask: Callable[[str], str],
                 make_sender: Callable[..., Any] | None) -> None:
        self._client, self._mask, self._make_sender = client, mask, make_sender
        self._sender: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _lookup_in(self, namespace: str) -> Callable[[str, str], str]:
        def lookup(name: str, key: str) -> str:
            client, loop = self._client(), self._loop
            assert client is not None and loop is not None
            obj = asyncio.run_coroutine_threadsafe(client.get("v1", "secrets", namespace, name), loop).result(30)
            if obj is None:
                raise KeyError(f"Secret {name!r} not found in namespace {namespace}")
            if key in (obj.get("stringData") or {}):
                return str(obj["stringData"][key])
            if key not in (obj.get("data") or {}):
                raise KeyError(f"Secret {name!r} has no key {key!r}")
            return base64.b64decode(obj["data"][key]).decode()
        return lookup

    def _get_sender(self) -> Any:
        if self._sender is None and self._make_sender is None:
            log.warning("a DAG has notifiers, but the controller was given no webhook sender: they are not notified")
            self._make_sender = _no_sender
        if self._sender is None:
            self._loop = asyncio.get_running_loop()

            def resolve(notifier: Any) -> Any:
                namespace, inner = notifier
                return secret_resolver(self._lookup_in(namespace))(inner)

            self._sender = self._make_sender(resolve, mask=self._mask)
        return self._sender

    def __call__(self, namespace: str, notifier: Any, notification: Any) -> None:
        """Queue one notification (see :class:`kubedag.app.ports.NotificationSink`)."""
        try:
            sender = self._get_sender()
            if sender is not None:
                sender.send(_NamespacedNotifier(namespace, notifier), notification)
        except Exception:  # noqa: BLE001 - a notification never stops a pass
            log.exception("sending a notification failed")


def _no_sender(*args: Any, **kwargs: Any) -> None:
    """The ``make_sender`` of a controller given none: no sender, so nothing is notified."""
    return None


__all__ = ["EventPoster", "WebhookNotifications"]

"""Fixtures for notification tests: a running :class:`~tests.notify.receiver.WebhookReceiver`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notify.receiver import WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A receiver answering 200 to every POST."""
    with WebhookReceiver() as hook:
        yield hook

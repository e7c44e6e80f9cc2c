"""WebhookSender against a real HTTP receiver on 127.0.0.1: delivery, retries, timeouts, dead URLs, masking."""

from __future__ import annotations

import logging
import socket
import threading
from datetime import datetime, timezone

import pytest

from kubedag.core.notify import Notification, redact_url, static_resolver
from kubedag.http.notify import WebhookSender
from kubedag.core.spec.models import Notifier
from tests.notify.receiver import WebhookReceiver

LOGICAL = datetime(2026, 1, 1, tzinfo=timezone.utc)
FAILURE = Notification(
    event="task_failure", dag_id="etl", run_id="scheduled__2026-01-01T00:00:00+00:00", logical_date=LOGICAL,
    task_id="load", try_number=1, state="failed", reason="exit code 1", log_tail="Traceback ...\nboom",
)


def webhook(url: str, **headers: str) -> Notifier:
    return Notifier.model_validate({"webhook": {"url": url, "headers": headers}})


def slack(secret: str = "slack", key: str = "url", channel: str | None = "#alerts") -> Notifier:
    return Notifier.model_validate({"slack": {"webhookUrlFrom": {"name": secret, "key": key}, "channel": channel}})


def sender(secrets: dict | None = None, **kw) -> WebhookSender:
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 5.0)
    return WebhookSender(static_resolver(secrets or {}), **kw)


def dead_url() -> str:
    """A URL on a local port nobody listens on: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def test_a_webhook_gets_the_json_payload_with_its_headers(receiver):
    with sender() as s:
        s.send(webhook(receiver.url + "/hooks/kubedag?team=data", Authorization="Bearer t0k"), FAILURE)
        assert s.flush(5)
        [req] = receiver.wait_for(1)
        [delivery] = s.deliveries
    assert req.path == "/hooks/kubedag?team=data"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["authorization"] == "Bearer t0k"
    assert req.headers["user-agent"].startswith("kubedag/")
    assert {k: req.json[k] for k in ("event", "dag_id", "task_id", "try_number", "state", "reason", "log_tail")} == {
        "event": "task_failure", "dag_id": "etl", "task_id": "load", "try_number": 1, "state": "failed",
        "reason": "exit code 1", "log_tail": "Traceback ...\nboom",
    }
    assert req.json["logical_date"] == "2026-01-01T00:00:00Z" and req.json["sent_at"].endswith("Z")
    assert (delivery.ok, delivery.kind, delivery.attempts, delivery.status, delivery.error) == (True, "webhook", 1, 200, None)
    assert delivery.notification == FAILURE and delivery.target == redact_url(receiver.url)


def test_slack_gets_blocks_at_the_url_read_from_its_secret(receiver):
    with sender({("slack", "url"): receiver.url + "/services/T000/B000/XXXX\n"}) as s:
        s.send(slack(), FAILURE)
        assert s.flush(5)
        [req] = receiver.wait_for(1)
    assert req.path == "/services/T000/B000/XXXX"
    assert req.json["channel"] == "#alerts"
    assert "Task failed: etl.load" in req.json["text"]
    assert req.json["blocks"][0]["type"] == "header"


def test_send_returns_before_delivering():
    release = threading.Event()
    resolved = threading.Event()

    def slow_resolver(notifier):
        release.wait(5)
        resolved.set()
        return "http://127.0.0.1:9/never", {}

    s = WebhookSender(slow_resolver, retries=0)
    try:
        s.send(webhook("http://unused.example"), FAILURE)  # would deadlock if it resolved on this thread
        assert not resolved.is_set() and s.deliveries == [] and not s.flush(0)
    finally:
        release.set()
        s.flush(5)
        s.close()


def test_failed_attempts_are_retried_with_backoff_until_delivered():
    with WebhookReceiver(fail_first=2) as hook, sender(retries=3) as s:
        s.send(webhook(hook.url + "/h"), FAILURE)
        assert s.flush(5)
        received = hook.wait_for(3)
        [delivery] = s.deliveries
    assert [r.status for r in received] == [500, 500, 200]
    assert [r.json["event"] for r in received] == ["task_failure"] * 3
    assert (delivery.ok, delivery.attempts, delivery.status) == (True, 3, 200)


def test_429_is_retried_but_other_4xx_fail_at_once(caplog):
    with WebhookReceiver(fail_first=1, fail_status=429) as hook, sender(retries=1) as s:
        s.send(webhook(hook.url), FAILURE)
        assert s.flush(5)
        assert [r.status for r in hook.requests] == [429, 200]
        assert s.deliveries[-1].ok
    with WebhookReceiver(fail_first=5, fail_status=404) as hook, sender(retries=3) as s:
        with caplog.at_level(logging.WARNING, logger="kubedag.notify"):
            s.send(webhook(hook.url + "/secret-token"), FAILURE)
            assert s.flush(5)
        assert len(hook.requests) == 1
        [delivery] = s.deliveries
        assert (delivery.ok, delivery.attempts, delivery.status, delivery.error) == (False, 1, 404, "HTTP 404")
    assert "HTTP 404" in caplog.text and "secret-token" not in caplog.text  # the URL's path is never logged


def test_a_server_failing_every_attempt_is_given_up_after_the_retries(caplog):
    with WebhookReceiver(fail_first=100) as hook, sender(retries=2) as s:
        with caplog.at_level(logging.WARNING, logger="kubedag.notify"):
            s.send(webhook(hook.url), FAILURE)
            assert s.flush(5)
        assert len(hook.requests) == 3
        [delivery] = s.deliveries
    assert (delivery.ok, delivery.attempts, delivery.status, delivery.error) == (False, 3, 500, "HTTP 500")
    assert "failed after 3 attempt(s): HTTP 500" in caplog.text


def test_a_receiver_that_never_answers_times_out_and_is_retried():
    with WebhookReceiver(hang=True) as hook, sender(timeout=0.2, retries=1) as s:
        s.send(webhook(hook.url), FAILURE)
        assert s.flush(5)
        assert len(hook.wait_for(2)) == 2
        [delivery] = s.deliveries
    assert (delivery.ok, delivery.attempts, delivery.status) == (False, 2, None)
    assert "timed out after 0.2s" in delivery.error


def test_a_dead_url_is_given_up_without_raising(caplog):
    with sender(retries=2) as s, caplog.at_level(logging.WARNING, logger="kubedag.notify"):
        s.send(webhook(dead_url()), FAILURE)
        assert s.flush(5)
        [delivery] = s.deliveries
    assert (delivery.ok, delivery.attempts) == (False, 3)
    assert "connection failed" in delivery.error
    assert "notification task_failure for dag etl run scheduled__2026-01-01T00:00:00+00:00 task load try 1" in caplog.text


def test_a_missing_secret_is_logged_not_raised(caplog):
    with sender({}) as s, caplog.at_level(logging.WARNING, logger="kubedag.notify"):
        s.send(slack("nope", "url"), FAILURE)
        assert s.flush(5)
        [delivery] = s.deliveries
    assert (delivery.ok, delivery.attempts, delivery.target) == (False, 0, None)
    assert "Secret 'nope' has no key 'url'" in delivery.error and "Secret 'nope'" in caplog.text


def test_a_url_that_is_not_http_is_refused(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("do not read")
    with sender({("s", "k"): f"file://{secret}"}) as s:
        s.send(slack("s", "k"), FAILURE)
        assert s.flush(5)
        [delivery] = s.deliveries
    assert not delivery.ok and "unsupported URL scheme 'file'" in delivery.error


def test_masking_is_applied_to_everything_sent(receiver):
    n = Notification(
        event="task_retry", dag_id="etl", run_id="r", logical_date=LOGICAL, task_id="load", try_number=1,
        state="up_for_retry", reason="auth failed with hunter2", log_tail="PGPASSWORD=hunter2\nretrying",
    )
    with sender({("slack", "url"): receiver.url + "/slack"}, mask=lambda t: t.replace("hunter2", "***")) as s:
        s.send(webhook(receiver.url + "/hook"), n)
        s.send(slack(), n)
        assert s.flush(5)
        received = receiver.wait_for(2)
    assert sorted(r.path for r in received) == ["/hook", "/slack"]
    for r in received:
        assert b"hunter2" not in r.body and b"***" in r.body
    hook = next(r for r in received if r.path == "/hook")
    assert hook.json["reason"] == "auth failed with ***" and hook.json["log_tail"] == "PGPASSWORD=***\nretrying"


def test_close_gives_up_retries_still_waiting_and_refuses_new_notifications(caplog):
    with WebhookReceiver(fail_first=100) as hook:
        s = sender(retries=5, backoff=30.0)
        s.send(webhook(hook.url), FAILURE)
        hook.wait_for(1)
        assert not s.flush(0)  # waiting 30 s for its retry
        with caplog.at_level(logging.WARNING, logger="kubedag.notify"):
            s.close()
            assert s.flush(5)
            s.send(webhook(hook.url), FAILURE)
        s.close()  # idempotent
    first, second = s.deliveries
    assert (first.ok, first.attempts, first.error) == (False, 1, "sender closed (HTTP 500)")
    assert (second.ok, second.attempts, second.error) == (False, 0, "sender closed")
    assert "the sender is closed" in caplog.text


def test_deliveries_are_bounded_and_many_notifications_all_arrive(receiver):
    with sender(history=5, workers=3) as s:
        for i in range(12):
            s.send(webhook(f"{receiver.url}/{i}"), FAILURE)
        assert s.flush(5)
        assert len(s.deliveries) == 5 and all(d.ok for d in s.deliveries)
    assert sorted(int(r.path[1:]) for r in receiver.wait_for(12)) == list(range(12))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B0/secret", "https://hooks.slack.com"),
        ("http://user:pw@10.0.0.1:8080/x?token=1", "http://10.0.0.1:8080"),
        ("not a url", "(invalid url)"),
        (None, "(no url)"),
    ],
)
def test_logged_urls_are_redacted_to_scheme_host_and_port(url, shown):
    assert redact_url(url) == shown

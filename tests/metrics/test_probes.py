"""The probe server (/metrics, /healthz, /readyz) and the metrics recorded outside a run: notifications."""

from __future__ import annotations

import urllib.request
from datetime import datetime, timezone

import pytest
from prometheus_client import CollectorRegistry, Counter

from kubedag.core.notify import Notification, static_resolver
from kubedag.core.spec.models import Notifier
from kubedag.http.notify import WebhookSender
from kubedag.http.probes import ProbeServer
from tests.metrics.scrape import parse, probe
from tests.notify.receiver import WebhookReceiver


@pytest.fixture
def server():
    with ProbeServer("127.0.0.1", 0) as probes:
        yield probes


def test_not_ready_while_starting_then_ready_when_every_check_passes(server):
    assert probe(server.url, "/readyz") == (503, "not ready: starting\n")
    assert probe(server.url, "/healthz") == (200, "ok\n")
    state = {"db": "metadata DB unreachable: OperationalError: connection refused"}
    server.set_checks(ready=[lambda: None, lambda: state["db"]])
    assert probe(server.url, "/readyz") == (503, "not ready: metadata DB unreachable: OperationalError: connection refused\n")
    state["db"] = None
    assert probe(server.url, "/readyz") == (200, "ok\n")


def test_a_check_that_raises_fails_with_one_line_naming_the_exception_and_no_traceback(server):
    def db_check() -> str | None:
        raise RuntimeError("postgresql://kubedag:s3cret@db/kubedag\nTraceback ...")

    server.set_checks(ready=[db_check], alive=[lambda: "the controller's event loop did not answer within 10s"])
    assert probe(server.url, "/readyz") == (503, "not ready: db_check raised RuntimeError\n")
    assert probe(server.url, "/healthz") == (503, "not alive: the controller's event loop did not answer within 10s\n")


def test_metrics_in_text_or_openmetrics_as_the_scraper_asks_and_404_elsewhere():
    registry = CollectorRegistry()
    Counter("kubedag_test_things_total", "Things.", ["kind"], registry=registry).labels("a").inc(3)
    with ProbeServer("127.0.0.1", 0, registry=registry) as server:
        assert parse(urllib.request.urlopen(server.url + "/metrics").read().decode()).value(
            "kubedag_test_things_total", kind="a") == 3
        request = urllib.request.Request(server.url + "/metrics", headers={"Accept": "application/openmetrics-text"})
        with urllib.request.urlopen(request) as response:
            assert response.headers["Content-Type"].startswith("application/openmetrics-text")
            assert response.read().decode().endswith("# EOF\n")
        status, body = probe(server.url, "/nothing")
    assert status == 404 and "/metrics" in body


def test_notifications_sent_and_failed_are_counted_by_event_and_kind():
    from prometheus_client import REGISTRY

    def count(result: str) -> float:
        return REGISTRY.get_sample_value("kubedag_notifications_total",
                                         {"kind": "webhook", "event": "task_failure", "result": result}) or 0.0

    note = Notification(event="task_failure", dag_id="etl", run_id="manual__1", task_id="load", try_number=1,
                        state="failed", reason="exit code 1", logical_date=datetime(2026, 11, 1, tzinfo=timezone.utc))
    sent, failed = count("sent"), count("failed")
    with WebhookReceiver() as ok, WebhookReceiver(fail_first=1, fail_status=403) as refusing:
        with WebhookSender(static_resolver({}), retries=0) as sender:
            sender.send(Notifier.model_validate({"webhook": {"url": ok.url + "/a"}}), note)
            sender.send(Notifier.model_validate({"webhook": {"url": refusing.url + "/b"}}), note)
            assert sender.flush(timeout=30)
    assert (count("sent") - sent, count("failed") - failed) == (1, 1)

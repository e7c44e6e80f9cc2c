"""The chart's metrics: the controller's metrics port and readiness probe, the metrics Service, the optional
ServiceMonitor and the optional Grafana dashboard ConfigMap."""

from __future__ import annotations

import json
import re

import pytest

from tests.helm.chart import CHART, NAMESPACE, RenderError, render

DB = {"database": {"url": "postgresql://kubedag:pw@db.example.com:5432/kubedag"}}


def test_the_controller_serves_metrics_and_is_ready_by_readyz_on_that_port():
    rendered = render(DB)
    ports = {p["name"]: p["containerPort"] for p in rendered.controller["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    assert rendered.env["KUBEDAG_METRICS_PORT"]["value"] == "9090"
    readiness = rendered.controller["readinessProbe"]
    assert readiness["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert readiness["timeoutSeconds"] == 5 and readiness["periodSeconds"] == 10


def test_a_metrics_service_selects_the_controller_and_no_service_monitor_by_default():
    rendered = render(DB)
    service = rendered.one("Service", "kubedag-metrics", NAMESPACE)
    selector = rendered.deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]
    assert service["spec"]["type"] == "ClusterIP"
    assert rendered.of_kind("ServiceMonitor") == [] and rendered.of_kind("ConfigMap") == []


def test_the_service_monitor_scrapes_the_metrics_service():
    rendered = render({**DB, "metrics": {"serviceMonitor": {"enabled": True, "interval": "15s",
                                                             "labels": {"release": "prometheus"}}}})
    monitor = rendered.one("ServiceMonitor", "kubedag", NAMESPACE)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    service = rendered.one("Service", "kubedag-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s",
                                             "scrapeTimeout": "10s"}]
    assert "port-forward svc/kubedag-metrics 9090" in rendered.notes and "ServiceMonitor kubedag" in rendered.notes


def test_the_dashboard_configmap_carries_the_chart_dashboard_for_grafanas_sidecar():
    rendered = render({**DB, "metrics": {"grafanaDashboard": {"enabled": True}}})
    config_map = rendered.one("ConfigMap", "kubedag-dashboard", NAMESPACE)
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "dashboards" / "kubedag.json").read_text())
    assert json.loads(config_map["data"]["kubedag.json"]) == shipped


@pytest.mark.parametrize(("values", "message"), [
    ({"metrics": {"port": 8080}}, "metrics.port and controller.livenessPort must differ (both are 8080)"),
    ({"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}},
     "metrics.serviceMonitor.enabled needs metrics.service.enabled"),
])
def test_metrics_values_that_cannot_work_fail_with_a_message(values, message):
    with pytest.raises(RenderError, match=re.escape(message)):
        render({**DB, **values})

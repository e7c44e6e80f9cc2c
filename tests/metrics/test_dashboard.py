"""The Grafana dashboard shipped in the chart and the README's Metrics table name exactly the metrics kubedag
exports (:mod:`kubedag.app.metrics`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import kubedag.app.metrics  # noqa: F401 - registers kubedag's metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "helm" / "kubedag" / "dashboards" / "kubedag.json"
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}


def exported() -> dict[str, set[str]]:
    """kubedag's metric families -> the sample names each exports (what a PromQL query can name)."""
    return {family.name: {family.name + suffix for suffix in SUFFIXES[family.type]}
            for family in REGISTRY.collect() if family.name.startswith("kubedag_")}


def names_in(text: str) -> set[str]:
    return set(re.findall(r"\bkubedag_[a-z0-9_]+", text))


def queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


def test_the_dashboard_is_valid_json_with_panels_each_querying_prometheus():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "kubedag" and dashboard["uid"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 10
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["title"] and panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert all(t["expr"].count("(") == t["expr"].count(")") for t in panel["targets"]), panel["title"]


def test_every_query_of_the_dashboard_names_a_metric_kubedag_exports():
    samples = set().union(*exported().values())
    for expr in queries():
        named = names_in(expr)
        assert named, expr
        assert named <= samples, f"{expr}: not exported: {sorted(named - samples)}"


def test_the_dashboard_shows_what_operators_watch():
    used = set().union(*(names_in(e) for e in queries()))
    for sample in ("kubedag_dag_run_finished_total", "kubedag_dag_run_duration_seconds_bucket",
                   "kubedag_task_instance_successor_latency_seconds_bucket", "kubedag_workqueue_depth",
                   "kubedag_reconcile_errors_total", "kubedag_kube_api_requests_total",
                   "kubedag_db_write_duration_seconds_bucket", "kubedag_db_writes_pending",
                   "kubedag_pool_open_slots", "kubedag_pool_occupied_slots"):
        assert sample in used, sample


def test_the_readme_metrics_table_lists_every_exported_metric_and_only_those():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `kubedag_")]
    listed = {re.match(r"\| `(kubedag_[a-z0-9_]+)`", row).group(1) for row in rows}
    families = exported()
    by_sample = {name: family for family, samples in families.items() for name in samples | {family}}
    assert {by_sample.get(name, name) for name in listed} == set(families)
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 4 and all(cells), row  # metric, type, labels, Airflow equivalent

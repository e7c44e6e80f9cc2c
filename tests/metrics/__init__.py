"""Prometheus metrics, probes and the Grafana dashboard."""

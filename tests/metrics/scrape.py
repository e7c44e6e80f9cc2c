"""Scraping ``/metrics`` as Prometheus does, and reading samples by name and labels."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Samples:
    """One scrape: ``(sample name, sorted labels) -> value``."""

    values: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    def value(self, metric: str, /, **labels: str) -> float:
        """The sum of the samples called ``metric`` whose labels include ``labels`` (0 when there is none)."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.values.items() if n == metric and want <= set(ls))

    def has(self, metric: str, /, **labels: str) -> bool:
        """Whether a sample called ``metric`` with ``labels`` exists."""
        want = set(labels.items())
        return any(n == metric and want <= set(ls) for (n, ls) in self.values)

    def label_values(self, name: str, label: str) -> set[str]:
        """The values ``label`` takes among the samples called ``name``."""
        return {dict(ls)[label] for (n, ls) in self.values if n == name and label in dict(ls)}

    def __sub__(self, before: Samples) -> Samples:
        """The change since ``before`` (counters and histograms move up; new series count from 0)."""
        return Samples({k: v - before.values.get(k, 0.0) for k, v in self.values.items()})


def parse(text: str) -> Samples:
    """Samples of a Prometheus text exposition."""
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return Samples(values)


def scrape(base_url: str) -> Samples:
    """``GET <base_url>/metrics``, parsed."""
    with urllib.request.urlopen(base_url + "/metrics", timeout=10) as response:
        assert response.status == 200
        return parse(response.read().decode())


def probe(base_url: str, path: str) -> tuple[int, str]:
    """``GET <base_url><path>``: the HTTP status and body text (a 503 is returned, not raised)."""
    try:
        with urllib.request.urlopen(base_url + path, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()

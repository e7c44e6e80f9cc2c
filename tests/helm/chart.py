"""Render helm/kubedag offline with Helm's own engine, for the chart tests.

Rendering uses `helm-python-sdk <https://pypi.org/project/helm-python-sdk/>`_ (import name
``helm_python``): ctypes bindings to a C library built from Helm v4's official Go SDK, shipped inside the
wheel, so ``Chart.render`` is exactly ``helm template`` (same template functions, same ``fail``, same
values coalescing) with no ``helm`` binary, Go toolchain or cluster. ``lookup`` returns nothing, as in
``helm template``. It is pinned in pyproject's ``test`` extra; where no wheel exists (Intel macOS) the
tests are skipped with that reason.
"""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip(
    "helm_python",
    reason="helm-python-sdk is not installed (pyproject's test extra; no wheel for this platform?)",
)

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "kubedag"
RELEASE = "kubedag"
NAMESPACE = "kubedag-system"


@dataclasses.dataclass
class Rendered:
    """The objects of one render, with lookups by kind and name."""

    objects: list[dict[str, Any]]
    notes: str
    sources: dict[str, str]  # template path -> rendered text

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None, namespace: str | None = None) -> dict[str, Any]:
        found = [
            o for o in self.of_kind(kind)
            if (name is None or o["metadata"]["name"] == name)
            and (namespace is None or o["metadata"].get("namespace") == namespace)
        ]
        assert len(found) == 1, f"expected one {kind} {name or ''} {namespace or ''}, got {len(found)}"
        return found[0]

    def kinds(self) -> list[str]:
        return sorted(o["kind"] for o in self.objects)

    @property
    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment")

    @property
    def controller(self) -> dict[str, Any]:
        containers = self.deployment["spec"]["template"]["spec"]["containers"]
        return next(c for c in containers if c["name"] == "controller")

    @property
    def env(self) -> dict[str, dict[str, Any]]:
        """The controller container's env, by name (each entry as rendered: ``value`` or ``valueFrom``)."""
        entries = self.controller["env"]
        names = [e["name"] for e in entries]
        assert len(names) == len(set(names)), f"duplicate env vars: {names}"
        return {e["name"]: e for e in entries}

    def secret_data(self, name: str) -> dict[str, str]:
        secret = self.one("Secret", name)
        return {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}


_chart: Any = None


def chart() -> Any:
    """The chart, loaded once per session (a handle into the native library)."""
    global _chart
    if _chart is None:
        _chart = helm.Chart.load(CHART)
    return _chart


def render(values: dict[str, Any] | None = None, *, namespace: str = NAMESPACE, release: str = RELEASE) -> Rendered:
    """``helm template RELEASE helm/kubedag --namespace NAMESPACE`` with ``values`` (as ``-f``)."""
    manifests = chart().render(values or {}, name=release, namespace=namespace, is_install=True)
    objects: list[dict[str, Any]] = []
    notes = ""
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append(doc)
    return Rendered(objects=objects, notes=notes, sources=manifests)


def crds() -> list[dict[str, str]]:
    """The chart's ``crds/`` files as Helm loads them: ``[{name, filename, data}]``."""
    return chart().crds


RenderError = helm.HelmRenderError
lint = helm.lint

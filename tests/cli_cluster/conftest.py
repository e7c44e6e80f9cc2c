"""Fixtures of the cluster CLI tests: the Kubernetes API emulator serving kubedag's CRDs, a kubeconfig
pointing at it, and ``kubedag`` invoked in-process with Typer's CliRunner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kubedag.cli.main import app
from tests.k8s.conftest import _no_leaks  # noqa: F401 - every emulator thread and pod process must end
from tests.k8s.emulator.fixtures import fake_kubelet, k8s_api, k8s_api_options  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
DAGS = "kubedag.io/v1alpha1/dags"
DAGRUNS = "kubedag.io/v1alpha1/dagruns"


@pytest.fixture
def k8s_crd_files() -> list[Path]:
    """The emulator serves the project's CRDs (``dags.kubedag.io``, ``dagruns.kubedag.io``)."""
    return sorted((ROOT / "crds").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real kubeconfig, cluster or metadata DB of the machine running the tests is ever used."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KUBEDAG_HOME", str(tmp_path / "kubedag-home"))
    for name in ("KUBECONFIG", "KUBEDAG_DATABASE_URL", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class Result:
    """What the user sees: exit code, stdout, stderr."""

    code: int
    out: str
    err: str


@pytest.fixture
def kubeconfig(k8s_api: Any, tmp_path: Path) -> Path:
    return k8s_api.kubeconfig(tmp_path / "kubeconfig")


def run_cli(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback the user would see: the test fails with it
    return Result(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def kubedag(kubeconfig: Path) -> Callable[..., Result]:
    """``kubedag(*args)``: the CLI with ``--kubeconfig`` pointing at the emulator (namespace ``default``)."""

    def invoke(*args: str) -> Result:
        return run_cli(*args, "--kubeconfig", str(kubeconfig))

    return invoke


def dag_manifest(name: str, namespace: str = "default", schedule: str | None = "@daily", paused: bool = False,
                 tasks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "kubedag.io/v1alpha1", "kind": "DAG",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"schedule": schedule, "startDate": "2026-11-01", "paused": paused,
                 "tasks": tasks or [{"name": "extract", "command": ["echo", "hi"]}]},
    }


def ready_condition(status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": "Ready", "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-11-01T10:00:00Z", "observedGeneration": 1}

"""The real-control-plane side of ``benchmarks/controller.py --server real``.

A control plane from ``scripts/controlplane`` (built beforehand), the project's CRDs, the fake kubelet as its
node, and a ServiceAccount ``kubedag-bench`` (cluster-admin, token from the TokenRequest API) for the controller
process, so that its requests are told apart from the benchmark's own in the API server's audit log. The same
figures as on the emulator are taken from:

* pod creations: the audit log's ``requestReceivedTimestamp`` of each ``create pods`` by the controller;
* pods turning ``Succeeded``: the fake kubelet, when the API server has answered its status write;
* the controller's API requests: audit events of its identity (one per request, watches included).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.controlplane.cluster import ControlPlane, RealApiServer
from tests.controlplane.fixtures import start_kubelet
from tests.controlplane.servers import apply_crds
from tests.k8s.emulator import kubelet as kubelet_module

BENCH_SA = "kubedag-bench"
BENCH_USER = f"system:serviceaccount:default:{BENCH_SA}"


class RealRecorder:
    """Pod creations (audit log) and pods turning Succeeded (the fake kubelet), wall-clock seconds."""

    def __init__(self, audit_log: Path) -> None:
        self.audit_log = audit_log
        self.succeeded: dict[str, float] = {}

    def install(self) -> None:
        """Time the fake kubelet's status writes that report ``Succeeded``."""
        original = kubelet_module.FakeKubelet._patch_pod_status
        recorder = self

        async def patch_pod_status(self: Any, namespace: str, name: str, patch: dict[str, Any]) -> None:
            await original(self, namespace, name, patch)
            if (patch.get("status") or {}).get("phase") == "Succeeded":
                recorder.succeeded.setdefault(name, time.time())

        kubelet_module.FakeKubelet._patch_pod_status = patch_pod_status  # type: ignore[method-assign]

    def _events(self) -> Iterator[dict[str, Any]]:
        with self.audit_log.open("rb") as f:
            for line in f:
                event = json.loads(line)
                if event.get("user", {}).get("username") == BENCH_USER:
                    yield event

    @property
    def created(self) -> dict[str, float]:
        """Pod name -> when the API server received its creation."""
        out: dict[str, float] = {}
        for e in self._events():
            ref = e.get("objectRef") or {}
            if e["verb"] == "create" and ref.get("resource") == "pods" and e["stage"] == "ResponseComplete" \
                    and (e.get("responseStatus") or {}).get("code") == 201:
                out.setdefault(ref["name"], _seconds(e["requestReceivedTimestamp"]))
        return out

    def requests(self) -> int:
        """Requests the controller made so far (distinct audit IDs)."""
        return len({e["auditID"] for e in self._events()})


def _seconds(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _bench_kubeconfig(api: RealApiServer, path: Path) -> Path:
    """A cluster-admin ServiceAccount for the controller process, and a kubeconfig with a TokenRequest token."""
    api.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": BENCH_SA, "namespace": "default"}})
    api.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": BENCH_SA},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": BENCH_SA, "namespace": "default"}]})
    token = api.request("POST", api.path("v1/serviceaccounts", BENCH_SA, "default", "token"),
                        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                         "spec": {"expirationSeconds": 7200}})["status"]["token"]
    config = yaml.safe_load(api.kubeconfig_path.read_text())
    config["users"][0]["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@contextlib.contextmanager
def real_cluster() -> Iterator[tuple[RealApiServer, RealRecorder, Path]]:
    """A started control plane with the CRDs and the fake kubelet: (admin client, recorder, controller kubeconfig)."""
    with tempfile.TemporaryDirectory(prefix="kubedag-bench-") as tmp:
        plane = ControlPlane(Path(tmp) / "controlplane").start()
        try:
            api = plane.api()
            apply_crds(api)
            recorder = RealRecorder(plane.state_dir / "logs" / "audit.log")
            recorder.install()
            workdir = Path(tmp) / "kubelet"
            workdir.mkdir()
            kubelet = start_kubelet(plane, workdir)
            try:
                yield api, recorder, _bench_kubeconfig(api, Path(tmp) / "controller.kubeconfig")
            finally:
                kubelet.stop()
        finally:
            plane.stop()

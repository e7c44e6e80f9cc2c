"""Helpers for the pure Kubernetes-side tests: pods shaped as a kubelet writes them, DAGs, a run driver.

Pods are plain JSON dicts as the API server returns them (``status.phase``, ``containerStatuses[0]``
named ``base`` with ``state.waiting|running|terminated``, RFC 3339 times ending in ``Z``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from kubedag.core import engine
from kubedag.core import naming as names, runpass
from kubedag.k8s import observe
from kubedag.core.spec.loader import parse_dag

UTC = timezone.utc
T0 = datetime(2026, 3, 10, 5, 30, tzinfo=UTC)
"""The DAGRun's creationTimestamp in most tests (a Tuesday)."""
NS = "team-a"
RUN_NAME = "etl-manual-20260310t053000-abcde"


def rfc(value: datetime) -> str:
    """A UTC instant as the API server writes it: ``2026-03-10T05:30:00Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------- container states
def waiting(reason: str = "ContainerCreating", message: str | None = None) -> dict[str, Any]:
    w: dict[str, Any] = {"reason": reason}
    if message is not None:
        w["message"] = message
    return {"waiting": w}


def running(started: datetime) -> dict[str, Any]:
    return {"running": {"startedAt": rfc(started)}}


def terminated(exit_code: int, started: datetime | None, finished: datetime | None, reason: str | None = None,
               message: str | None = None) -> dict[str, Any]:
    t: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        "startedAt": rfc(started) if started else None,
        "finishedAt": rfc(finished) if finished else None,
        "containerID": "containerd://4f2c9a",
    }
    if message is not None:
        t["message"] = message
    return {"terminated": t}


def pod(
    task_id: str,
    try_number: int,
    phase: str = "Pending",
    state: Mapping[str, Any] | None = None,
    *,
    dag_id: str = "etl",
    created: datetime = T0,
    node: str | None = "worker-1",
    reason: str | None = None,
    message: str | None = None,
    deletion: datetime | None = None,
    active_deadline: int | None = None,
    uid: bool = True,
) -> dict[str, Any]:
    """A pod of try ``try_number`` of ``task_id`` as the API server returns it."""
    name = names.pod_name(dag_id, RUN_NAME, task_id, try_number)
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NS,
        "creationTimestamp": rfc(created),
        "resourceVersion": "1234",
        "labels": names.pod_labels(dag_id, RUN_NAME, task_id, try_number),
    }
    if uid:
        meta["uid"] = f"uid-{task_id}-{try_number}"
    if deletion is not None:
        meta["deletionTimestamp"] = rfc(deletion)
        meta["deletionGracePeriodSeconds"] = 30
    spec: dict[str, Any] = {
        "containers": [{"name": "base", "image": "busybox:1.36", "command": ["sh", "-c", "true"]}],
        "restartPolicy": "Never",
    }
    if node is not None:
        spec["nodeName"] = node
    if active_deadline is not None:
        spec["activeDeadlineSeconds"] = active_deadline
    status: dict[str, Any] = {"phase": phase, "qosClass": "BestEffort"}
    if node is not None:
        status["hostIP"] = "10.0.0.7"
        status["startTime"] = rfc(created + timedelta(seconds=1))
    if reason is not None:
        status["reason"] = reason
    if message is not None:
        status["message"] = message
    if state is not None:
        status["containerStatuses"] = [{
            "name": "base",
            "image": "docker.io/library/busybox:1.36",
            "imageID": "",
            "ready": "running" in state,
            "restartCount": 0,
            "started": "running" in state,
            "lastState": {},
            "state": dict(state),
        }]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


# ------------------------------------------------------------------------------------------- DAGs
def manifest(tasks: list[dict[str, Any]], name: str = "etl", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubedag.io/v1alpha1",
        "kind": "DAG",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"defaults": {"image": "busybox:1.36"}, **spec, "tasks": tasks},
    }


def dag_of(tasks: list[dict[str, Any]], name: str = "etl", **spec: Any):
    return parse_dag(manifest(tasks, name, **spec))


def run_body(dag_name: str = "etl", created: datetime = T0, spec: Mapping[str, Any] | None = None,
             status: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A DAGRun object as ``kubectl create`` leaves it (only ``dagName`` unless given)."""
    body: dict[str, Any] = {
        "apiVersion": "kubedag.io/v1alpha1",
        "kind": "DAGRun",
        "metadata": {"name": RUN_NAME, "namespace": NS, "uid": "run-uid", "generation": 1,
                     "creationTimestamp": rfc(created), "resourceVersion": "99"},
        "spec": {"dagName": dag_name, **(spec or {})},
    }
    if status is not None:
        body["status"] = dict(status)
    return body


def pod_name_of(dag_id: str = "etl"):
    return lambda task_id, try_number: names.pod_name(dag_id, RUN_NAME, task_id, try_number)


# ------------------------------------------------------------------------------------------ driver
@dataclass
class Cluster:
    """What the controller holds between passes: the run, its TIs, its pods and ``created``.

    :meth:`apply` carries out a :class:`~kubedag.core.runpass.PassResult` as the controller does: the
    run and task instances are stored, each requested pod is created (Pending, ``created`` set) and each
    killed pod deleted.
    """

    dag: Any
    run: engine.DagRun
    tis: dict[str, engine.TaskInstance] = field(default_factory=dict)
    pods: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)

    def step(self, now: datetime, **kw: Any) -> runpass.PassResult:
        name_of = kw.pop("pod_name", None) or pod_name_of(self.dag.dag_id)
        timeout = kw.pop("image_pull_timeout", timedelta(minutes=5))
        return runpass.run_pass(self.dag, self.run, self.tis, observe.observe_pods(self.pods, now, timeout), self.created, now,
                                name_of=name_of, lost=lambda t, n: observe.pod_lost(name_of(t, n)), **kw)

    def apply(self, result: runpass.PassResult, now: datetime) -> None:
        self.run = result.run
        self.tis = dict(result.tis)
        for req in result.create:
            self.created[req.task_id] = req.try_number
            self.pods[(req.task_id, req.try_number)] = pod(
                req.task_id, req.try_number, "Pending", waiting(), dag_id=self.dag.dag_id, created=now, node=None
            )
        for kill in result.kill:
            self.pods.pop((kill.task_id, kill.try_number), None)

    def settle(self, now: datetime, **kw: Any) -> runpass.PassResult:
        """One pass, applied, then the fixed point checked: the same inputs again ask for nothing.

        ``free_slots`` is the number of tries that may start now; the second pass gets what is left.
        """
        result = self.step(now, **kw)
        self.apply(result, now)
        if kw.get("free_slots") is not None:  # the slots left after applying (as the controller counts them)
            kw["free_slots"] = max(0, kw["free_slots"] - len(result.create))
        again = self.step(now, **kw)
        assert again.idle, ("not a fixed point", again)
        assert again.run == self.run
        return result

    def set_pod(self, task_id: str, try_number: int, phase: str, state: Mapping[str, Any] | None, **kw: Any) -> None:
        old = self.pods.get((task_id, try_number))
        created = kw.pop("created", None) or (
            datetime.fromisoformat(old["metadata"]["creationTimestamp"].replace("Z", "+00:00")) if old else T0
        )
        kw.setdefault("node", "worker-1")
        self.pods[(task_id, try_number)] = pod(task_id, try_number, phase, state, dag_id=self.dag.dag_id,
                                               created=created, **kw)

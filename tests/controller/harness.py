"""Run the real controller (kopf + kubedag) in a thread against the API emulator, for integration tests."""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import yaml

from kubedag.http.notify import WebhookSender
from kubedag.k8s.client import Connection
from kubedag.cli.controller import serve
from kubedag.k8s.manager import ControllerConfig, Manager

DAGRUNS = 'kubedag.io/v1alpha1/dagruns'
DAGS = 'kubedag.io/v1alpha1/dags'
NS = 'default'
ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]


class RunningController:
    """``with RunningController(api, db_url) as c:`` runs the controller until the block ends.

    ``stop()`` then ``start()`` again simulates a controller restart (memory lost, DB and cluster kept).
    """

    def __init__(self, api: Any, db_url: str, **config: Any) -> None:
        self.api = api
        self.db_url = db_url
        defaults = dict(namespaces=[NS], liveness_port=None, pod_retention=timedelta(minutes=10),
                        image_pull_timeout=timedelta(seconds=2), workers=4)
        defaults.update(getattr(api, 'controller_config', {}))  # the server's fixture may adjust (e.g. cluster-wide)
        self.config = ControllerConfig(database_url=db_url, **{**defaults, **config})
        self.thread: threading.Thread | None = None
        self.controller: Manager | None = None
        self.error: BaseException | None = None

    def start(self, **changes: Any) -> RunningController:
        if changes:
            self.config = replace(self.config, **changes)
        self.stop_flag, ready = threading.Event(), threading.Event()

        def run() -> None:
            try:
                connection = self.api.connection() if hasattr(self.api, 'connection') else Connection(server=self.api.url)
                self.controller = asyncio.run(serve(self.config, connection=connection,
                                                    stop_flag=self.stop_flag, ready_flag=ready,
                                                    make_sender=WebhookSender))
            except BaseException as exc:  # noqa: BLE001 - reported by stop()
                self.error = exc
                ready.set()

        self.thread = threading.Thread(target=run, name='kopf-under-test', daemon=True)
        self.thread.start()
        assert ready.wait(30), 'the controller did not become ready'
        assert self.error is None, self.error
        return self

    def stop(self) -> None:
        if self.thread is None:
            return
        self.stop_flag.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), 'the controller did not stop'
        self.thread = None
        if self.error is not None:
            raise self.error

    def __enter__(self) -> RunningController:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def dag_manifest(name: str, tasks: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A DAG custom resource with the given tasks (image defaulted)."""
    defaults = spec.pop('defaults', {})
    return {
        'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'DAG',
        'metadata': {'name': name, 'namespace': NS},
        'spec': {'defaults': {'image': 'busybox:1.36', **defaults}, 'tasks': tasks, **spec},
    }


def manual_run(dag: str, name: str, **spec: Any) -> dict[str, Any]:
    """A DAGRun created by hand, as with ``kubectl create``."""
    return {'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'DAGRun',
            'metadata': {'name': name, 'namespace': NS}, 'spec': {'dagName': dag, **spec}}


def wait_until(check: Callable[[], Any], timeout: float = 30.0, what: str = 'condition') -> Any:
    """Poll ``check()`` until truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f'{what} not reached in {timeout}s')
        time.sleep(0.05)


def run_phase(api: Any, name: str) -> str | None:
    obj = api.get(DAGRUNS, name, NS)
    return None if obj is None else (obj.get('status') or {}).get('phase')


def wait_phase(api: Any, name: str, phases: tuple[str, ...] = ('success', 'failed'), timeout: float = 30.0) -> dict[str, Any]:
    """Wait until the DAGRun reaches one of ``phases``; return it."""
    wait_until(lambda: run_phase(api, name) in phases, timeout, f'DAGRun {name} in {phases}')
    return api.get(DAGRUNS, name, NS)


def load_yaml(path: Any) -> dict[str, Any]:
    with open(path) as f:
        return yaml.safe_load(f)

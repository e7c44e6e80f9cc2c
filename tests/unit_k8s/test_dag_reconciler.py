"""The DAG reconciler's view of a DAG for its runs and trigger tasks: valid, missing, invalid, or not validated yet."""

from __future__ import annotations

from kubedag.k8s.dags import DagReconciler, ParsedDAG
from kubedag.k8s.informers import Cache
from tests.unit_k8s.podkit import T0, dag_of, manifest


def test_a_dag_not_validated_yet_is_neither_missing_nor_invalid():
    """Right after a restart a run must wait for its DAG's validation, not be told a valid DAG is invalid."""
    cache = Cache()
    dags = DagReconciler(cache, lambda: None, store=None, store_call=None, events=None, clock=lambda: T0,
                         phase_of=None, last_run=None, run_waits=None, seen_run=None)
    assert dags.dag_of("default", "etl") == "does not exist"
    cache.dags[("default", "etl")] = {**manifest([{"name": "a", "command": ["true"]}]),
                                      "metadata": {"name": "etl", "namespace": "default", "generation": 2}}
    assert dags.dag_of("default", "etl") is None  # listed, not validated yet
    dags.parsed[("default", "etl")] = ParsedDAG(1, dag_of([{"name": "a", "command": ["true"]}]))
    assert dags.dag_of("default", "etl") is None  # validated at an older generation
    dags.parsed[("default", "etl")] = ParsedDAG(2, None, ["spec.schedule: bad"])
    assert dags.dag_of("default", "etl") == "is invalid"
    dags.parsed[("default", "etl")] = ParsedDAG(2, dag_of([{"name": "a", "command": ["true"]}]))
    assert dags.dag_of("default", "etl").dag_id == "etl"

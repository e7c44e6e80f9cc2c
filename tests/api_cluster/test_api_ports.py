"""The ports the API gets on a cluster (:func:`kubedag.k8s.api_ports.cluster_api_ports`): concurrent requests do
not mix their runs."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from kubedag.app import operations as ops
from kubedag.k8s.api_ports import cluster_api_ports
from kubedag.k8s.kubeapi import ClusterRuns
from tests.api_cluster.conftest import DAGRUNS, dag

WHEN = datetime(2026, 11, 1, tzinfo=timezone.utc)


def test_two_clears_at_once_each_reach_their_own_run(k8s_api, kube):
    for name in ('orders', 'sales'):
        k8s_api.create(dag(name, [{'name': 'a', 'command': ['true']}]))
        ops.trigger(ClusterRuns(kube), name, logical_date=WHEN, run_id='manual__same')
    ports = cluster_api_ports(kube)
    barrier = threading.Barrier(2)
    loaded = ports.runs.load_run

    def load_then_wait(dag_, run_id):  # both runs are loaded before either clear is applied
        result = loaded(dag_, run_id)
        barrier.wait(5)
        return result

    ports.runs.load_run = load_then_wait
    errors = []

    def clear(name):
        try:
            ops.clear(ports.dags.dag(name), ports.runs, 'manual__same', ['a'], now=WHEN)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=clear, args=(n,)) for n in ('orders', 'sales')]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    for run in k8s_api.list(DAGRUNS, 'default'):
        assert [a['type'] for a in run['spec'].get('actions', [])] == ['clear'], run['spec']['dagName']


def test_an_invalid_dag_cannot_be_triggered_and_says_why(k8s_api, kube):
    k8s_api.create(dag('broken', [{'name': 'a', 'command': ['true'], 'dependsOn': ['nope']}]))
    ports = cluster_api_ports(kube)
    with pytest.raises(ops.OperationError, match="DAG 'broken' is invalid: .*nope"):
        ports.dags.dag('broken')
    assert ports.dags.dags() == []

"""app.pools: open slots across runs, as Airflow's Pool.open_slots."""

from __future__ import annotations

from kubedag.app.pools import pool_free, pool_usage
from kubedag.core import engine
from kubedag.core.spec.loader import parse_dag
from kubedag.core.states import TaskInstanceState as S


def dag(name, tasks):
    return parse_dag({"apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": name},
                      "spec": {"tasks": tasks}})


def test_slots_are_counted_across_runs_and_dags_by_pool_slots():
    a = dag("a", [{"name": "x", "command": ["true"], "pool": "db", "poolSlots": 2},
                  {"name": "y", "command": ["true"], "pool": "db"}])
    b = dag("b", [{"name": "z", "command": ["true"], "pool": "db"}])
    runs = [(a, {"x": engine.TaskInstance("x", S.RUNNING, 1), "y": engine.TaskInstance("y", S.SUCCESS, 1)}),
            (b, {"z": engine.TaskInstance("z", S.QUEUED, 1)})]
    usage = pool_usage({"db": 4}, runs)
    assert (usage["db"].queued, usage["db"].running, usage["db"].open) == (1, 2, 1)
    assert pool_free({"db": 4}, runs)["db"] == 1


def test_default_pool_always_exists_and_a_missing_pool_has_no_slots():
    a = dag("a", [{"name": "x", "command": ["true"], "pool": "gone"}, {"name": "y", "command": ["true"]}])
    free = pool_free({}, [(a, {"x": engine.TaskInstance("x", S.QUEUED, 1), "y": engine.TaskInstance("y", S.RUNNING, 1)})])
    assert free["default-pool"] == 127
    assert free["gone"] == -1

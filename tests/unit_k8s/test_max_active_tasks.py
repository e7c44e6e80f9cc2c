"""maxActiveTasks across the runs of one DAG: the free slots the controller hands to the run pass.

Airflow counts ``max_active_tasks`` per DAG, over all its runs. ``run_pass(free_slots=...)`` (and the
engine's ``plan``) take ``free_slots`` as the number of tries that may *start* in this pass; the controller
computes it with :func:`kubedag.app.reconcile.free_task_slots` over the open runs of the DAG. No cluster, no DB.
"""

from __future__ import annotations

from datetime import timedelta

from kubedag.app.reconcile import free_task_slots
from kubedag.core import runpass
from kubedag.k8s import observe
from tests.unit_k8s.podkit import T0, Cluster, dag_of, run_body, terminated

TASKS = [{"name": "r1", "command": ["true"]}, {"name": "r2", "command": ["true"]}] + [
    {"name": f"x{i}", "command": ["true"], "dependsOn": ["r1"]} for i in range(4)
]


def two_runs():
    dag = dag_of(TASKS, maxActiveTasks=4)
    clusters = {}
    for name, created in (("etl-a", T0), ("etl-b", T0 + timedelta(minutes=1))):
        body = run_body(created=created)
        body["metadata"]["name"] = name
        clusters[name] = Cluster(dag, observe.run_from_object(dag, body))
    return dag, clusters


def reconcile(dag, clusters, name, now):
    """What the DAGRun reconciler does with the slots: a pass with the DAG's free slots over every open run."""
    slots = free_task_slots(dag, (c.tis for c in clusters.values()))
    result = clusters[name].step(now, free_slots=slots)
    clusters[name].apply(result, now)
    return result


def active_total(clusters) -> int:
    return sum(runpass.active_count(c.tis) for c in clusters.values())


def test_free_slots_subtract_the_other_runs():
    dag, clusters = two_runs()
    now = T0 + timedelta(minutes=2)
    assert len(reconcile(dag, clusters, "etl-a", now).create) == 2  # r1, r2
    assert free_task_slots(dag, (c.tis for c in clusters.values())) == 2
    assert len(reconcile(dag, clusters, "etl-b", now).create) == 2
    assert active_total(clusters) == 4


def test_the_runs_of_a_dag_never_hold_more_than_max_active_tasks_together():
    dag, clusters = two_runs()
    now = T0 + timedelta(minutes=2)
    reconcile(dag, clusters, "etl-a", now)   # a: r1, r2
    reconcile(dag, clusters, "etl-b", now)   # b: r1, r2 -> 4 active, the limit
    clusters["etl-b"].set_pod("r1", 1, "Succeeded", terminated(0, now, now + timedelta(seconds=5)))
    now += timedelta(seconds=6)
    reconcile(dag, clusters, "etl-b", now)   # b: r1 done -> one slot free, x0..x3 ready
    assert active_total(clusters) <= dag.max_active_tasks

"""maxActiveTasks across the runs of one DAG: the free slots the controller hands to run_pass.

Airflow counts ``max_active_tasks`` per DAG, over all its runs. ``run_pass(free_slots=...)`` (and the
engine's ``plan``) take ``free_slots`` as the number of tries that may *start* in this pass. Only
``Controller._free_slots`` is used here: no cluster, no DB.
"""

from __future__ import annotations

from datetime import timedelta


from kubedag.core import runpass
from kubedag.k8s import observe
from kubedag.k8s.client import Connection
from kubedag.k8s.controller import Controller, ControllerConfig, RunState
from tests.unit_k8s.podkit import NS, T0, Cluster, dag_of, run_body, terminated

TASKS = [{"name": "r1", "command": ["true"]}, {"name": "r2", "command": ["true"]}] + [
    {"name": f"x{i}", "command": ["true"], "dependsOn": ["r1"]} for i in range(4)
]


def two_runs():
    dag = dag_of(TASKS, maxActiveTasks=4)
    controller = Controller(ControllerConfig(), Connection("https://k8s.invalid"), None, clock=lambda: T0)
    clusters = {}
    for name, created in (("etl-a", T0), ("etl-b", T0 + timedelta(minutes=1))):
        body = run_body(created=created)
        body["metadata"]["name"] = name
        run = observe.run_from_object(dag, body)
        clusters[name] = Cluster(dag, run)
        controller.states[(NS, name)] = RunState(run=run, tis={}, created={})
    return dag, controller, clusters


def reconcile(dag, controller, clusters, name, now):
    """What Controller.reconcile_run does with the slots: run_pass with _free_slots, result kept."""
    key = (NS, name)
    result = clusters[name].step(now, free_slots=controller._free_slots(key, dag))
    clusters[name].apply(result, now)
    controller.states[key].run, controller.states[key].tis = result.run, result.tis
    return result


def active_total(controller) -> int:
    return sum(runpass.active_count(s.tis) for s in controller.states.values())


def test_free_slots_subtract_the_other_runs():
    dag, controller, clusters = two_runs()
    now = T0 + timedelta(minutes=2)
    assert len(reconcile(dag, controller, clusters, "etl-a", now).create) == 2  # r1, r2
    assert controller._free_slots((NS, "etl-b"), dag) == 2
    assert len(reconcile(dag, controller, clusters, "etl-b", now).create) == 2
    assert active_total(controller) == 4


def test_the_runs_of_a_dag_never_hold_more_than_max_active_tasks_together():
    dag, controller, clusters = two_runs()
    now = T0 + timedelta(minutes=2)
    reconcile(dag, controller, clusters, "etl-a", now)   # a: r1, r2
    reconcile(dag, controller, clusters, "etl-b", now)   # b: r1, r2 -> 4 active, the limit
    clusters["etl-b"].set_pod("r1", 1, "Succeeded", terminated(0, now, now + timedelta(seconds=5)))
    now += timedelta(seconds=6)
    reconcile(dag, controller, clusters, "etl-b", now)   # b: r1 done -> one slot free, x0..x3 ready
    assert active_total(controller) <= dag.max_active_tasks

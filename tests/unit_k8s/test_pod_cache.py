"""The pod cache keeps every kubedag pod that exists (finished ones too, for ``podRetention``): it keeps only what
the controller reads of a pod, so that 10,000 kept pods do not hold 10,000 pod specs (issue 13: flat memory)."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from kubedag.core import naming as names
from kubedag.k8s import observe
from kubedag.k8s.informers import Cache
from kubedag.k8s.runguards import owned_by
from tests.unit_k8s.podkit import NS, RUN_NAME, T0, pod, running, terminated, waiting

PULL = timedelta(minutes=5)
START, END = T0 + timedelta(seconds=4), T0 + timedelta(seconds=64)


def heavy(p: dict) -> dict:
    """``p`` as a real cluster serves it: a big spec (env, volumes) and ``managedFields``."""
    p = copy.deepcopy(p)
    p["metadata"]["ownerReferences"] = [{"apiVersion": "kubedag.io/v1alpha1", "kind": "DAGRun", "name": RUN_NAME,
                                         "uid": "run-uid", "controller": True}]
    p["metadata"]["managedFields"] = [{"manager": "kubedag", "operation": "Update", "fieldsV1": {"f:spec": {}}}] * 5
    p["metadata"]["annotations"] = {"kubedag.io/rendered": "x" * 2000}
    p["spec"]["containers"][0]["env"] = [{"name": f"VAR_{i}", "value": "v" * 50} for i in range(40)]
    p["spec"]["volumes"] = [{"name": "xcom", "emptyDir": {}}]
    p["spec"]["tolerations"] = [{"key": "k", "operator": "Exists"}]
    return p


PODS = [
    pod("extract", 1, "Pending", None, node=None),
    pod("extract", 1, "Pending", waiting("ImagePullBackOff")),
    pod("extract", 1, "Pending", waiting("InvalidImageName")),
    pod("extract", 1, "Running", running(START)),
    pod("extract", 1, "Succeeded", terminated(0, START, END, message='{"rows": 3}')),
    pod("extract", 2, "Failed", terminated(137, START, END, reason="OOMKilled")),
    pod("extract", 1, "Failed", None, reason="Evicted", message="The node was low on resource: memory."),
    pod("extract", 1, "Failed", terminated(137, START, END), reason="DeadlineExceeded", active_deadline=60),
    pod("extract", 1, "Running", running(START), deletion=END),
]


def test_the_pod_cache_keeps_no_spec_env_volumes_or_managed_fields():
    cache = Cache()
    key = cache.store_pod("ADDED", heavy(pod("extract", 1, "Succeeded", terminated(0, START, END))))
    assert key == (NS, RUN_NAME)
    (cached,) = cache.pods[key].values()
    assert "containers" not in cached["spec"] and "volumes" not in cached["spec"]
    assert "managedFields" not in cached["metadata"] and "annotations" not in cached["metadata"]
    assert cached["spec"] == {"nodeName": "worker-1"}
    assert len(repr(cached)) < len(repr(heavy(pod("extract", 1, "Succeeded", terminated(0, START, END))))) / 4


@pytest.mark.parametrize("full", [heavy(p) for p in PODS], ids=lambda p: f"{p['status']['phase']}-{p['status'].get('reason')}")
def test_a_cached_pod_reads_as_the_pod_the_api_served(full):
    cache = Cache()
    key = cache.store_pod("MODIFIED", full)
    cached = cache.pods[key][full["metadata"]["name"]]
    for now in (T0, END, END + PULL + timedelta(minutes=1)):
        assert observe.observe_pod(cached, now, PULL) == observe.observe_pod(full, now, PULL)
    assert observe.pending_deadline(cached, PULL) == observe.pending_deadline(full, PULL)
    for uid in ("run-uid", "another-run", None):
        assert owned_by(cached, uid) == owned_by(full, uid)
    assert cached["metadata"]["labels"] == {k: v for k, v in full["metadata"]["labels"].items() if k.startswith("kubedag.io/")}
    assert cached["metadata"]["labels"][names.LABEL_RUN] == RUN_NAME


def test_a_newer_pod_replaces_the_cached_one_and_an_older_one_does_not():
    cache = Cache()
    first = heavy(pod("extract", 1, "Running", running(START)))
    key = cache.store_pod("ADDED", first)
    later = heavy(pod("extract", 1, "Succeeded", terminated(0, START, END)))
    later["metadata"]["resourceVersion"] = "1300"
    cache.store_pod("MODIFIED", later)
    cache.store_pod("MODIFIED", first)  # a stale event (resourceVersion 1234)
    assert cache.pods[key][first["metadata"]["name"]]["status"]["phase"] == "Succeeded"
    cache.store_pod("DELETED", later)
    assert key not in cache.pods


class _Deletes:
    """The API client of the pod reaper's DELETEs (answered: the pod existed)."""

    def __init__(self) -> None:
        self.pods: list[tuple[str, str]] = []

    async def delete(self, api_version: str, plural: str, namespace: str, name: str) -> bool:
        self.pods.append((namespace, name))
        return True


def _manager_with_a_finished_run(now: list):
    """A leading manager whose run ``RUN_NAME`` (DAGRun uid ``run-uid``) is open and finished: ``extract`` succeeded
    in try 1 (archived), ``load`` failed in try 1 (its log not archived yet)."""
    from kubedag.app.reconcile import RunMemory
    from kubedag.core.states import DagRunState, TaskInstanceState as S
    from kubedag.k8s.client import Connection
    from kubedag.k8s.manager import ControllerConfig, Manager
    from tests.unit_k8s.podkit import dag_of, run_body

    manager = Manager(ControllerConfig(pod_retention=timedelta(minutes=10)), Connection("https://k8s.invalid"),
                      store=None, clock=lambda: now[0])
    manager.leading, manager.client = True, _Deletes()
    key = (NS, RUN_NAME)
    manager.cache.runs[key] = run_body(status={"phase": "success"})
    run = observe.run_from_object(dag_of([{"name": "extract", "command": ["true"]}]), run_body())
    manager.runs.memories[key] = RunMemory(
        run=run.__class__(**{**run.__dict__, "state": DagRunState.SUCCESS}),
        tis={"extract": engine_ti("extract", S.SUCCESS, 1), "load": engine_ti("load", S.FAILED, 1)},
        launched={"extract": 1, "load": 1}, archived=frozenset({("extract", 1)}))
    manager.runs.opened[key] = "run-uid"
    return manager, key


def engine_ti(task_id: str, state, try_number: int):
    from kubedag.core import engine

    return engine.TaskInstance(task_id, state, try_number, START, END)


def test_a_kept_pod_of_an_archived_try_is_not_cached_and_is_deleted_when_its_retention_ends():
    """Issue 13 (flat memory with 10,000 finished pods kept): the pod cache held every kept pod, though nothing reads
    the pod of a try that is recorded and whose log is archived; such a pod (listed after a restart, or any later event
    of it) goes to the pod reaper only, due ``pod_retention`` after the try ended, and makes no pass."""
    import asyncio

    now = [END + timedelta(minutes=1)]
    manager, key = _manager_with_a_finished_run(now)
    archived = pod("extract", 1, "Succeeded", terminated(0, START, END))
    unarchived = pod("load", 1, "Failed", terminated(1, START, END))
    name = archived["metadata"]["name"]

    async def scenario() -> tuple[list, list]:
        reaper = asyncio.create_task(manager.reaper.run())
        manager.on_pod_event(None, archived)  # as listed at a start
        manager.on_pod_event(None, unarchived)
        manager.on_pod_event("MODIFIED", archived)
        await asyncio.sleep(0.05)
        before = list(manager.client.pods)
        now[0] = END + timedelta(minutes=10, seconds=1)
        manager.reaper._wake.set()
        await asyncio.sleep(0.05)
        after = list(manager.client.pods)
        manager.on_pod_event("DELETED", archived)
        reaper.cancel()
        return before, after

    before, after = asyncio.run(scenario())
    assert list(manager.cache.pods[key]) == [unarchived["metadata"]["name"]]  # the archived try's pod is not cached
    assert manager.cache.retained(NS, name) is False  # deleted and seen gone: nothing is kept of it
    assert before == [] and after == [(NS, name)]  # deleted once, when its retention ended
    assert manager.reaper.pending() == 0


def test_a_pod_that_is_not_of_an_archived_try_of_the_open_run_is_cached():
    """A pod of a deleted DAGRun of the same name (deleted at once by the run's pass), of a later try, or being
    deleted stays in the pod cache."""
    import asyncio

    now = [END + timedelta(minutes=1)]
    manager, key = _manager_with_a_finished_run(now)
    other_run = pod("extract", 1, "Succeeded", terminated(0, START, END))
    other_run["metadata"]["ownerReferences"] = [{"kind": "DAGRun", "name": RUN_NAME, "uid": "an-older-run"}]
    later_try = pod("extract", 2, "Running", running(START))
    being_deleted = pod("extract", 1, "Succeeded", terminated(0, START, END), deletion=END)

    async def scenario(*pods: dict) -> tuple[list[str], int]:
        manager, key = _manager_with_a_finished_run(now)
        for p in pods:
            manager.on_pod_event("ADDED", p)
        return sorted(manager.cache.pods[key]), manager.reaper.pending()

    assert asyncio.run(scenario(other_run, later_try)) == (sorted(p["metadata"]["name"] for p in (other_run, later_try)), 0)
    assert asyncio.run(scenario(being_deleted)) == ([being_deleted["metadata"]["name"]], 0)


def test_an_archived_pod_with_no_finished_at_is_due_its_retention_after_the_try_ended():
    """A pod that never ran its container (``OutOfcpu``: no ``finishedAt``) is due ``pod_retention`` after its try's
    end date, not after the moment it was seen."""
    now = [END + timedelta(hours=1)]
    manager, key = _manager_with_a_finished_run(now)
    never_ran = pod("extract", 1, "Failed", None, reason="OutOfcpu")
    manager.on_pod_event("ADDED", never_ran)
    assert key not in manager.cache.pods
    assert manager.reaper._due == {(NS, never_ran["metadata"]["name"]): (END + timedelta(minutes=10)).timestamp()}


def test_kopf_keeps_no_memory_of_a_pod_but_of_the_other_kinds():
    """Issue 13: kopf kept a record of every watched object (about 0.9 KiB each: 9 MB with 10,000 kept pods); the
    controller's memories make each pod's record ephemeral (checked on the installed kopf: the class is not public)."""
    import asyncio

    from kubedag.k8s.informers import kopf_memories

    memories = kopf_memories()

    async def recall() -> int:
        await memories.recall({"kind": "Pod", "metadata": {"uid": "pod-uid"}}, noticed_by_listing=True)
        await memories.recall({"kind": "DAGRun", "metadata": {"uid": "run-uid"}}, noticed_by_listing=True)
        return len(list(memories.iter_all_memories()))

    assert asyncio.run(recall()) == 1


def test_no_registered_kopf_handler_reads_the_diff_base_the_controller_does_not_build():
    """Issue 13: kopf deep-copied every watched event to diff it for change handlers and daemons; the controller
    builds no such copy (:func:`kubedag.k8s.informers.kopf_diffbase`), which holds only while it registers neither."""
    from kubedag.k8s.client import Connection
    from kubedag.k8s.informers import kopf_diffbase
    from kubedag.k8s.manager import ControllerConfig, Manager, make_registry

    registry = make_registry(Manager(ControllerConfig(), Connection('https://k8s.invalid'), store=None))
    # kopf's registries are not public: checked on the installed kopf
    assert len(registry._watching.get_all_handlers()) == 5  # the informers of DAGs, DAGRuns, Backfills, Pools, pods
    assert not registry._changing.get_all_handlers() and not registry._spawning.get_all_handlers()
    assert kopf_diffbase().build(body={"kind": "Pod", "spec": {"containers": []}}) == {}

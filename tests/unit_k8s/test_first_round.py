"""The first passes after a takeover or a start (issue 13, "Bounded recovery"): every active run has its first
pass before any run has a second, pod log reads (API requests no pass needs) wait until they have all ended, and
after a takeover with warm memories more of them run at once than ``--workers`` while they last. The passes are
stand-ins; the queue, the workers and the log reads are the controller's."""

from __future__ import annotations

import asyncio

import pytest

from kubedag.k8s.client import Connection
from kubedag.k8s.manager import FIRST_ROUND_WORKERS, ControllerConfig, Manager
from kubedag.k8s.workqueue import WorkQueue, run_worker

NS = "team-a"
RUNS = 40
WORKERS = 2


def _run(name: str, phase: str) -> dict:
    return {"metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"}, "spec": {"dagName": "d"},
            "status": {"phase": phase}}


class _LogClient:
    """The API client as far as a pod log read goes: records which passes had ended at each read."""

    def __init__(self, ended: list) -> None:
        self.ended, self.reads = ended, []

    async def pod_log(self, namespace: str, name: str, container: str) -> str:
        self.reads.append((name, len(self.ended)))
        return "log"


async def _idle(*_: object) -> None:
    await asyncio.sleep(3600)


async def _start(monkeypatch, takeover: bool) -> tuple[Manager, list, list, _LogClient]:
    """A manager whose passes record their order and end after a moment (each re-queues its run, as its pod's
    event would); the first pass of chain-0 finds a finished pod whose log is to be read. ``takeover``: it takes
    over with every active run's memory warm and current; else it starts and its informer lists the runs."""
    manager = Manager(ControllerConfig(workers=WORKERS), Connection("https://k8s.invalid"), store=None)
    began, ended, running = [], [], [0, 0]
    client = _LogClient(ended)
    manager.client = client  # type: ignore[assignment]

    async def reconcile(key):
        began.append(key[1])
        running[0] += 1
        running[1] = max(running)
        if key[1] == "chain-0" and began.count("chain-0") == 1:
            manager.runs._read_log(key, "chain-0-t1-1", ("t1", 1))
        await asyncio.sleep(0.01)
        manager.run_queue.add(key)
        running[0] -= 1
        ended.append(key[1])

    monkeypatch.setattr(manager.runs, "reconcile", reconcile)
    for loop in (manager.dags.scheduler, manager.reaper):
        monkeypatch.setattr(loop, "run", _idle)
    monkeypatch.setattr(manager.runs, "resync_history", _idle)
    bodies = [_run("done", "success"), *(_run(f"chain-{i}", "running") for i in range(RUNS))]
    if takeover:
        for body in bodies:
            manager.cache.runs[(NS, body["metadata"]["name"])] = body
        warm = {(NS, b["metadata"]["name"]): object() for b in bodies[1:]}
        monkeypatch.setattr(manager.standby, "handover", lambda: (warm, len(warm)))
        monkeypatch.setattr(manager.runs, "adopt", lambda _: None)
        manager._start_reconciles()
    else:
        manager._start_reconciles()
        for body in bodies:
            manager.on_run_event(None, body)
    return manager, began, [ended, running], client


@pytest.mark.asyncio
@pytest.mark.parametrize("takeover", [True, False], ids=["takeover", "start"])
async def test_every_active_run_has_its_first_pass_before_any_second_and_before_log_reads(monkeypatch, takeover):
    manager, began, (ended, running), client = await _start(monkeypatch, takeover)
    try:
        for _ in range(500):
            if client.reads and manager._extra_workers == 0:
                break
            await asyncio.sleep(0.01)
        active = [f"chain-{i}" for i in range(RUNS)]
        firsts = [k for k in began if k != "done"][:RUNS]
        assert sorted(firsts) == sorted(active), began  # each active run once before any twice
        if takeover:  # warm first passes: more at once than --workers, while they last
            assert WORKERS < running[1] <= FIRST_ROUND_WORKERS
        else:  # runs opened from the DB: --workers at once (more contend for the DB)
            assert running[1] == WORKERS
        assert manager._extra_workers == 0  # the extra workers ended with the first passes
        assert client.reads and client.reads[0][0] == "chain-0-t1-1"
        at_read = ended[:client.reads[0][1]]
        assert set(active) <= set(at_read)  # the log was read once every first pass had ended
    finally:
        for task in manager.tasks:
            task.cancel()
        await asyncio.gather(*manager.tasks, *manager.background.tasks, return_exceptions=True)


@pytest.mark.asyncio
async def test_a_worker_with_a_condition_ends_when_it_no_longer_holds():
    queue, seen, go = WorkQueue(), [], [True]

    async def reconcile(key):
        seen.append(key)
        go[0] = len(seen) < 2

    for i in range(4):
        queue.add((NS, f"r{i}"))
    await asyncio.wait_for(run_worker(queue, reconcile, "DAGRun", while_=lambda: go[0]), 5)
    assert seen == [(NS, "r0"), (NS, "r1")]  # it ended; the other keys wait for the regular workers

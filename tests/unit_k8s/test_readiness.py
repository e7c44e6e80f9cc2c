"""The controller's readiness: informer caches synced (every object listed at start is in its cache)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

from kubedag.core import naming as names
from kubedag.k8s.informers import Cache
from kubedag.k8s.readiness import CacheSync, loop_answers


class Lister:
    """A client whose listings are ``objects[plural]`` (the API server's truth), served in pages of two."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        self.objects = objects
        self.calls: list[tuple[str, str | None, str | None]] = []

    async def pages(self, api_version: str, plural: str, namespace: str | None,
                    label_selector: str | None = None) -> AsyncIterator[list[dict[str, Any]]]:
        self.calls.append((plural, namespace, label_selector))
        items = self.objects.get(plural, [])
        for i in range(0, len(items), 2):
            yield items[i:i + 2]


def obj(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}}


def test_synced_only_once_the_caches_hold_every_listed_object():
    cache = Cache()
    pod = obj("etl-1-load-1", **{names.LABEL_RUN: "etl-1"})
    client = Lister({"dags": [obj("etl")], "dagruns": [obj("etl-1")], "pods": [pod]})
    sync = CacheSync(cache, lambda: client, ["default"], interval=0.01)

    async def scenario() -> list[str | None]:
        reasons = [sync.check()]
        task = asyncio.create_task(sync.run())
        await asyncio.sleep(0.05)
        reasons.append(sync.check())
        Cache.store(cache.dags, None, obj("etl"))
        Cache.store(cache.runs, None, obj("etl-1"))
        await asyncio.sleep(0.05)
        reasons.append(sync.check())
        cache.store_pod(None, pod)
        await asyncio.wait_for(task, 5)
        reasons.append(sync.check())
        return reasons

    assert asyncio.run(scenario()) == [
        "the controller is starting",
        "informer cache not synced: dags default/etl not seen yet",
        "informer cache not synced: pod default/etl-1-load-1 not seen yet",
        None,
    ]
    assert ("pods", "default", names.LABEL_RUN) in client.calls


def test_the_synced_callback_is_called_once_when_the_caches_hold_every_listed_object():
    cache = Cache()
    pod = obj("etl-1-load-1", **{names.LABEL_RUN: "etl-1"})
    client = Lister({"dagruns": [obj("etl-1")], "pods": [pod]})
    calls: list[str | None] = []
    sync = CacheSync(cache, lambda: client, ["default"], interval=0.01, on_synced=lambda: calls.append(sync.check()))

    async def scenario() -> None:
        task = asyncio.create_task(sync.run())
        Cache.store(cache.runs, None, obj("etl-1"))
        await asyncio.sleep(0.05)
        assert calls == []  # the pod is not cached yet
        cache.store_pod(None, pod)
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert calls == [None]


def test_while_the_caches_fill_the_objects_are_listed_again_only_every_relist_seconds():
    """Issue 13: with 10,000 pods kept, listing them all every second kept the controller and the API server busy
    while the pod informer was still filling the cache; the listing's objects still missing are looked up in the
    cache instead, and a pod deleted before the informer saw it is forgotten at the next listing."""
    cache = Cache()
    pods = [obj(f"etl-1-t{i}-1", **{names.LABEL_RUN: "etl-1"}) for i in range(3)]
    client = Lister({"pods": list(pods)})
    sync = CacheSync(cache, lambda: client, ["default"], interval=0.01, relist=0.5)

    async def scenario() -> tuple[int, str | None]:
        task = asyncio.create_task(sync.run())
        for pod in pods[:2]:
            await asyncio.sleep(0.05)
            cache.store_pod("ADDED", pod)
        await asyncio.sleep(0.05)
        lists, reason = sum(1 for c in client.calls if c[0] == "pods"), sync.check()
        client.objects["pods"] = pods[:2]  # the third was deleted before the informer saw it
        await asyncio.wait_for(task, 5)
        return lists, reason

    lists, reason = asyncio.run(scenario())
    assert lists == 1
    assert reason == "informer cache not synced: pod default/etl-1-t2-1 not seen yet"
    assert sync.check() is None


def test_a_kept_pod_of_an_archived_try_counts_as_seen_though_not_cached():
    """Issue 13 (flat memory): the pod of an archived try is handed to the pod reaper instead of the pod cache; the
    caches are synced once every other listed pod is cached."""
    cache = Cache()
    pods = [obj(f"etl-1-t{i}-1", **{names.LABEL_RUN: "etl-1"}) for i in range(5)]
    retained = {("default", p["metadata"]["name"]) for p in pods[:4]}
    cache.retained = lambda namespace, name: (namespace, name) in retained
    sync = CacheSync(cache, lambda: Lister({"pods": pods}), ["default"], interval=0.01)

    async def scenario() -> str | None:
        task = asyncio.create_task(sync.run())
        await asyncio.sleep(0.05)
        reason = sync.check()
        cache.store_pod("ADDED", pods[4])
        await asyncio.wait_for(task, 5)
        return reason

    assert asyncio.run(scenario()) == "informer cache not synced: pod default/etl-1-t4-1 not seen yet"
    assert sync.check() is None


def test_cluster_wide_lists_every_namespace_at_once_and_waits_for_the_client():
    client = Lister({})
    ready: dict[str, Any] = {"client": None}
    sync = CacheSync(Cache(), lambda: ready["client"], [], interval=0.01)

    async def scenario() -> str | None:
        task = asyncio.create_task(sync.run())
        await asyncio.sleep(0.05)
        before = sync.check()
        ready["client"] = client
        await asyncio.wait_for(task, 5)
        return before

    assert asyncio.run(scenario()) == "the controller is starting"
    assert sync.check() is None
    assert {namespace for _, namespace, _ in client.calls} == {None}


def test_the_loop_answers_while_it_runs_and_not_once_closed():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        assert loop_answers(loop, timeout=5)() is None
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
    assert loop_answers(loop)() == "the controller's event loop is closed"

"""Issue 13: a DAGRun whose object changes often (spec, labels, annotations: ``kubectl annotate``, Argo, GitOps
tools) no longer makes its status write fail. The status is a JSON merge patch of the status subresource without
a ``resourceVersion`` (:mod:`kubedag.k8s.runstatus`); what the new status no longer has is removed (nulls)."""
from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timezone

from kubedag.core import naming as names
from kubedag.k8s.client import Connection, KubeClient
from kubedag.k8s.informers import Cache
from kubedag.k8s.runstatus import RunStatusWriter, ready_condition
from tests.controller.harness import DAGRUNS, NS, manual_run
from tests.k8s.emulator import patching
from tests.k8s.emulator import server as emulator_server

WHEN = datetime(2026, 11, 1, tzinfo=timezone.utc)


def test_status_writes_land_while_the_run_changes_before_each_of_them(k8s_api, monkeypatch):
    original = emulator_server.KubeApiEmulator.op_patch
    busy = {'changes': 0}

    def before_status_write(self, rt) -> None:
        if rt.plural == 'dagruns':
            busy['changes'] += 1
            original(self, rt, NS, 'busy', {'metadata': {'annotations': {'example.com/tick': str(busy['changes'])}},
                                            'spec': {'conf': {'tick': busy['changes']}}}, patching.MERGE_PATCH)

    def op_patch(self, rt, namespace, name, patch, content_type, subresource=None, *args, **kwargs):
        if subresource == 'status':
            before_status_write(self, rt)
        return original(self, rt, namespace, name, patch, content_type, subresource, *args, **kwargs)

    def op_update(self, rt, namespace, name, body, subresource=None, *args, **kwargs):  # the PUT of before the fix
        if subresource == 'status':
            before_status_write(self, rt)
        return update(self, rt, namespace, name, body, subresource, *args, **kwargs)

    update = emulator_server.KubeApiEmulator.op_update
    monkeypatch.setattr(emulator_server.KubeApiEmulator, 'op_patch', op_patch)
    monkeypatch.setattr(emulator_server.KubeApiEmulator, 'op_update', op_update)
    created = k8s_api.create(manual_run('etl', 'busy'))
    stop = threading.Event()

    def annotate() -> None:  # and someone annotates the run all the time besides
        n = 0
        while not stop.is_set():
            n += 1
            k8s_api.patch(DAGRUNS, 'busy', {'metadata': {'labels': {'example.com/n': str(n)}}}, NS)

    first = {'phase': 'running', 'startedAt': '2026-11-01T00:00:00Z',
             'tasks': {'extract': {'s': 'running', 't': 1, 'p': 'ab1cd'}, 'load': {'s': 'queued', 't': 1}},
             'conditions': [ready_condition('False', 'PoolUnavailable', 'pool x does not exist', WHEN, 1).to_k8s()]}
    second = {'phase': 'running', 'startedAt': '2026-11-01T00:00:00Z', 'tasks': {'extract': {'s': 'success', 't': 1}}}

    async def write() -> None:
        cache = Cache()
        async with KubeClient(Connection(server=k8s_api.url)) as client:
            writer = RunStatusWriter(cache, lambda: client, lambda *args: None, lambda: WHEN)
            key = (NS, 'busy')
            for status in (first, second) * 10 + (first, second):
                await writer.write(key, cache.runs.get(key) or created, status)

    thread = threading.Thread(target=annotate)
    thread.start()
    try:
        asyncio.run(write())
    finally:
        stop.set()
        thread.join(10)
    stored = k8s_api.get(DAGRUNS, 'busy', NS)
    assert stored['status'] == second  # extract's pod suffix, load and the condition are gone, not left stale
    assert busy['changes'] >= 22  # the run changed before every status write
    assert stored['spec']['conf'] == {'tick': busy['changes']} and stored['spec']['dagName'] == 'etl'
    assert names.API_VERSION == stored['apiVersion']


def test_a_status_write_from_a_cache_behind_the_server_is_made_again_against_the_run_as_stored(k8s_api):
    created = k8s_api.create(manual_run('etl', 'stale'))  # the server's run has no status yet
    behind = {**created, 'status': {'phase': 'running', 'tasks': {'extract': {'s': 'running', 't': 1}}}}
    wanted = {'phase': 'running', 'tasks': {'extract': {'s': 'running', 't': 2}}}

    async def write() -> None:
        cache = Cache(runs={(NS, 'stale'): behind})  # a cache that believes a status the server never had
        async with KubeClient(Connection(server=k8s_api.url)) as client:
            await RunStatusWriter(cache, lambda: client, lambda *args: None, lambda: WHEN).write((NS, 'stale'), behind,
                                                                                               wanted)

    asyncio.run(write())  # the patch {tasks: {extract: {t: 2}}} alone is invalid there (422: no state)
    assert k8s_api.get(DAGRUNS, 'stale', NS)['status'] == wanted

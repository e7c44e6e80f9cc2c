"""Issue 13: an expected failure (the API server answering 503/429/409, a timeout, an unreachable server, the
metadata DB down) is logged as one line naming the code, verb, resource and the retry delay, never a traceback;
an unexpected exception (a bug) keeps its traceback."""
from __future__ import annotations

import asyncio
import logging
import sqlite3

import aiohttp
import pytest
import sqlalchemy.exc

from kubedag.core import naming as names
from kubedag.k8s.client import ApiError, Saturated
from kubedag.k8s.recovery import expected_failure
from kubedag.k8s.workqueue import WorkQueue, run_worker
from tests.controller.harness import NS, RunningController, dag_manifest, manual_run, wait_phase
from tests.k8s.emulator import errors
from tests.k8s.emulator import server as emulator_server

KEY = (NS, 'r1')


def test_expected_failures_are_described_in_one_line_and_bugs_are_not():
    patch = ApiError(503, 'ServiceUnavailable', 'etcd\nis  down', verb='patch',
                     path='/apis/kubedag.io/v1alpha1/namespaces/default/dagruns/r1/status')
    assert expected_failure(patch) == ('the Kubernetes API answered 503 ServiceUnavailable to patch '
                                       '/apis/kubedag.io/v1alpha1/namespaces/default/dagruns/r1/status: etcd is down')
    assert expected_failure(ApiError(409, 'Conflict', 'changed')).startswith('the Kubernetes API answered 409 Conflict')
    assert '429 TooManyRequests' in expected_failure(Saturated(429, 'TooManyRequests', 'the client is saturated'))
    assert expected_failure(asyncio.TimeoutError()) == 'a request timed out'
    assert expected_failure(aiohttp.ServerDisconnectedError()).startswith('cannot reach the Kubernetes API server')
    outage = sqlalchemy.exc.OperationalError('UPDATE dag_run SET conf=? WHERE id=?', ('{"password": "s3cr3t"}', 1),
                                             sqlite3.OperationalError('unable to open database file'))
    described = expected_failure(outage)
    assert described == 'the metadata DB is unavailable: unable to open database file'
    assert 's3cr3t' not in described and 'UPDATE' not in described  # neither the statement nor its parameters
    assert expected_failure(ApiError(422, 'Invalid', 'spec.tasks: bad')) is None  # our request is wrong: a bug
    assert expected_failure(KeyError('tasks')) is None


@pytest.mark.parametrize('failure, traceback', [
    (ApiError(503, 'ServiceUnavailable', 'overloaded', verb='patch', path='/apis/x/dagruns/r1/status'), False),
    (ValueError('a bug'), True),
])
def test_a_reconcile_that_fails_is_logged_with_a_traceback_only_when_unexpected(caplog, failure, traceback):
    async def scenario() -> None:
        queue = WorkQueue(name='DAGRun')
        done = asyncio.Event()

        async def reconcile(key):
            done.set()
            raise failure

        queue.add(KEY)
        worker = asyncio.create_task(run_worker(queue, reconcile, 'DAGRun'))
        await done.wait()
        await asyncio.sleep(0)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        queue.close()

    with caplog.at_level(logging.WARNING, logger='kubedag'):
        asyncio.run(scenario())
    [record] = [r for r in caplog.records if 'reconciling DAGRun default/r1 failed' in r.getMessage()]
    assert (record.exc_info is not None) is traceback
    if not traceback:
        assert record.getMessage().startswith('reconciling DAGRun default/r1 failed: the Kubernetes API answered 503 '
                                              'ServiceUnavailable to patch /apis/x/dagruns/r1/status: overloaded; '
                                              'retrying in ')


def test_a_burst_of_503s_logs_no_traceback(k8s_api, fake_kubelet, sqlite_url, monkeypatch, caplog):
    """The first four pod creations answer 503, then the next four DAGRun status writes; the run still succeeds
    and the controller's log has one line per failure, no traceback."""
    original = emulator_server.KubeApiEmulator._dispatch
    burst = {'pods': 4, 'status': 4}

    async def dispatch(self, request):
        path = request.url.path
        kind = 'pods' if path.endswith('/pods') else 'status' if '/dagruns/' in path and path.endswith('/status') \
            and not burst['pods'] else ''  # the status writes fail once the pod creations failed
        if request.method in ('PATCH', 'PUT', 'POST') and burst.get(kind, 0) > 0:
            burst[kind] -= 1
            raise errors.StatusError(503, 'ServiceUnavailable', 'the API server is overloaded')
        return await original(self, request)

    monkeypatch.setattr(emulator_server.KubeApiEmulator, '_dispatch', dispatch)
    k8s_api.create(dag_manifest('pair', [{'name': 'first', 'command': ['true']},
                                         {'name': 'second', 'command': ['true'], 'dependsOn': ['first']}]))
    with caplog.at_level(logging.INFO):
        with RunningController(k8s_api, sqlite_url):
            k8s_api.create(manual_run('pair', 'pair-1'))
            assert wait_phase(k8s_api, 'pair-1', timeout=60)['status']['phase'] == 'success'
    assert burst == {'pods': 0, 'status': 0}
    failures = [r.getMessage() for r in caplog.records if '503 ServiceUnavailable' in r.getMessage()]
    assert failures and all('\n' not in line and 'retrying in' in line for line in failures), failures
    assert any(f'to patch /apis/{names.API_VERSION}/namespaces/{NS}/dagruns/pair-1/status' in line
               for line in failures), failures
    tracebacks = [r for r in caplog.records if r.exc_info is not None and r.name.startswith('kubedag')]
    assert not tracebacks, [r.getMessage() for r in tracebacks]

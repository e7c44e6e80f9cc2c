"""Issue 13: every Kubernetes API client has bounded concurrency and a bounded queue (:mod:`kubedag.k8s.limits`).

Each test fires many more calls than the limit at a slow emulated API server and reads, at the server, how many
requests of that client it served at once (``peak_in_flight`` by User-Agent); the calls beyond the queue fail at
once with the documented, retryable error; the controller still completes runs with a limit of 2."""
from __future__ import annotations

import asyncio
import threading

import pytest
from prometheus_client import REGISTRY

from kubedag.k8s.catalog import kube_errors
from kubedag.k8s.client import USER_AGENT, Connection, KubeClient, Saturated
from kubedag.k8s.kubeapi import Unreachable, connect
from kubedag.k8s.leader import LeaderElection, Leadership
from kubedag.k8s.limits import RequestLimits
from kubedag.app.operations.ports import Unavailable
from tests.controller.harness import NS, RunningController, dag_manifest, manual_run, wait_phase, wait_until
from tests.k8s.emulator import server as emulator_server

SLOW = 0.3
"""Seconds the emulator takes to answer a GET of a ConfigMap in these tests."""


@pytest.fixture
def slow_configmaps(k8s_api, monkeypatch):
    """GETs of ConfigMaps answered after :data:`SLOW` seconds (the server stays responsive meanwhile)."""
    original = emulator_server.KubeApiEmulator._dispatch

    async def dispatch(self, request):
        if request.method == 'GET' and '/configmaps' in request.url.path:
            await asyncio.sleep(SLOW)
        return await original(self, request)

    monkeypatch.setattr(emulator_server.KubeApiEmulator, '_dispatch', dispatch)
    k8s_api.create({'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'cm', 'namespace': NS},
                    'data': {'a': '1'}})
    return k8s_api


def gauge(name: str, client: str) -> float | None:
    return REGISTRY.get_sample_value(name, {'client': client})


def test_the_controller_client_sends_at_most_its_concurrency_and_refuses_beyond_its_queue(slow_configmaps):
    api = slow_configmaps

    async def scenario() -> tuple[list[object], dict[str, float | None]]:
        async with KubeClient(Connection(server=api.url), qps=0, limits=RequestLimits(4, 20), name='limits-test') as kc:
            calls = [asyncio.create_task(kc.get('v1', 'configmaps', NS, 'cm')) for _ in range(40)]
            while kc.bounds.in_flight < 4 or kc.bounds.waiting < 20:  # every call has started or been refused
                await asyncio.sleep(0.01)
            seen = {'in_flight': gauge('kubedag_kube_api_requests_in_flight', 'limits-test'),
                    'queued': gauge('kubedag_kube_api_requests_queued', 'limits-test')}
            return await asyncio.gather(*calls, return_exceptions=True), seen

    rejected_before = gauge('kubedag_kube_api_requests_rejected_total', 'limits-test') or 0
    results, seen = asyncio.run(scenario())
    answered = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(answered) == 24 and all(r['data'] == {'a': '1'} for r in answered)
    assert len(refused) == 16 and all(isinstance(r, Saturated) for r in refused), refused
    assert refused[0].status == 429 and refused[0].reason == 'TooManyRequests'
    assert 'get /api/v1/namespaces/default/configmaps/cm not sent: the limits-test Kubernetes API client is ' \
           'saturated (4 requests in flight, 20 waiting); retry later' == refused[0].message
    assert api.handler.peak_in_flight[USER_AGENT] == 4  # never more at the server, and the limit was used
    assert api.handler.user_agents[USER_AGENT] == 24  # the refused calls were never sent
    assert seen == {'in_flight': 4, 'queued': 20}
    assert gauge('kubedag_kube_api_requests_rejected_total', 'limits-test') - rejected_before == 16
    assert gauge('kubedag_kube_api_requests_in_flight', 'limits-test') == 0
    assert gauge('kubedag_kube_api_requests_queued', 'limits-test') == 0


def test_the_api_servers_client_is_bounded_and_a_full_queue_is_503(slow_configmaps, tmp_path):
    api = slow_configmaps
    kube = connect(str(api.kubeconfig(tmp_path / 'kubeconfig')), limits=RequestLimits(2, 3), client_name='api-test')
    agent = kube.api_client.user_agent
    results: list[object] = []
    lock = threading.Lock()

    def read() -> None:
        try:
            result: object = kube.read_source('ConfigMap', 'cm')
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            result = exc
        with lock:
            results.append(result)

    threads = [threading.Thread(target=read) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    kube.close()
    answered = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(answered) + len(refused) == 12 and len(answered) >= 5, results
    assert refused and all(isinstance(r, Unreachable) for r in refused), refused
    assert 'the api-test Kubernetes API client is saturated (2 requests in flight, 3 waiting); retry later' \
        in str(refused[0])
    assert api.handler.peak_in_flight[agent] == 2
    assert api.handler.user_agents[agent] == len(answered)
    with pytest.raises(Unavailable, match='saturated'):  # the REST API answers 503 (tests/api_cluster/test_unavailable)
        with kube_errors():
            raise refused[0]


def test_the_controller_completes_runs_with_two_requests_at_once(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('fan', [{'name': 'root', 'command': ['true']}] + [
        {'name': f'leaf{i}', 'command': ['true'], 'dependsOn': ['root']} for i in range(6)]))
    with RunningController(k8s_api, sqlite_url, api_concurrency=2, api_queue=1000, workers=4):
        for day, run in enumerate(('fan-1', 'fan-2', 'fan-3'), start=1):
            k8s_api.create(manual_run('fan', run, logicalDate=f'2026-11-0{day}T00:00:00Z'))
        for run in ('fan-1', 'fan-2', 'fan-3'):
            assert wait_phase(k8s_api, run, timeout=60)['status']['phase'] == 'success'
        wait_until(lambda: k8s_api.handler.user_agents[USER_AGENT] > 0)
    assert k8s_api.handler.peak_in_flight[USER_AGENT] <= 2


def test_leader_election_has_its_own_client_which_renews_while_the_controllers_is_saturated(slow_configmaps,
                                                                                             monkeypatch):
    """The Lease renewals of leader election are counted under ``client="leader"``, not ``controller``, and go out
    on time while the controller's client has both its slots taken and hundreds of calls queued."""
    api = slow_configmaps
    dispatch = emulator_server.KubeApiEmulator._dispatch

    async def slow_leases(self, request):  # a renewal stays in flight long enough to be seen in the gauges
        if request.method == 'PUT' and '/leases/' in request.url.path:
            await asyncio.sleep(0.2)
        return await dispatch(self, request)

    monkeypatch.setattr(emulator_server.KubeApiEmulator, '_dispatch', slow_leases)
    config = LeaderElection(namespace=NS, name='limits-lease', identity='me', lease_duration=4, renew_deadline=3,
                            retry_period=0.5)

    async def scenario() -> tuple[list[str], dict[str, float], dict[str, float]]:
        async with KubeClient(Connection(server=api.url), qps=0, limits=RequestLimits(2, 1000)) as kc:
            calls = [asyncio.create_task(kc.get('v1', 'configmaps', NS, 'cm')) for _ in range(400)]
            while kc.bounds.waiting < 300:
                await asyncio.sleep(0.01)
            leadership = Leadership(Connection(server=api.url), config, on_started=lambda: None,
                                    on_stopped=lambda: None)
            await leadership.start()
            renewals: list[str] = []
            peak = {'leader': 0.0, 'controller': 0.0}
            least_queued = {'controller': float(kc.bounds.waiting)}
            try:
                while len(renewals) < 4 and not leadership.lost.is_set():
                    for client in peak:
                        peak[client] = max(peak[client], gauge('kubedag_kube_api_requests_in_flight', client) or 0)
                    least_queued['controller'] = min(least_queued['controller'], kc.bounds.waiting)
                    lease = await asyncio.to_thread(api.get, 'coordination.k8s.io/v1/leases', 'limits-lease', NS)
                    renewed = ((lease or {}).get('spec') or {}).get('renewTime')
                    if renewed and renewed not in renewals:
                        renewals.append(renewed)
                    await asyncio.sleep(0.02)
                assert leadership.may_write() and not leadership.lost.is_set()
            finally:
                await leadership.stop()
                for call in calls:
                    call.cancel()
                await asyncio.gather(*calls, return_exceptions=True)
            return renewals, peak, least_queued

    renewals, peak, least_queued = asyncio.run(scenario())
    assert len(renewals) == 4  # acquired, then renewed every retry period
    assert least_queued['controller'] >= 200  # the controller's client stayed saturated throughout
    assert peak == {'leader': 1, 'controller': 2}  # the renewals were counted as the leader's own
    assert gauge('kubedag_kube_api_requests_in_flight', 'leader') == 0

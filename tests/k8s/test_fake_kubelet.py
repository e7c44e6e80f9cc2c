"""The fake kubelet runs pods as local processes and reports like a real one (emulator only)."""
from __future__ import annotations

import os
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
import urllib3

from tests.k8s.emulator import EmulatedApiServer, FakeKubelet

NS = 'default'


@pytest.fixture
def core(k8s_api: EmulatedApiServer, fake_kubelet: FakeKubelet) -> Iterator[kubernetes.client.CoreV1Api]:
    client = k8s_api.api_client()
    try:
        yield kubernetes.client.CoreV1Api(client)
    finally:
        client.close()


def pod(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    container = {'name': 'main', 'image': 'ignored:latest', 'command': command}
    container.update(spec.pop('container', {}))
    return {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': name},
            'spec': {'restartPolicy': 'Never', 'containers': [container], **spec}}


def phase_is(*phases: str):  # noqa: ANN201
    return lambda obj: obj is not None and obj.get('status', {}).get('phase') in phases


def test_failing_command_ends_failed_with_exit_code_and_log(k8s_api, core):
    core.create_namespaced_pod(NS, pod('fails', ['sh', '-c', 'echo hi; exit 3']))
    obj = k8s_api.wait_for('v1/pods', 'fails', NS, phase_is('Succeeded', 'Failed'))
    assert obj['status']['phase'] == 'Failed'
    terminated = obj['status']['containerStatuses'][0]['state']['terminated']
    assert terminated['exitCode'] == 3
    assert terminated['reason'] == 'Error'
    assert terminated['startedAt'] and terminated['finishedAt']
    assert core.read_namespaced_pod_log('fails', NS) == 'hi\n'  # proxied by the API server to the kubelet


def test_true_ends_succeeded(k8s_api, core):
    core.create_namespaced_pod(NS, pod('ok', ['true']))
    obj = k8s_api.wait_for('v1/pods', 'ok', NS, phase_is('Succeeded', 'Failed'))
    assert obj['status']['phase'] == 'Succeeded'
    terminated = obj['status']['containerStatuses'][0]['state']['terminated']
    assert (terminated['exitCode'], terminated['reason']) == (0, 'Completed')
    assert obj['spec']['nodeName'] == 'kubedag-fake-node'
    assert {c['type']: c['status'] for c in obj['status']['conditions']}['PodScheduled'] == 'True'


def test_status_goes_pending_running_succeeded(k8s_api, core):
    watch = kubernetes.watch.Watch()
    rv = core.list_namespaced_pod(NS).metadata.resource_version
    core.create_namespaced_pod(NS, pod('phases', ['sh', '-c', 'sleep 0.3']))
    phases: list[str] = []
    for event in watch.stream(core.list_namespaced_pod, NS, resource_version=rv, timeout_seconds=10):
        phase = event['object'].status.phase
        if not phases or phases[-1] != phase:
            phases.append(phase)
        if phase == 'Succeeded':
            watch.stop()
    assert phases == ['Pending', 'Running', 'Succeeded']


def test_active_deadline_kills_and_fails_with_deadline_exceeded(k8s_api, core):
    started = time.monotonic()
    core.create_namespaced_pod(NS, pod('slow', ['sleep', '30'], activeDeadlineSeconds=1))
    obj = k8s_api.wait_for('v1/pods', 'slow', NS, phase_is('Succeeded', 'Failed'), timeout=15)
    assert time.monotonic() - started < 10
    assert obj['status']['phase'] == 'Failed'
    assert obj['status']['reason'] == 'DeadlineExceeded'
    assert obj['status']['containerStatuses'][0]['state']['terminated']['exitCode'] == 128 + 15  # SIGTERM


def test_deleting_a_running_pod_kills_its_process(k8s_api, core, fake_kubelet):
    # "$$$$" is "$$" after Kubernetes' $(VAR) expansion, where "$$" escapes "$".
    core.create_namespaced_pod(NS, pod('victim', ['sh', '-c', 'echo $$$$ > pid; exec sleep 30']))
    k8s_api.wait_for('v1/pods', 'victim', NS, phase_is('Running'))
    pidfile = fake_kubelet.workdir / 'pid'
    deadline = time.monotonic() + 5
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, 'the process never wrote its pid'
        time.sleep(0.02)
    pid = int(pidfile.read_text())
    os.kill(pid, 0)  # alive

    core.delete_namespaced_pod('victim', NS)
    k8s_api.wait_for('v1/pods', 'victim', NS, lambda obj: obj is None)  # the kubelet confirmed the deletion
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_invalid_pod_is_rejected_with_422(k8s_api, core):
    # Raw HTTP: the official client (v37) would refuse to send a pod without containers.
    response = urllib3.request('POST', f'{k8s_api.url}/api/v1/namespaces/{NS}/pods', json={
        'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'bad'}, 'spec': {}})
    assert response.status == 422
    status = response.json()
    assert (status['kind'], status['reason']) == ('Status', 'Invalid')
    assert status['details']['causes'][0]['field'] == 'spec.containers'
    assert 'spec.containers: Required value' in status['message']
    assert k8s_api.get('v1/pods', 'bad', NS) is None


def test_env_args_and_working_directory(k8s_api, core, fake_kubelet):
    core.create_namespaced_pod(NS, pod('env', ['sh', '-c'], container={
        'args': ['echo "$GREETING $(NAME) from $POD"; pwd'],
        'env': [{'name': 'GREETING', 'value': 'hello'}, {'name': 'NAME', 'value': 'kubedag'},
                {'name': 'POD', 'valueFrom': {'fieldRef': {'fieldPath': 'metadata.name'}}}]}))
    k8s_api.wait_for('v1/pods', 'env', NS, phase_is('Succeeded'))
    assert core.read_namespaced_pod_log('env', NS) == f'hello kubedag from env\n{fake_kubelet.workdir}\n'


def test_cwd_can_be_chosen_per_pod(k8s_api, core, fake_kubelet, tmp_path):
    special = tmp_path / 'special'
    special.mkdir()
    fake_kubelet.cwd_for = lambda p: special if p['metadata']['name'] == 'here' else fake_kubelet.workdir
    core.create_namespaced_pod(NS, pod('here', ['sh', '-c', 'touch made-here']))
    k8s_api.wait_for('v1/pods', 'here', NS, phase_is('Succeeded'))
    assert (special / 'made-here').exists()


def test_follow_log_streams_until_exit(k8s_api, core):
    core.create_namespaced_pod(NS, pod('chatty', ['sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 0.1; done']))
    k8s_api.wait_for('v1/pods', 'chatty', NS, phase_is('Running', 'Succeeded'))
    response = core.read_namespaced_pod_log('chatty', NS, follow=True, _preload_content=False)
    assert response.data.decode() == 'line1\nline2\nline3\n'


def test_on_failure_restarts_until_success(k8s_api, core):
    core.create_namespaced_pod(NS, pod('retry', ['sh', '-c', 'test -f marker || { touch marker; exit 1; }'],
                                       restartPolicy='OnFailure'))
    obj = k8s_api.wait_for('v1/pods', 'retry', NS, phase_is('Succeeded', 'Failed'))
    status = obj['status']['containerStatuses'][0]
    assert obj['status']['phase'] == 'Succeeded'
    assert status['restartCount'] == 1
    assert status['lastState']['terminated']['exitCode'] == 1


def test_missing_executable_fails_the_pod(k8s_api, core):
    core.create_namespaced_pod(NS, pod('nope', ['/no/such/binary']))
    obj = k8s_api.wait_for('v1/pods', 'nope', NS, phase_is('Succeeded', 'Failed'))
    terminated = obj['status']['containerStatuses'][0]['state']['terminated']
    assert (obj['status']['phase'], terminated['exitCode'], terminated['reason']) == ('Failed', 128, 'StartError')


def test_node_is_registered_with_its_kubelet_endpoint(k8s_api, fake_kubelet, core):
    node = core.read_node('kubedag-fake-node')
    assert node.status.daemon_endpoints.kubelet_endpoint.port == fake_kubelet.port
    assert {c.type: c.status for c in node.status.conditions}['Ready'] == 'True'


def test_log_of_a_pod_not_started_is_400(k8s_api: EmulatedApiServer, tmp_path: pathlib.Path):
    # No kubelet here: the pod stays Pending and unscheduled.
    client = k8s_api.api_client()
    core = kubernetes.client.CoreV1Api(client)
    try:
        core.create_namespaced_pod(NS, pod('waiting', ['true']))
        with pytest.raises(kubernetes.client.ApiException) as exc:
            core.read_namespaced_pod_log('waiting', NS)
        assert exc.value.status == 400
        assert 'is waiting to start' in exc.value.body
    finally:
        client.close()

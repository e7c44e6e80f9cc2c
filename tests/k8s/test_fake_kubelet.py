"""The fake kubelet runs pods as local processes and reports like a real one (emulator only)."""
from __future__ import annotations

import os
import pathlib
import sys
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


# --- volumes, path mapping, termination messages, python, ConfigMap/Secret references ---------------

def terminated_of(obj: dict[str, Any]) -> dict[str, Any]:
    return obj['status']['containerStatuses'][0]['state']['terminated']


def eventually(check, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, 'the condition never held'
        time.sleep(0.02)


def test_xcom_written_to_an_empty_dir_becomes_the_termination_message(k8s_api, core):
    core.create_namespaced_pod(NS, pod('xcom', ['sh', '-c', 'printf \'{"rows": 3}\' > $(KUBEDAG_XCOM_PATH); echo done'],
                                       volumes=[{'name': 'xcom', 'emptyDir': {}}], container={
        'env': [{'name': 'KUBEDAG_XCOM_PATH', 'value': '/kubedag/xcom/return.json'}],
        'volumeMounts': [{'name': 'xcom', 'mountPath': '/kubedag/xcom'}],
        'terminationMessagePath': '/kubedag/xcom/return.json', 'terminationMessagePolicy': 'FallbackToLogsOnError'}))
    obj = k8s_api.wait_for('v1/pods', 'xcom', NS, phase_is('Succeeded', 'Failed'))
    assert obj['status']['phase'] == 'Succeeded'
    assert terminated_of(obj)['message'] == '{"rows": 3}'
    assert core.read_namespaced_pod_log('xcom', NS) == 'done\n'


def test_mount_paths_are_mapped_at_the_start_of_values_and_arguments(k8s_api, core, fake_kubelet, tmp_path):
    host = tmp_path / 'host'
    host.mkdir()
    command = ['sh', '-c', 'printf "%s\\n" "$A" "$B" "$C" "$D" "$0" "$(A)"; echo from-pod > $(D)', '/data/file']
    core.create_namespaced_pod(NS, pod('mapped', command, volumes=[
        {'name': 'xcom', 'emptyDir': {}}, {'name': 'inner', 'emptyDir': {}},
        {'name': 'data', 'hostPath': {'path': str(host)}}], container={
        'env': [{'name': 'A', 'value': '/kubedag/xcom/return.json'}, {'name': 'B', 'value': '/kubedag/xcomx/y'},
                {'name': 'C', 'value': '/data/inner/z'}, {'name': 'D', 'value': '/data/file'}],
        'volumeMounts': [{'name': 'data', 'mountPath': '/data'}, {'name': 'xcom', 'mountPath': '/kubedag/xcom/'},
                         {'name': 'inner', 'mountPath': '/data/inner'}]}))
    obj = k8s_api.wait_for('v1/pods', 'mapped', NS, phase_is('Succeeded', 'Failed'))
    assert obj['status']['phase'] == 'Succeeded'
    volumes = fake_kubelet.pod_dir(obj['metadata']['uid']) / 'volumes' / 'kubernetes.io~empty-dir'
    assert core.read_namespaced_pod_log('mapped', NS).splitlines() == [
        f'{volumes}/xcom/return.json',  # the whole mountPath (given with a trailing slash) and more
        '/kubedag/xcomx/y',  # not a whole path component: not mapped
        f'{volumes}/inner/z',  # the longest mountPath wins
        f'{host}/file',  # hostPath: the host path itself
        f'{host}/file',  # an argument
        f'{volumes}/xcom/return.json',  # $(VAR) expands to the mapped value
    ]
    assert (host / 'file').read_text() == 'from-pod\n'


def test_empty_dir_lives_until_the_pod_is_deleted(k8s_api, core, fake_kubelet):
    core.create_namespaced_pod(NS, pod('scratch', ['sh', '-c', 'echo kept > $(OUT)'],
                                       volumes=[{'name': 'scratch', 'emptyDir': {}}], container={
        'env': [{'name': 'OUT', 'value': '/scratch/f'}], 'volumeMounts': [{'name': 'scratch', 'mountPath': '/scratch'}]}))
    obj = k8s_api.wait_for('v1/pods', 'scratch', NS, phase_is('Succeeded', 'Failed'))
    pod_dir = fake_kubelet.pod_dir(obj['metadata']['uid'])
    assert (pod_dir / 'volumes' / 'kubernetes.io~empty-dir' / 'scratch' / 'f').read_text() == 'kept\n'
    core.delete_namespaced_pod('scratch', NS)
    k8s_api.wait_for('v1/pods', 'scratch', NS, lambda o: o is None)
    eventually(lambda: not pod_dir.exists())


def test_config_map_and_secret_volumes_hold_their_keys(k8s_api, core):
    k8s_api.create({'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'cfg', 'namespace': NS},
                    'data': {'app.ini': 'debug=1\n'}})
    k8s_api.create({'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 'creds', 'namespace': NS},
                    'stringData': {'token': 't0k3n', 'other': 'x'}})
    core.create_namespaced_pod(NS, pod('files', ['sh', '-c', 'cat $(INI) $(TOKEN); ls $(SECRETS)'], volumes=[
        {'name': 'cfg', 'configMap': {'name': 'cfg'}},
        {'name': 'creds', 'secret': {'secretName': 'creds', 'items': [{'key': 'token', 'path': 'auth/token'}]}},
        {'name': 'claim', 'persistentVolumeClaim': {'claimName': 'not-emulated'}}], container={
        'env': [{'name': 'INI', 'value': '/etc/app/app.ini'}, {'name': 'TOKEN', 'value': '/secrets/auth/token'},
                {'name': 'SECRETS', 'value': '/secrets'}],
        'volumeMounts': [{'name': 'cfg', 'mountPath': '/etc/app'}, {'name': 'creds', 'mountPath': '/secrets'},
                         {'name': 'claim', 'mountPath': '/claim'}]}))
    obj = k8s_api.wait_for('v1/pods', 'files', NS, phase_is('Succeeded', 'Failed'))
    assert obj['status']['phase'] == 'Succeeded'
    assert core.read_namespaced_pod_log('files', NS) == 'debug=1\nt0k3nauth\n'


def test_termination_message_is_the_last_4096_bytes_of_the_file(k8s_api, core):
    # /dev/termination-log (the default path) is a file the kubelet provides, mapped like a mount.
    write = 'import sys; open(sys.argv[1], "w").write("a" * 1000 + "b" * 4096)'
    core.create_namespaced_pod(NS, pod('long', ['python3', '-c', write, '/dev/termination-log']))
    obj = k8s_api.wait_for('v1/pods', 'long', NS, phase_is('Succeeded', 'Failed'))
    assert obj['status']['phase'] == 'Succeeded'
    assert terminated_of(obj)['message'] == 'b' * 4096


LINES = 'for i in $$(seq 1 100); do echo line-$$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done; '


@pytest.mark.parametrize('script, policy, expected', [
    (LINES + 'exit 2', 'FallbackToLogsOnError', 'tail'),
    (LINES + 'exit 2', 'File', None),
    (LINES + 'exit 0', 'FallbackToLogsOnError', None),
    (LINES + 'echo why > $(T); exit 2', 'FallbackToLogsOnError', 'why\n'),
])
def test_fallback_to_logs_on_error_uses_the_end_of_the_log(k8s_api, core, script, policy, expected):
    core.create_namespaced_pod(NS, pod('fallback', ['sh', '-c', script], container={
        'env': [{'name': 'T', 'value': '/dev/termination-log'}], 'terminationMessagePolicy': policy}))
    obj = k8s_api.wait_for('v1/pods', 'fallback', NS, phase_is('Succeeded', 'Failed'))
    if expected == 'tail':  # the last 80 lines, at most their last 2048 bytes
        lines = [f'line-{i}-{"x" * 30}\n' for i in range(1, 101)]
        expected = ''.join(lines[-80:])[-2048:]
        assert len(expected) == 2048
    assert terminated_of(obj).get('message') == expected


def test_python_commands_run_with_the_test_interpreter(k8s_api, core):
    core.create_namespaced_pod(NS, pod('py', ['python', '-c', 'import sys, kubedag; print(sys.executable)']))
    obj = k8s_api.wait_for('v1/pods', 'py', NS, phase_is('Succeeded', 'Failed'))
    assert obj['status']['phase'] == 'Succeeded'
    assert core.read_namespaced_pod_log('py', NS) == f'{sys.executable}\n'


def test_env_from_secrets_and_config_maps(k8s_api, core):
    k8s_api.create({'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 'db', 'namespace': NS},
                    'stringData': {'password': 's3cr3t', 'AIRFLOW_CONN_DB': 'postgres://u:p@db:5432/x'}})
    k8s_api.create({'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'vars', 'namespace': NS},
                    'data': {'region': 'eu'}})
    core.create_namespaced_pod(NS, pod('refs', ['sh', '-c', 'echo "$PASSWORD $REGION ${MISSING-unset} $AIRFLOW_CONN_DB $V_region $(PASSWORD)"'],
                                       container={
        'envFrom': [{'secretRef': {'name': 'db'}}, {'configMapRef': {'name': 'vars'}, 'prefix': 'V_'},
                    {'configMapRef': {'name': 'absent', 'optional': True}}],
        'env': [{'name': 'PASSWORD', 'valueFrom': {'secretKeyRef': {'name': 'db', 'key': 'password'}}},
                {'name': 'REGION', 'valueFrom': {'configMapKeyRef': {'name': 'vars', 'key': 'region'}}},
                {'name': 'MISSING', 'valueFrom': {'secretKeyRef': {'name': 'db', 'key': 'nope', 'optional': True}}}]}))
    obj = k8s_api.wait_for('v1/pods', 'refs', NS, phase_is('Succeeded', 'Failed'))
    assert obj['status']['phase'] == 'Succeeded'
    assert core.read_namespaced_pod_log('refs', NS) == 's3cr3t eu unset postgres://u:p@db:5432/x eu s3cr3t\n'


def _waiting(obj: dict[str, Any] | None) -> dict[str, Any]:
    statuses = ((obj or {}).get('status') or {}).get('containerStatuses') or [{}]
    return statuses[0].get('state', {}).get('waiting') or {}


def test_a_missing_secret_keeps_the_container_from_starting_until_it_exists(k8s_api, core):
    core.create_namespaced_pod(NS, pod('blocked', ['sh', '-c', 'echo "$TOKEN"'], container={
        'env': [{'name': 'TOKEN', 'valueFrom': {'secretKeyRef': {'name': 'late', 'key': 'token'}}}]}))
    obj = k8s_api.wait_for('v1/pods', 'blocked', NS, lambda o: _waiting(o).get('reason') == 'CreateContainerConfigError')
    assert obj['status']['phase'] == 'Pending'
    assert _waiting(obj)['message'] == 'secret "late" not found'

    k8s_api.create({'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 'late', 'namespace': NS},
                    'stringData': {'other': 'x'}})
    obj = k8s_api.wait_for('v1/pods', 'blocked', NS, lambda o: 'find key' in _waiting(o).get('message', ''))
    assert _waiting(obj)['message'] == f"couldn't find key token in Secret {NS}/late"

    k8s_api.patch('v1/secrets', 'late', {'stringData': {'token': 'finally'}}, NS)
    obj = k8s_api.wait_for('v1/pods', 'blocked', NS, phase_is('Succeeded', 'Failed'))
    assert obj['status']['phase'] == 'Succeeded'
    assert core.read_namespaced_pod_log('blocked', NS) == 'finally\n'


def test_a_pod_that_cannot_start_fails_at_its_deadline(k8s_api, core):
    core.create_namespaced_pod(NS, pod('never', ['true'], activeDeadlineSeconds=1, container={
        'env': [{'name': 'X', 'valueFrom': {'configMapKeyRef': {'name': 'absent', 'key': 'x'}}}]}))
    obj = k8s_api.wait_for('v1/pods', 'never', NS, phase_is('Succeeded', 'Failed'), timeout=15)
    assert (obj['status']['phase'], obj['status']['reason']) == ('Failed', 'DeadlineExceeded')
    terminated = terminated_of(obj)
    assert (terminated['reason'], terminated['exitCode']) == ('ContainerStatusUnknown', 137)

    core.delete_namespaced_pod('never', NS)
    k8s_api.wait_for('v1/pods', 'never', NS, lambda o: o is None)


def test_a_restarted_kubelet_never_runs_a_never_container_again_and_keeps_its_logs(k8s_api, core, tmp_path):
    """Issue 13: a kubelet restarted on its root reports a running ``restartPolicy: Never`` container it lost as a
    real kubelet does (Failed, ContainerStatusUnknown, 137) instead of starting it a second time; logs of its pods
    are read from disk; a pod whose container never started starts as usual."""
    root, workdir = tmp_path / 'root', tmp_path / 'work'
    workdir.mkdir()
    first = FakeKubelet(k8s_api.url, workdir=workdir, root=root, node_name='restarting').start()
    try:
        for name in ('long', 'short', 'blocked'):
            script = {'long': 'echo run >> starts; echo hi; sleep 60', 'short': 'echo done', 'blocked': 'echo "$X"'}[name]
            extra = {'container': {'env': [{'name': 'X', 'valueFrom': {'configMapKeyRef': {'name': 'late', 'key': 'x'}}}]}} \
                if name == 'blocked' else {}
            core.create_namespaced_pod(NS, pod(name, ['sh', '-c', script], nodeName='restarting', **extra))
        k8s_api.wait_for('v1/pods', 'short', NS, phase_is('Succeeded'))
        k8s_api.wait_for('v1/pods', 'long', NS, lambda o: 'hi' in first.logs(NS, 'long'))
        k8s_api.wait_for('v1/pods', 'blocked', NS, lambda o: _waiting(o).get('reason') == 'CreateContainerConfigError')
    finally:
        first.stop()
    with FakeKubelet(k8s_api.url, workdir=workdir, root=root, node_name='restarting') as second:
        obj = k8s_api.wait_for('v1/pods', 'long', NS, phase_is('Succeeded', 'Failed'))
        terminated = obj['status']['containerStatuses'][0]['state']['terminated']
        assert (obj['status']['phase'], terminated['reason'], terminated['exitCode']) == ('Failed', 'ContainerStatusUnknown', 137)
        assert (workdir / 'starts').read_text() == 'run\n'  # started once, never again
        assert core.read_namespaced_pod_log('long', NS) == 'hi\n'  # from disk, through the API server's proxy
        assert core.read_namespaced_pod_log('short', NS) == 'done\n'
        assert second.logs(NS, 'short') == 'done\n'

        k8s_api.create({'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'late', 'namespace': NS},
                        'data': {'x': 'finally'}})
        assert k8s_api.wait_for('v1/pods', 'blocked', NS, phase_is('Succeeded', 'Failed'))['status']['phase'] == 'Succeeded'
        assert core.read_namespaced_pod_log('blocked', NS) == 'finally\n'

        short_uid = k8s_api.get('v1/pods', 'short', NS)['metadata']['uid']
        core.delete_namespaced_pod('short', NS)
        k8s_api.wait_for('v1/pods', 'short', NS, lambda o: o is None)
        k8s_api.wait_for('v1/pods', 'long', NS, lambda o: not second.log_dir(NS, 'short', short_uid).exists())

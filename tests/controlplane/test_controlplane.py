"""The control plane itself and the fake kubelet as one of its nodes: what a user of `scripts/controlplane` gets."""
from __future__ import annotations

import json

import pytest

from tests.controlplane.cluster import ControlPlane, RealApiServer
from tests.controlplane.fixtures import NODE, wait
from tests.k8s.emulator.errors import StatusError
from tests.k8s.emulator.kubelet import FakeKubelet
from tests.k8s.emulator.node import KubeletAccess

pytestmark = pytest.mark.controlplane


def pod(name: str, *command: str, **spec: object) -> dict:
    return {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': name},
            'spec': {'restartPolicy': 'Never', 'containers': [{'name': 'main', 'image': 'busybox', 'command': list(command)}],
                     **spec}}


def test_kubectl_reaches_the_api_server_as_admin(control_plane: ControlPlane):
    version = json.loads(control_plane.kubectl('version', '-o', 'json').stdout)
    assert version['serverVersion']['gitVersion'] == 'v1.36.5'
    assert version['clientVersion']['gitVersion'] == 'v1.36.5'
    assert control_plane.kubectl('get', '--raw', '/readyz').stdout == 'ok'
    assert control_plane.kubectl('auth', 'can-i', '*', '*').stdout.strip() == 'yes'
    namespaces = control_plane.kubectl('get', 'namespaces', '-o', 'name').stdout.split()
    assert {'namespace/default', 'namespace/kube-system', 'namespace/kube-node-lease'} <= set(namespaces)


def test_the_kubelet_registers_a_ready_node_and_renews_its_lease(real_api: RealApiServer, real_kubelet: FakeKubelet):
    node = real_api.get('v1/nodes', NODE)
    assert node['status']['allocatable']['pods'] == '1100'
    assert node['status']['daemonEndpoints']['kubeletEndpoint']['Port'] == real_kubelet.port
    lease = real_api.get('coordination.k8s.io/v1/leases', NODE, 'kube-node-lease')
    assert lease['spec']['holderIdentity'] == NODE
    first = lease['spec']['renewTime']
    renewed = wait(lambda: (real_api.get('coordination.k8s.io/v1/leases', NODE, 'kube-node-lease') or {})
                   .get('spec', {}).get('renewTime', first) != first, 30, 'a lease renewal')
    assert renewed


def test_a_pod_is_bound_by_the_scheduler_run_and_its_log_read_with_kubectl(
        control_plane: ControlPlane, real_api: RealApiServer, real_kubelet: FakeKubelet, real_namespace: str):
    real_api.create(pod('hello', 'sh', '-c', 'echo hello; echo world'),
                    real_namespace)
    done = real_api.wait_for('v1/pods', 'hello', real_namespace,
                             lambda p: p['status'].get('phase') in ('Succeeded', 'Failed'), timeout=60)
    assert done['spec']['nodeName'] == NODE  # bound by kube-scheduler, not by the fake kubelet
    assert done['status']['phase'] == 'Succeeded'
    terminated = done['status']['containerStatuses'][0]['state']['terminated']
    assert (terminated['exitCode'], terminated['reason']) == (0, 'Completed')
    logs = control_plane.kubectl('logs', '-n', real_namespace, 'hello')
    assert logs.stdout == 'hello\nworld\n'  # proxied by the API server to the kubelet's HTTPS endpoint
    assert control_plane.kubectl('logs', '-n', real_namespace, 'hello', '--tail', '1').stdout == 'world\n'


def test_a_deleted_running_pod_is_stopped_and_confirmed_gone(
        real_api: RealApiServer, real_kubelet: FakeKubelet, real_namespace: str):
    real_api.create(pod('sleeper', 'sleep', '300', terminationGracePeriodSeconds=5), real_namespace)
    real_api.wait_for('v1/pods', 'sleeper', real_namespace, lambda p: p['status'].get('phase') == 'Running', timeout=60)
    real_api.delete('v1/pods', 'sleeper', real_namespace)
    # SIGTERM ends `sleep`; the kubelet then deletes with grace 0 and the pod does not stay Terminating
    assert real_api.wait_for('v1/pods', 'sleeper', real_namespace, lambda p: p is None, timeout=30) is None


def test_owner_references_cascade_through_the_garbage_collector(real_api: RealApiServer, real_namespace: str):
    owner = real_api.create({'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'owner'}}, real_namespace)
    ref = {'apiVersion': 'v1', 'kind': 'ConfigMap', 'name': 'owner', 'uid': owner['metadata']['uid']}
    real_api.create({'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'dependent', 'ownerReferences': [ref]}},
                    real_namespace)
    real_api.delete('v1/configmaps', 'owner', real_namespace)
    assert real_api.wait_for('v1/configmaps', 'dependent', real_namespace, lambda o: o is None, timeout=60) is None


def test_the_node_identity_is_limited_by_the_node_authorizer(control_plane: ControlPlane, real_namespace: str):
    access = KubeletAccess.from_controlplane(control_plane.state_dir)
    as_node = RealApiServer(control_plane.state_dir / 'kubelet.kubeconfig')
    assert access.token == as_node.token
    control_plane.api().create({'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 's'}, 'stringData': {'k': 'v'}},
                               real_namespace)
    with pytest.raises(StatusError) as forbidden:  # no pod of this node refers to it
        as_node.get('v1/secrets', 's', real_namespace)
    assert forbidden.value.code == 403
    with pytest.raises(StatusError) as binding:  # binding pods is the scheduler's
        as_node.create({'apiVersion': 'v1', 'kind': 'Binding', 'metadata': {'name': 'x'},
                        'target': {'apiVersion': 'v1', 'kind': 'Node', 'name': NODE}}, real_namespace)
    assert binding.value.code in (403, 404)


def test_a_pod_reads_its_service_account_token_and_namespace(
        control_plane: ControlPlane, real_api: RealApiServer, real_kubelet: FakeKubelet, real_namespace: str):
    mounted = '/var/run/secrets/kubernetes.io/serviceaccount'  # added to every pod by ServiceAccount admission
    real_api.create(pod('whoami', 'cat', f'{mounted}/namespace', f'{mounted}/token'), real_namespace)
    done = real_api.wait_for('v1/pods', 'whoami', real_namespace,
                             lambda p: p['status'].get('phase') in ('Succeeded', 'Failed'), timeout=60)
    assert any(v['name'].startswith('kube-api-access-') for v in done['spec']['volumes'])
    assert done['status']['phase'] == 'Succeeded'
    output = control_plane.kubectl('logs', '-n', real_namespace, 'whoami').stdout
    assert output.startswith(real_namespace + 'eyJ')  # the namespace, then a JWT from the TokenRequest API

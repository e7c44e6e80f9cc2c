"""
The fake kubelet's node: its credentials, the Node it registers and the Lease it renews.

The same kubelet runs against the emulator (plain HTTP, no credentials, it also
schedules pods) and against a real control plane started by
``scripts/controlplane`` (TLS with the control plane's CA, a bearer token for
``system:node:<name>`` in ``system:nodes`` — the API server's Node authorizer
and NodeRestriction admission then limit it as they limit a kubelet — and the
real kube-scheduler binding pods). :class:`KubeletAccess` holds what differs.
"""
from __future__ import annotations

import dataclasses
import datetime
import pathlib
import ssl
from typing import Any

import yaml

#: What the node offers the scheduler: enough for the benchmarks' 1,000-task fan-out.
DEFAULT_CAPACITY = {'cpu': '64', 'memory': '256Gi', 'pods': '1100', 'ephemeral-storage': '1Ti'}
LEASE_NAMESPACE = 'kube-node-lease'
LEASE_SECONDS = 40  # the kubelet's nodeLeaseDurationSeconds; it renews every quarter of it
RENEW_INTERVAL = LEASE_SECONDS / 4


@dataclasses.dataclass
class KubeletAccess:
    """How the kubelet reaches the API server and serves its own endpoint.

    ``token``/``ca_file``: its credentials and the API server's CA (None: plain
    HTTP without credentials, the emulator); ``tls_cert``/``tls_key``: a
    serving certificate for the log endpoint (None: plain HTTP); ``schedule``:
    bind unscheduled pods itself (no scheduler runs with the emulator).
    """

    api_url: str
    token: str | None = None
    ca_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    schedule: bool = True

    @classmethod
    def from_controlplane(cls, state_dir: str | pathlib.Path) -> KubeletAccess:
        """The kubelet's identity written by ``scripts/controlplane start`` into ``state_dir`` (``kubelet.env``)."""
        env = dict(line.split('=', 1) for line in (pathlib.Path(state_dir) / 'kubelet.env').read_text().split('\n') if '=' in line)
        config = yaml.safe_load(pathlib.Path(env['KUBEDAG_KUBELET_KUBECONFIG']).read_text())
        cluster, user = config['clusters'][0]['cluster'], config['users'][0]['user']
        return cls(api_url=cluster['server'], token=user['token'], ca_file=cluster['certificate-authority'],
                   tls_cert=env['KUBEDAG_KUBELET_TLS_CERT'], tls_key=env['KUBEDAG_KUBELET_TLS_KEY'], schedule=False)

    def client_ssl(self) -> ssl.SSLContext | None:
        """The TLS context for requests to the API server (None for plain HTTP)."""
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None

    def server_ssl(self) -> ssl.SSLContext | None:
        """The TLS context of the kubelet's log endpoint (None for plain HTTP)."""
        if not self.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls_cert, self.tls_key)
        return context

    def headers(self) -> dict[str, str]:
        """Headers of every request: the bearer token, if any."""
        return {'Authorization': f'Bearer {self.token}'} if self.token else {}


def micro_time(moment: datetime.datetime | None = None) -> str:
    """A ``MicroTime`` (RFC 3339 with microseconds), as Leases need."""
    return (moment or datetime.datetime.now(datetime.UTC)).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def node_manifest(name: str) -> dict[str, Any]:
    """The Node the kubelet registers."""
    return {'apiVersion': 'v1', 'kind': 'Node',
            'metadata': {'name': name, 'labels': {'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux',
                                                  'kubernetes.io/arch': 'amd64'}}}


def node_status(name: str, port: int, now: str, capacity: dict[str, str] | None = None) -> dict[str, Any]:
    """The Node's status: Ready, its capacity (= allocatable) and the kubelet endpoint the API server proxies logs to."""
    resources = dict(capacity or DEFAULT_CAPACITY)
    return {'status': {
        'capacity': resources, 'allocatable': resources,
        'addresses': [{'type': 'InternalIP', 'address': '127.0.0.1'}, {'type': 'Hostname', 'address': name}],
        'daemonEndpoints': {'kubeletEndpoint': {'Port': port}},
        'conditions': [{'type': 'Ready', 'status': 'True', 'reason': 'KubeletReady', 'message': 'fake kubelet is ready',
                        'lastHeartbeatTime': now, 'lastTransitionTime': now}],
        'nodeInfo': {'kubeletVersion': 'v0.0.0-fake', 'operatingSystem': 'linux', 'architecture': 'amd64',
                     'containerRuntimeVersion': 'fake://local-processes', 'kernelVersion': '', 'osImage': '',
                     'kubeProxyVersion': '', 'machineID': '', 'systemUUID': '', 'bootID': ''},
    }}


def lease_manifest(name: str, node_uid: str | None) -> dict[str, Any]:
    """The node's Lease in ``kube-node-lease`` (owned by the Node, as the kubelet makes it), renewed now."""
    meta: dict[str, Any] = {'name': name, 'namespace': LEASE_NAMESPACE}
    if node_uid:
        meta['ownerReferences'] = [{'apiVersion': 'v1', 'kind': 'Node', 'name': name, 'uid': node_uid}]
    return {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease', 'metadata': meta,
            'spec': {'holderIdentity': name, 'leaseDurationSeconds': LEASE_SECONDS, 'renewTime': micro_time()}}


async def write_projected(run: Any, volume: dict[str, Any], path: pathlib.Path) -> None:
    """Write a ``projected`` volume's files into ``path`` for the pod of ``run`` (a ``_PodRun``): ``configMap``
    and ``downwardAPI`` (``fieldRef``) sources, and a ``serviceAccountToken`` from the TokenRequest API bound
    to the pod (what the API server's ServiceAccount admission mounts as ``kube-api-access-*``). A token the
    server does not give (the emulator has no TokenRequest) is left out."""
    from .kubelet import _field_ref  # the kubelet's downward-API resolver

    path.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}
    for source in volume['projected'].get('sources') or []:
        if 'configMap' in source:
            ref = source['configMap']
            obj = await run.kubelet._read_object(run.namespace, 'configmaps', ref.get('name', ''))
            data = (obj or {}).get('data') or {}
            for item in ref.get('items') or [{'key': k, 'path': k} for k in data]:
                if item['key'] in data:
                    files[item['path']] = data[item['key']].encode()
        elif 'downwardAPI' in source:
            for item in source['downwardAPI'].get('items') or []:
                if (item.get('fieldRef') or {}).get('fieldPath'):
                    files[item['path']] = _field_ref(run.pod, item['fieldRef']['fieldPath']).encode()
        elif 'serviceAccountToken' in source:
            token = source['serviceAccountToken']
            account = run.pod['spec'].get('serviceAccountName') or 'default'
            status, body = await run.kubelet._request(
                'POST', f'/api/v1/namespaces/{run.namespace}/serviceaccounts/{account}/token',
                {'apiVersion': 'authentication.k8s.io/v1', 'kind': 'TokenRequest',
                 'spec': {'audiences': [token['audience']] if token.get('audience') else None,
                          'expirationSeconds': token.get('expirationSeconds', 3607),
                          'boundObjectRef': {'apiVersion': 'v1', 'kind': 'Pod', 'name': run.name, 'uid': run.uid}}})
            if status == 201:
                files[token.get('path', 'token')] = body['status']['token'].encode()
    for rel, data in files.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(volume['projected'].get('defaultMode', 0o644))

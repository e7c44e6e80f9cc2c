"""
Conformance of the Kubernetes API emulator, through the official client and raw HTTP.

Every test here states a behaviour of the REAL API server that the kubedag
controller (kopf + the kubernetes client) relies on. The tests take their
target from the ``k8s`` fixture:

* by default, a fresh emulator (``k8s_api``) per test;
* with ``KUBEDAG_CONFORMANCE_KUBECONFIG=/path/to/kubeconfig``, the cluster of
  that kubeconfig: the test CRD is installed once (and removed at the end),
  each test gets its own namespace (deleted afterwards, not awaited).

Differences that only exist on one side are marked: ``@emulator_only`` tests
use emulator hooks (event-history compaction, a short bookmark interval) that
a real cluster has no API for. Timing-dependent behaviours (garbage
collection, namespace termination) are polled, never slept on.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import kopf
import kubernetes
import pytest
import urllib3
import yaml

from tests.k8s.emulator import EmulatedApiServer
from tests.k8s.emulator.fixtures import TEST_CRD

KUBECONFIG_ENV = 'KUBEDAG_CONFORMANCE_KUBECONFIG'
ON_CLUSTER = bool(os.environ.get(KUBECONFIG_ENV))
GROUP, VERSION, PLURAL, KIND = 'emulator.kubedag.test', 'v1', 'widgets', 'Widget'
API_VERSION = f'{GROUP}/{VERSION}'

emulator_only = pytest.mark.skipif(ON_CLUSTER, reason='uses an emulator-only hook; a real cluster has no API for it')


@pytest.fixture(scope='session')
def k8s_api_options() -> dict[str, Any]:
    # A short bookmark interval so that bookmark tests need not wait a minute (real: ~1 min).
    return {'bookmark_interval': 0.5}


# --- the target ------------------------------------------------------------------------------------

@dataclasses.dataclass
class RawResponse:
    status: int
    body: Any
    headers: dict[str, str]


@dataclasses.dataclass
class Target:
    """What a test talks to: an API client, its own namespace, and raw HTTP."""
    api_client: kubernetes.client.ApiClient
    namespace: str
    emulator: EmulatedApiServer | None

    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.api_client)

    @property
    def custom(self) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.api_client)

    @property
    def config(self) -> kubernetes.client.Configuration:
        return self.api_client.configuration

    def _auth(self) -> dict[str, str]:
        token = self.config.get_api_key_with_prefix('BearerToken') or self.config.get_api_key_with_prefix('authorization')
        return {'Authorization': token} if token else {}

    def raw(self, method: str, path: str, body: Any = None, *, content_type: str = 'application/json',
            params: dict[str, str] | None = None) -> RawResponse:
        """One HTTP request through the client's connection pool (so real-cluster TLS/auth apply)."""
        url = self.config.host + path
        if params:
            url += '?' + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        response = self.api_client.rest_client.pool_manager.request(
            method, url, body=data, headers={'Content-Type': content_type, 'Accept': 'application/json', **self._auth()})
        text = response.data.decode()
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return RawResponse(response.status, parsed, dict(response.headers))

    def watch(self, path: str, params: dict[str, str], until: Callable[[list[dict[str, Any]]], bool],
              timeout: float = 10.0) -> list[dict[str, Any]]:
        """Stream a raw watch until ``until(events)`` holds (or the server closes it)."""
        query = urllib.parse.urlencode({'watch': 'true', **params})
        response = self.api_client.rest_client.pool_manager.request(
            'GET', f'{self.config.host}{path}?{query}', headers=self._auth(), preload_content=False,
            timeout=urllib3.Timeout(connect=5, read=timeout))
        events: list[dict[str, Any]] = []
        buffer = b''
        deadline = time.monotonic() + timeout
        try:
            for chunk in response.stream(1024, decode_content=True):
                buffer += chunk
                while b'\n' in buffer:
                    line, buffer = buffer.split(b'\n', 1)
                    if line.strip():
                        events.append(json.loads(line))
                if until(events) or time.monotonic() > deadline:
                    break
        finally:
            response.release_conn()
            response.close()
        return events

    def widget(self, name: str, spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
        return {'apiVersion': API_VERSION, 'kind': KIND, 'metadata': {'name': name, **meta},
                'spec': spec if spec is not None else {'size': 1}}

    def create_widget(self, name: str, spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.widget(name, spec, **meta))

    def get_widget(self, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except kubernetes.client.ApiException as e:
            if e.status == 404:
                return None
            raise

    def widgets_path(self, name: str = '', sub: str = '') -> str:
        path = f'/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/{PLURAL}'
        return path + (f'/{name}' if name else '') + (f'/{sub}' if sub else '')

    def kopf_connection(self) -> kopf.ConnectionInfo:
        token = self._auth().get('Authorization')
        scheme, _, value = (token or '').partition(' ')
        return kopf.ConnectionInfo(
            server=self.config.host, ca_path=self.config.ssl_ca_cert, insecure=not self.config.verify_ssl,
            scheme=scheme or None, token=value or None,
            certificate_path=self.config.cert_file, private_key_path=self.config.key_file)


def eventually(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll ``check()`` until it returns a truthy value; return it (asynchronous controllers)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f'condition not reached in {timeout}s: {check}')
        time.sleep(interval)


@pytest.fixture(scope='session')
def _cluster_client() -> Iterator[kubernetes.client.ApiClient | None]:
    """The real cluster's client with the test CRD installed (session-wide), or None."""
    if not ON_CLUSTER:
        yield None
        return
    client = kubernetes.config.new_client_from_config(config_file=os.environ[KUBECONFIG_ENV])
    apiext = kubernetes.client.ApiextensionsV1Api(client)
    crd = yaml.safe_load(TEST_CRD.read_text())

    def created() -> bool:  # a CRD still terminating from an earlier run is waited for, then made again
        try:
            apiext.create_custom_resource_definition(crd)
        except kubernetes.client.ApiException as e:
            if e.status != 409:
                raise
            return not apiext.read_custom_resource_definition(crd['metadata']['name']).metadata.deletion_timestamp
        return True
    eventually(created, timeout=60, interval=0.5)
    eventually(lambda: any(c.type == 'Established' and c.status == 'True'
                           for c in apiext.read_custom_resource_definition(crd['metadata']['name']).status.conditions or []))
    _wait_for_the_garbage_collector(client)
    yield client
    with contextlib.suppress(kubernetes.client.ApiException):
        apiext.delete_custom_resource_definition(crd['metadata']['name'])
    client.close()


def _wait_for_the_garbage_collector(client: kubernetes.client.ApiClient) -> None:
    """Wait until the cluster's garbage collector watches the new CRD's objects: it rediscovers resources every
    30 s, so until then dependents of a Widget are not collected (a real-cluster delay the emulator does not have)."""
    core, custom = kubernetes.client.CoreV1Api(client), kubernetes.client.CustomObjectsApi(client)
    namespace = f'conformance-gc-{uuid.uuid4().hex[:8]}'
    core.create_namespace({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': namespace}})
    target = Target(client, namespace, None)
    try:
        owner = target.create_widget('owner')
        _owned_config_map(target, 'dependent', owner)
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, 'owner')
        eventually(lambda: _config_map(target, 'dependent') is None, timeout=90, interval=0.5)
    finally:
        core.delete_namespace(namespace)


@pytest.fixture
def k8s(request: pytest.FixtureRequest, _cluster_client: kubernetes.client.ApiClient | None) -> Iterator[Target]:
    namespace = f'conformance-{uuid.uuid4().hex[:8]}'
    if _cluster_client is None:
        emulator: EmulatedApiServer = request.getfixturevalue('k8s_api')
        client = emulator.api_client()
    else:
        emulator, client = None, _cluster_client
    target = Target(client, namespace, emulator)
    target.core.create_namespace({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {'name': namespace}})
    try:
        yield target
    finally:
        if emulator is None:  # a failed test may leave finalizers: drop them so the namespace and the CRD can go
            with contextlib.suppress(kubernetes.client.ApiException):
                for widget in target.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)['items']:
                    if widget['metadata'].get('finalizers'):
                        target.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                                     widget['metadata']['name'], {'metadata': {'finalizers': None}})
                target.core.delete_namespace(namespace)
        else:
            client.close()


def pod_manifest(name: str, **spec: Any) -> dict[str, Any]:
    """A pod that no real scheduler can place (impossible nodeSelector): it stays Pending everywhere."""
    return {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': name},
            'spec': {'nodeSelector': {'kubedag.test/nowhere': 'true'}, 'terminationGracePeriodSeconds': 0,
                     'containers': [{'name': 'main', 'image': 'busybox:1.36', 'command': ['true']}], **spec}}


# --- discovery ---------------------------------------------------------------------------------------

def test_discovery_serves_what_kopf_and_the_client_need(k8s):
    assert 'v1' in k8s.raw('GET', '/api').body['versions']
    core = {r['name']: r for r in k8s.raw('GET', '/api/v1').body['resources']}
    assert {'pods', 'pods/log', 'pods/status', 'events', 'namespaces'} <= set(core)
    assert core['pods']['namespaced'] is True and core['namespaces']['namespaced'] is False
    assert {'create', 'list', 'watch', 'patch'} <= set(core['pods']['verbs'])
    groups = {g['name']: g for g in k8s.raw('GET', '/apis').body['groups']}
    assert {'events.k8s.io', 'coordination.k8s.io', 'apiextensions.k8s.io', GROUP} <= set(groups)
    assert groups[GROUP]['preferredVersion']['version'] == VERSION
    assert k8s.raw('GET', f'/apis/{GROUP}').body['name'] == GROUP
    custom = {r['name']: r for r in k8s.raw('GET', f'/apis/{GROUP}/{VERSION}').body['resources']}
    assert custom[PLURAL]['kind'] == KIND and 'widgets/status' in custom
    assert k8s.raw('GET', '/apis/no.such.group/v1').status == 404
    assert k8s.raw('GET', '/version').body['major'] == '1'
    assert k8s.raw('GET', '/readyz').status == 200


# --- create / read / conflicts -----------------------------------------------------------------------

def test_create_is_201_and_sets_server_fields(k8s):
    response = k8s.raw('POST', k8s.widgets_path(), k8s.widget('w1'))
    assert response.status == 201
    meta = response.body['metadata']
    assert meta['uid'] and meta['resourceVersion'] and meta['creationTimestamp'].endswith('Z')
    assert meta['generation'] == 1
    assert k8s.get_widget('w1')['metadata']['uid'] == meta['uid']


def test_resource_versions_come_from_one_increasing_counter(k8s):
    # Opaque strings by contract; etcd-backed servers (and the emulator) use its global revision.
    first = k8s.create_widget('w1')['metadata']['resourceVersion']
    second = k8s.core.create_namespaced_config_map(k8s.namespace, {'metadata': {'name': 'c1'}}).metadata.resource_version
    third = k8s.create_widget('w2')['metadata']['resourceVersion']
    assert int(first) < int(second) < int(third)
    listed = k8s.custom.list_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL)
    assert int(listed['metadata']['resourceVersion']) >= int(third)


def test_duplicate_name_is_409_already_exists(k8s):
    k8s.create_widget('w1')
    response = k8s.raw('POST', k8s.widgets_path(), k8s.widget('w1'))
    assert response.status == 409
    assert response.body['reason'] == 'AlreadyExists'
    assert response.body['details']['name'] == 'w1'


def test_missing_object_is_404_with_a_status_body(k8s):
    response = k8s.raw('GET', k8s.widgets_path('ghost'))
    assert response.status == 404
    body = response.body
    assert (body['kind'], body['status'], body['reason'], body['code']) == ('Status', 'Failure', 'NotFound', 404)
    assert body['details'] == {'name': 'ghost', 'group': GROUP, 'kind': PLURAL}
    assert body['message'] == f'{PLURAL}.{GROUP} "ghost" not found'


def test_creating_in_a_missing_namespace_is_404(k8s):
    response = k8s.raw('POST', f'/api/v1/namespaces/no-such-ns-{uuid.uuid4().hex[:6]}/configmaps', {'metadata': {'name': 'c'}})
    assert response.status == 404
    assert response.body['details']['kind'] == 'namespaces'


def test_generate_name(k8s):
    generated = {**k8s.widget(''), 'metadata': {'generateName': 'gen-'}}
    first = k8s.custom.create_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL, generated)
    second = k8s.custom.create_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL, generated)
    for obj in (first, second):
        assert obj['metadata']['name'].startswith('gen-') and len(obj['metadata']['name']) == len('gen-') + 5
    assert first['metadata']['name'] != second['metadata']['name']
    response = k8s.raw('POST', k8s.widgets_path(), {**k8s.widget(''), 'metadata': {}})
    assert response.status == 422
    assert 'name or generateName is required' in response.body['message']


def test_stale_resource_version_is_409_conflict(k8s):
    old = k8s.create_widget('w1')
    k8s.custom.patch_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL, 'w1', {'spec': {'size': 2}})
    with pytest.raises(kubernetes.client.ApiException) as exc:
        k8s.custom.replace_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL, 'w1', old)
    assert exc.value.status == 409
    assert json.loads(exc.value.body)['reason'] == 'Conflict'
    # A merge patch that carries a resourceVersion is an optimistic lock too.
    response = k8s.raw('PATCH', k8s.widgets_path('w1'),
                       {'metadata': {'resourceVersion': old['metadata']['resourceVersion']}, 'spec': {'size': 5}},
                       content_type='application/merge-patch+json')
    assert response.status == 409
    assert k8s.get_widget('w1')['spec']['size'] == 2


def test_update_of_a_custom_resource_requires_a_resource_version(k8s):
    k8s.create_widget('w1')
    response = k8s.raw('PUT', k8s.widgets_path('w1'), k8s.widget('w1', {'size': 3}))
    assert response.status == 422
    assert 'metadata.resourceVersion' in response.body['message']


# --- generation, status subresource, no-op writes ------------------------------------------------------

def test_generation_bumps_on_spec_changes_only(k8s):
    k8s.create_widget('w1')
    patch = lambda body, sub='': k8s.raw('PATCH', k8s.widgets_path('w1', sub), body,  # noqa: E731
                                         content_type='application/merge-patch+json').body
    assert patch({'spec': {'size': 2}})['metadata']['generation'] == 2
    assert patch({'metadata': {'labels': {'a': 'b'}, 'annotations': {'x': 'y'}}})['metadata']['generation'] == 2
    assert patch({'status': {'phase': 'Done'}}, 'status')['metadata']['generation'] == 2
    assert patch({'spec': {'size': 3}})['metadata']['generation'] == 3


def test_status_subresource_is_kept_apart(k8s):
    k8s.create_widget('w1')
    main = k8s.raw('PATCH', k8s.widgets_path('w1'), {'spec': {'size': 2}, 'status': {'phase': 'Ignored'}},
                   content_type='application/merge-patch+json').body
    assert main['spec']['size'] == 2 and 'phase' not in main.get('status', {})
    status = k8s.raw('PATCH', k8s.widgets_path('w1', 'status'), {'spec': {'size': 9}, 'status': {'phase': 'Done'}},
                     content_type='application/merge-patch+json').body
    assert status['status'] == {'phase': 'Done'} and status['spec']['size'] == 2
    current = k8s.get_widget('w1')
    current['status'] = {'phase': 'Replaced'}
    current['spec']['size'] = 7
    replaced = k8s.custom.replace_namespaced_custom_object_status(GROUP, VERSION, k8s.namespace, PLURAL, 'w1', current)
    assert replaced['status'] == {'phase': 'Replaced'} and replaced['spec']['size'] == 2
    # Status set on create is dropped when the status subresource is enabled.
    created = k8s.raw('POST', k8s.widgets_path(), {**k8s.widget('w2'), 'status': {'phase': 'X'}}).body
    assert 'phase' not in created.get('status', {})


def test_noop_patch_keeps_the_resource_version(k8s):
    created = k8s.create_widget('w1', labels={'a': 'b'})
    same = k8s.custom.patch_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL, 'w1', {'metadata': {'labels': {'a': 'b'}}})
    assert same['metadata']['resourceVersion'] == created['metadata']['resourceVersion']


# --- list & selectors ------------------------------------------------------------------------------------

def test_list_with_label_selectors(k8s):
    for name, labels in [('a', {'tier': 'web', 'env': 'prod'}), ('b', {'tier': 'db', 'env': 'prod'}),
                         ('c', {'tier': 'web'}), ('d', {})]:
        k8s.create_widget(name, labels=labels)

    def names(selector: str) -> set[str]:
        items = k8s.custom.list_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL, label_selector=selector)['items']
        return {item['metadata']['name'] for item in items}

    assert names('tier=web') == {'a', 'c'}
    assert names('tier==web,env=prod') == {'a'}
    assert names('tier!=web') == {'b', 'd'}  # != also matches objects without the label
    assert names('tier in (web,db)') == {'a', 'b', 'c'}
    assert names('tier notin (web)') == {'b', 'd'}
    assert names('env') == {'a', 'b'}
    assert names('!env') == {'c', 'd'}
    assert names('') == {'a', 'b', 'c', 'd'}
    assert k8s.raw('GET', k8s.widgets_path(), params={'labelSelector': 'bad key=1'}).status == 400


def test_field_selectors(k8s):
    k8s.create_widget('a')
    k8s.create_widget('b')
    items = k8s.custom.list_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL, field_selector='metadata.name=b')['items']
    assert [i['metadata']['name'] for i in items] == ['b']
    items = k8s.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, field_selector=f'metadata.namespace={k8s.namespace},metadata.name!=b')['items']
    assert [i['metadata']['name'] for i in items] == ['a']
    k8s.core.create_namespaced_pod(k8s.namespace, pod_manifest('p1'))
    assert [p.metadata.name for p in k8s.core.list_namespaced_pod(k8s.namespace, field_selector='status.phase=Pending').items] == ['p1']
    assert k8s.core.list_namespaced_pod(k8s.namespace, field_selector='status.phase=Running').items == []
    response = k8s.raw('GET', k8s.widgets_path(), params={'fieldSelector': 'spec.size=1'})
    assert response.status == 400
    assert response.body['reason'] == 'BadRequest'


def test_list_pagination(k8s):
    for i in range(5):
        k8s.core.create_namespaced_config_map(k8s.namespace, {'metadata': {'name': f'c{i}'}})
    first = k8s.core.list_namespaced_config_map(k8s.namespace, limit=2)
    assert len(first.items) == 2 and first.metadata._continue
    rest = k8s.core.list_namespaced_config_map(k8s.namespace, limit=10, _continue=first.metadata._continue)
    names = [c.metadata.name for c in first.items + rest.items]
    assert sorted(n for n in names if n.startswith('c')) == [f'c{i}' for i in range(5)]
    assert not rest.metadata._continue


def test_every_page_of_a_list_has_the_first_pages_resource_version(k8s):
    """A client that lists in pages then watches from the list's resourceVersion (kopf with ``chunk_size``) must
    see every change made while it read the later pages: each page says the first page's resourceVersion."""
    for i in range(4):
        k8s.core.create_namespaced_config_map(k8s.namespace, {'metadata': {'name': f'c{i}'}})
    first = k8s.core.list_namespaced_config_map(k8s.namespace, limit=2)
    k8s.core.patch_namespaced_config_map('c0', k8s.namespace, {'data': {'changed': 'after the first page'}})
    rest = k8s.core.list_namespaced_config_map(k8s.namespace, limit=10, _continue=first.metadata._continue)
    assert rest.metadata.resource_version == first.metadata.resource_version


# --- watch ---------------------------------------------------------------------------------------------------

def test_watch_streams_added_modified_deleted_and_resumes(k8s):
    since = k8s.custom.list_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL)['metadata']['resourceVersion']
    k8s.create_widget('w1')
    k8s.custom.patch_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL, 'w1', {'spec': {'size': 2}})
    k8s.custom.delete_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL, 'w1')
    watch = kubernetes.watch.Watch()
    events = []
    for event in watch.stream(k8s.custom.list_namespaced_custom_object, GROUP, VERSION, k8s.namespace, PLURAL,
                              resource_version=since, timeout_seconds=5):
        events.append(event)
        if len(events) == 3:
            watch.stop()
    assert [e['type'] for e in events] == ['ADDED', 'MODIFIED', 'DELETED']
    assert events[1]['object']['spec']['size'] == 2
    rvs = [int(e['object']['metadata']['resourceVersion']) for e in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3
    # Resuming from the first event's resourceVersion replays only what came after it.
    resumed = k8s.watch(k8s.widgets_path(), {'resourceVersion': str(rvs[0])}, until=lambda evs: len(evs) >= 2)
    assert [e['type'] for e in resumed[:2]] == ['MODIFIED', 'DELETED']


def test_watch_without_resource_version_starts_with_the_current_state(k8s):
    k8s.create_widget('w1')
    events = k8s.watch(k8s.widgets_path(), {}, until=lambda evs: len(evs) >= 1)
    assert events[0]['type'] == 'ADDED' and events[0]['object']['metadata']['name'] == 'w1'


def test_watch_with_label_selector_sees_objects_enter_and_leave(k8s):
    since = k8s.create_widget('w1', labels={'watched': 'no'})['metadata']['resourceVersion']
    patch = lambda value: k8s.custom.patch_namespaced_custom_object(  # noqa: E731
        GROUP, VERSION, k8s.namespace, PLURAL, 'w1', {'metadata': {'labels': {'watched': value}}})
    patch('yes')
    patch('no')
    events = k8s.watch(k8s.widgets_path(), {'resourceVersion': since, 'labelSelector': 'watched=yes'},
                       until=lambda evs: len(evs) >= 2)
    assert [e['type'] for e in events[:2]] == ['ADDED', 'DELETED']


def test_watch_timeout_seconds_closes_the_stream(k8s):
    started = time.monotonic()
    events = k8s.watch(k8s.widgets_path(), {'timeoutSeconds': '1', 'resourceVersion': '0'}, until=lambda evs: False, timeout=15)
    assert events == []
    assert time.monotonic() - started < 10


@emulator_only  # real servers send a BOOKMARK about once a minute
def test_watch_bookmarks(k8s):
    k8s.create_widget('w1')
    rv = k8s.get_widget('w1')['metadata']['resourceVersion']
    events = k8s.watch(k8s.widgets_path(), {'resourceVersion': rv, 'allowWatchBookmarks': 'true'},
                       until=lambda evs: any(e['type'] == 'BOOKMARK' for e in evs))
    bookmark = next(e for e in events if e['type'] == 'BOOKMARK')
    assert bookmark['object']['kind'] == KIND
    assert int(bookmark['object']['metadata']['resourceVersion']) >= int(rv)


def test_watch_send_initial_events_ends_with_a_bookmark(k8s):
    # Real clusters: the WatchList feature (beta, on by default since 1.32).
    k8s.create_widget('w1')
    events = k8s.watch(k8s.widgets_path(), {'sendInitialEvents': 'true', 'resourceVersionMatch': 'NotOlderThan',
                                            'allowWatchBookmarks': 'true'},
                       until=lambda evs: any(e['type'] == 'BOOKMARK' for e in evs))
    assert events[0]['type'] == 'ADDED'
    bookmark = next(e for e in events if e['type'] == 'BOOKMARK')
    assert bookmark['object']['metadata']['annotations']['k8s.io/initial-events-end'] == 'true'


def test_watch_from_a_compacted_resource_version_is_410_gone(k8s):
    k8s.create_widget('w1')
    if k8s.emulator is not None:
        k8s.emulator.compact()  # on a real cluster, revision 1 was compacted long ago
    events = k8s.watch(k8s.widgets_path(), {'resourceVersion': '1'}, until=lambda evs: len(evs) >= 1)
    assert events[0]['type'] == 'ERROR'
    assert events[0]['object']['code'] == 410
    assert events[0]['object']['reason'] in ('Expired', 'Gone')


# --- deletion: finalizers, garbage collection, namespaces --------------------------------------------------

def test_finalizers_hold_deletion_until_removed(k8s):
    k8s.create_widget('w1', finalizers=['kubedag.test/hold'])
    k8s.custom.delete_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL, 'w1')
    held = k8s.get_widget('w1')
    assert held['metadata']['deletionTimestamp']
    assert held['metadata']['generation'] == 2  # setting deletionTimestamp bumps generation
    response = k8s.raw('PATCH', k8s.widgets_path('w1'), {'metadata': {'finalizers': ['kubedag.test/hold', 'kubedag.test/more']}},
                       content_type='application/merge-patch+json')
    assert response.status == 422  # no new finalizers on an object being deleted
    k8s.custom.patch_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL, 'w1', {'metadata': {'finalizers': None}})
    assert k8s.get_widget('w1') is None


def _owned_config_map(k8s: Target, name: str, owner: dict[str, Any]) -> None:
    k8s.core.create_namespaced_config_map(k8s.namespace, {'metadata': {'name': name, 'ownerReferences': [{
        'apiVersion': API_VERSION, 'kind': KIND, 'name': owner['metadata']['name'], 'uid': owner['metadata']['uid'],
        'blockOwnerDeletion': True, 'controller': True}]}})


def _config_map(k8s: Target, name: str) -> Any:
    try:
        return k8s.core.read_namespaced_config_map(name, k8s.namespace)
    except kubernetes.client.ApiException as e:
        if e.status == 404:
            return None
        raise


def test_background_cascading_deletion(k8s):
    owner = k8s.create_widget('owner')
    _owned_config_map(k8s, 'dependent', owner)
    k8s.custom.delete_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL, 'owner')
    assert k8s.get_widget('owner') is None
    eventually(lambda: _config_map(k8s, 'dependent') is None)


def test_foreground_cascading_deletion(k8s):
    owner = k8s.create_widget('owner')
    _owned_config_map(k8s, 'dependent', owner)
    k8s.custom.delete_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL, 'owner',
                                               propagation_policy='Foreground')
    eventually(lambda: _config_map(k8s, 'dependent') is None)
    eventually(lambda: k8s.get_widget('owner') is None)


def test_orphan_deletion_keeps_dependents(k8s):
    owner = k8s.create_widget('owner')
    _owned_config_map(k8s, 'dependent', owner)
    k8s.custom.delete_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL, 'owner', propagation_policy='Orphan')
    eventually(lambda: k8s.get_widget('owner') is None)
    eventually(lambda: not (_config_map(k8s, 'dependent').metadata.owner_references or []))


def test_delete_preconditions(k8s):
    k8s.create_widget('w1')
    response = k8s.raw('DELETE', k8s.widgets_path('w1'), {'preconditions': {'uid': 'not-the-uid'}})
    assert response.status == 409
    assert k8s.get_widget('w1') is not None


def test_delete_collection_by_label(k8s):
    k8s.create_widget('a', labels={'batch': '1'})
    k8s.create_widget('b', labels={'batch': '1'})
    k8s.create_widget('c', labels={'batch': '2'})
    k8s.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL, label_selector='batch=1')
    remaining = k8s.custom.list_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL)['items']
    assert [i['metadata']['name'] for i in remaining] == ['c']


def test_namespace_deletion_empties_it_first(k8s):
    ns = f'{k8s.namespace}-x'
    k8s.core.create_namespace({'metadata': {'name': ns}})
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, {**k8s.widget('held'), 'metadata': {
        'name': 'held', 'finalizers': ['kubedag.test/hold']}})
    k8s.core.delete_namespace(ns)
    assert k8s.core.read_namespace(ns).status.phase == 'Terminating'
    response = k8s.raw('POST', f'/api/v1/namespaces/{ns}/configmaps', {'metadata': {'name': 'late'}})
    assert response.status == 403  # no new content in a terminating namespace
    eventually(lambda: k8s.custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, 'held')['metadata'].get('deletionTimestamp'))
    k8s.custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, 'held', {'metadata': {'finalizers': None}})

    def gone() -> bool:
        try:
            k8s.core.read_namespace(ns)
        except kubernetes.client.ApiException as e:
            return e.status == 404
        return False
    eventually(gone, timeout=60)


def test_bound_pods_are_deleted_gracefully(k8s):
    # A pod bound to a node waits for its kubelet to confirm (a final delete with grace 0).
    k8s.core.create_namespaced_pod(k8s.namespace, pod_manifest('p1', terminationGracePeriodSeconds=30))
    response = k8s.raw('POST', f'/api/v1/namespaces/{k8s.namespace}/pods/p1/binding', {
        'apiVersion': 'v1', 'kind': 'Binding', 'metadata': {'name': 'p1'},
        'target': {'apiVersion': 'v1', 'kind': 'Node', 'name': 'kubedag-no-such-node'}})
    assert response.status == 201
    assert k8s.core.read_namespaced_pod('p1', k8s.namespace).spec.node_name == 'kubedag-no-such-node'
    k8s.core.delete_namespaced_pod('p1', k8s.namespace)
    lingering = k8s.core.read_namespaced_pod('p1', k8s.namespace)
    assert lingering.metadata.deletion_timestamp and lingering.metadata.deletion_grace_period_seconds == 30
    k8s.core.delete_namespaced_pod('p1', k8s.namespace, grace_period_seconds=0)
    eventually(lambda: not k8s.core.list_namespaced_pod(k8s.namespace, field_selector='metadata.name=p1').items)


def test_unbound_pods_are_deleted_at_once(k8s):
    k8s.core.create_namespaced_pod(k8s.namespace, pod_manifest('p1', terminationGracePeriodSeconds=30))
    k8s.core.delete_namespaced_pod('p1', k8s.namespace)
    assert not k8s.core.list_namespaced_pod(k8s.namespace, field_selector='metadata.name=p1').items


# --- patches ---------------------------------------------------------------------------------------------------

def test_merge_patch_semantics(k8s):
    k8s.create_widget('w1', {'size': 1, 'tags': ['a', 'b'], 'note': 'x', 'extra': {'k1': 1, 'k2': 2}})
    patched = k8s.raw('PATCH', k8s.widgets_path('w1'), {'spec': {'tags': ['c'], 'note': None, 'extra': {'k1': None, 'k3': 3}}},
                      content_type='application/merge-patch+json').body
    assert patched['spec']['tags'] == ['c']  # lists are replaced
    assert 'note' not in patched['spec']  # null deletes
    assert patched['spec']['extra'] == {'k2': 2, 'k3': 3}  # maps merge


def test_json_patch_and_its_test_operation(k8s):
    created = k8s.create_widget('w1', finalizers=['a/x'])
    rv = created['metadata']['resourceVersion']
    ok = k8s.raw('PATCH', k8s.widgets_path('w1'), [
        {'op': 'test', 'path': '/metadata/resourceVersion', 'value': rv},
        {'op': 'add', 'path': '/metadata/finalizers/-', 'value': 'b/y'}], content_type='application/json-patch+json')
    assert ok.status == 200 and ok.body['metadata']['finalizers'] == ['a/x', 'b/y']
    stale = k8s.raw('PATCH', k8s.widgets_path('w1'), [
        {'op': 'test', 'path': '/metadata/resourceVersion', 'value': rv},
        {'op': 'remove', 'path': '/metadata/finalizers/0'}], content_type='application/json-patch+json')
    assert stale.status == 422  # what kopf expects when its finalizer patch races a newer change
    assert k8s.get_widget('w1')['metadata']['finalizers'] == ['a/x', 'b/y']


def test_strategic_merge_patch_on_built_ins(k8s):
    k8s.core.create_namespaced_pod(k8s.namespace, pod_manifest('p1', containers=[
        {'name': 'a', 'image': 'busybox:1.36', 'command': ['true']},
        {'name': 'b', 'image': 'busybox:1.36', 'command': ['true']}]))
    # The official client sends a dict body of patch_* on built-ins as a strategic merge patch.
    patched = k8s.core.patch_namespaced_pod('p1', k8s.namespace, {
        'metadata': {'finalizers': ['kubedag.test/one']},
        'spec': {'containers': [{'name': 'b', 'image': 'busybox:1.37'}]}})
    assert [(c.name, c.image) for c in patched.spec.containers] == [('a', 'busybox:1.36'), ('b', 'busybox:1.37')]
    patched = k8s.core.patch_namespaced_pod('p1', k8s.namespace, {'metadata': {'finalizers': ['kubedag.test/two']}})
    # merged as a set, the patch's items first (apimachinery's normalizeElementOrder; found on kube-apiserver 1.36)
    assert patched.metadata.finalizers == ['kubedag.test/two', 'kubedag.test/one']
    patched = k8s.core.patch_namespaced_pod('p1', k8s.namespace, {'metadata': {'$deleteFromPrimitiveList/finalizers': ['kubedag.test/one', 'kubedag.test/two']}})
    assert not patched.metadata.finalizers


def test_strategic_merge_patch_is_415_for_custom_resources(k8s):
    k8s.create_widget('w1')
    response = k8s.raw('PATCH', k8s.widgets_path('w1'), {'spec': {'size': 2}}, content_type='application/strategic-merge-patch+json')
    assert response.status == 415


def test_pod_spec_is_immutable_except_images(k8s):
    k8s.core.create_namespaced_pod(k8s.namespace, pod_manifest('p1'))
    response = k8s.raw('PATCH', f'/api/v1/namespaces/{k8s.namespace}/pods/p1', {'spec': {'restartPolicy': 'Never'}},
                       content_type='application/strategic-merge-patch+json')
    assert response.status == 422
    assert 'Forbidden: pod updates may not change fields' in response.body['message']


# --- validation ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('spec, field, text', [
    ({'size': 'big'}, 'spec.size', 'must be of type integer'),
    ({}, 'spec.size', 'Required value'),
    ({'size': 1, 'color': 'pink'}, 'spec.color', 'Unsupported value: "pink"'),
    ({'size': 1, 'name': 'Bad_Name'}, 'spec.name', 'should match'),
    ({'size': 0}, 'spec.size', 'greater than or equal to 1'),
    ({'size': 11}, 'spec.size', 'less than or equal to 10'),
    ({'size': 1, 'name': 'a' * 21}, 'spec.name', 'Too long'),
    ({'size': 1, 'tags': ['a', 'b', 'c', 'd']}, 'spec.tags', 'Too many'),
    ({'size': 1, 'limits': {'cpu': 'lots'}}, 'spec.limits.cpu', 'must be of type integer'),
    ({'size': 1, 'port': True}, 'spec.port', 'must be of type integer,string'),
    ({'size': 1, 'tags': [None]}, 'spec.tags[0]', 'must be of type string'),
])
def test_custom_resources_are_validated_against_their_schema(k8s, spec, field, text):
    response = k8s.raw('POST', k8s.widgets_path(), k8s.widget('bad', spec))
    assert response.status == 422
    assert response.body['reason'] == 'Invalid'
    causes = response.body['details']['causes']
    assert any(c['field'] == field and text in c['message'] for c in causes), causes
    assert f'{field}:' in response.body['message']


def test_custom_resources_are_pruned_and_defaulted(k8s):
    # Undeclared fields are dropped; a null in a non-nullable field becomes its default or is dropped.
    created = k8s.create_widget('w1', {'size': 1, 'unknown': 'dropped', 'note': None, 'port': 'http', 'color': None,
                                       'name': None, 'extra': {'anything': {'goes': True}}})
    assert created['spec'] == {'size': 1, 'color': 'red', 'note': None, 'port': 'http', 'extra': {'anything': {'goes': True}}}
    status = k8s.raw('PATCH', k8s.widgets_path('w1', 'status'), {'status': {'phase': 'Done', 'undeclared': 1}},
                     content_type='application/merge-patch+json').body
    assert status['status'] == {'phase': 'Done'}


def test_pods_are_validated_against_the_openapi_schema(k8s):
    path = f'/api/v1/namespaces/{k8s.namespace}/pods'
    missing = k8s.raw('POST', path, {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'bad'}, 'spec': {}})
    assert missing.status == 422 and 'spec.containers' in missing.body['message']
    assert missing.body['details']['causes'][0]['field'] == 'spec.containers'
    bad_value = k8s.raw('POST', path, {**pod_manifest('bad'), 'spec': {
        'restartPolicy': 'Sometimes', 'containers': [{'name': 'c', 'image': 'x'}]}})
    assert bad_value.status == 422 and 'spec.restartPolicy' in bad_value.body['message']
    # A wrong JSON type never reaches validation on a real server: the decoder rejects it (400).
    wrong_type = k8s.raw('POST', path, {**pod_manifest('bad'), 'spec': {'containers': [{'name': 'c', 'image': 'x', 'command': 'true'}]}})
    assert wrong_type.status == 400 and 'cannot unmarshal' in wrong_type.body['message']


def test_unknown_fields_of_built_ins_are_dropped_or_rejected_when_strict(k8s):
    path = f'/api/v1/namespaces/{k8s.namespace}/configmaps'
    created = k8s.raw('POST', path, {'metadata': {'name': 'c1'}, 'data': {'a': 'b'}, 'bogus': 1})
    assert created.status == 201 and 'bogus' not in created.body
    assert 'unknown field' in created.headers.get('Warning', '')
    strict = k8s.raw('POST', path, {'metadata': {'name': 'c2'}, 'bogus': 1}, params={'fieldValidation': 'Strict'})
    assert strict.status == 400 and 'bogus' in strict.body['message']


# --- other resources --------------------------------------------------------------------------------------------

def test_core_and_events_k8s_io_events_are_one_storage(k8s):
    ref = {'apiVersion': 'v1', 'kind': 'ConfigMap', 'name': 'c1', 'namespace': k8s.namespace}
    k8s.core.create_namespaced_event(k8s.namespace, {'metadata': {'name': 'e1'}, 'involvedObject': ref,
                                                    'reason': 'Tested', 'message': 'core event', 'type': 'Normal'})
    as_new = k8s.raw('GET', f'/apis/events.k8s.io/v1/namespaces/{k8s.namespace}/events/e1').body
    assert (as_new['note'], as_new['regarding']['name']) == ('core event', 'c1')
    k8s.raw('POST', f'/apis/events.k8s.io/v1/namespaces/{k8s.namespace}/events', {
        'apiVersion': 'events.k8s.io/v1', 'kind': 'Event', 'metadata': {'name': 'e2'},
        'eventTime': '2026-01-01T00:00:00.000000Z', 'reportingController': 'kubedag.test/ctl',
        'reportingInstance': 'ctl-1', 'action': 'Testing', 'reason': 'Tested', 'type': 'Normal',
        'regarding': ref, 'note': 'new event'})
    as_core = k8s.core.read_namespaced_event('e2', k8s.namespace)
    assert (as_core.message, as_core.involved_object.name) == ('new event', 'c1')
    listed = k8s.core.list_namespaced_event(k8s.namespace, field_selector='involvedObject.name=c1,reason=Tested')
    assert {e.metadata.name for e in listed.items} == {'e1', 'e2'}


def test_leases(k8s):
    coordination = kubernetes.client.CoordinationV1Api(k8s.api_client)
    lease = coordination.create_namespaced_lease(k8s.namespace, {'metadata': {'name': 'leader'},
                                                                 'spec': {'holderIdentity': 'a', 'leaseDurationSeconds': 15}})
    lease.spec.holder_identity = 'b'
    updated = coordination.replace_namespaced_lease('leader', k8s.namespace, lease)
    assert updated.spec.holder_identity == 'b'
    lease.spec.holder_identity = 'c'  # the same (now stale) resourceVersion
    with pytest.raises(kubernetes.client.ApiException) as exc:
        coordination.replace_namespaced_lease('leader', k8s.namespace, lease)
    assert exc.value.status == 409


def test_a_crd_created_at_runtime_is_served_and_its_deletion_cleans_up(k8s):
    group = f'{k8s.namespace}.kubedag.test'
    crd = yaml.safe_load(TEST_CRD.read_text())
    crd['metadata']['name'] = f'gadgets.{group}'
    crd['spec'].update(group=group, names={'plural': 'gadgets', 'singular': 'gadget', 'kind': 'Gadget'})
    apiext = kubernetes.client.ApiextensionsV1Api(k8s.api_client)
    apiext.create_custom_resource_definition(crd)
    try:
        eventually(lambda: k8s.raw('GET', f'/apis/{group}/v1').status == 200)
        gadget = {'apiVersion': f'{group}/v1', 'kind': 'Gadget', 'metadata': {'name': 'g1'}, 'spec': {'size': 2}}
        eventually(lambda: k8s.raw('POST', f'/apis/{group}/v1/namespaces/{k8s.namespace}/gadgets', gadget).status == 201)
        bad = k8s.raw('POST', f'/apis/{group}/v1/namespaces/{k8s.namespace}/gadgets', {**gadget, 'spec': {'size': 99}})
        assert bad.status == 422
    finally:
        apiext.delete_custom_resource_definition(crd['metadata']['name'])
    eventually(lambda: k8s.raw('GET', f'/apis/{group}/v1').status == 404, timeout=30)


# --- kopf itself -------------------------------------------------------------------------------------------------

def test_kopf_operator_runs_against_the_target(k8s):
    """A tiny kopf operator (standalone, namespaced) handles create and delete of a custom resource."""
    registry = kopf.OperatorRegistry()
    deleted = threading.Event()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return k8s.kopf_connection()

    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    def on_create(body: Any, spec: Any, patch: kopf.Patch, **_: Any) -> None:
        patch.status['phase'] = f"seen-size-{spec['size']}"
        kopf.info(body, reason='Seen', message='the widget was seen')  # posted as a core v1 Event

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)  # makes kopf add a finalizer (JSON patch)
    def on_delete(**_: Any) -> None:
        deleted.set()

    settings = kopf.OperatorSettings()
    settings.networking.request_timeout = 10
    stop_flag, ready_flag = threading.Event(), threading.Event()

    def run() -> None:
        asyncio.run(kopf.operator(registry=registry, settings=settings, standalone=True,
                                  namespaces=[k8s.namespace], stop_flag=stop_flag, ready_flag=ready_flag))

    thread = threading.Thread(target=run, name='kopf-under-test', daemon=True)
    thread.start()
    try:
        assert ready_flag.wait(20), 'kopf did not become ready'
        k8s.create_widget('w1', {'size': 3})
        widget = eventually(lambda: (w := k8s.get_widget('w1')) and w.get('status', {}).get('phase') and w)
        assert widget['status']['phase'] == 'seen-size-3'
        assert any(f.startswith('kopf.zalando.org/') for f in widget['metadata'].get('finalizers', []))
        events = eventually(lambda: k8s.core.list_namespaced_event(k8s.namespace, field_selector='involvedObject.name=w1,reason=Seen').items)
        assert (events[0].involved_object.kind, events[0].message) == (KIND, 'the widget was seen')

        k8s.custom.delete_namespaced_custom_object(GROUP, VERSION, k8s.namespace, PLURAL, 'w1')
        assert deleted.wait(20), 'kopf did not handle the deletion'
        eventually(lambda: k8s.get_widget('w1') is None)  # kopf removed its finalizer
    finally:
        stop_flag.set()
        thread.join(20)
    assert not thread.is_alive()

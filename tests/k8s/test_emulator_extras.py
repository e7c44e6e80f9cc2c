"""Emulator-only features (kmock DSL, helpers, kubeconfig) and unit tests of its pure parts."""
from __future__ import annotations

import base64
import pathlib
from collections.abc import Iterator

import kmock
import kopf
import kubernetes
import pytest
import urllib3

from tests.k8s.emulator import EmulatedApiServer, StatusError
from tests.k8s.emulator import patching, schema, selectors

CM = {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'c1', 'namespace': 'default'}, 'data': {'a': '1'}}


@pytest.fixture
def core(k8s_api: EmulatedApiServer):
    client = k8s_api.api_client()
    yield kubernetes.client.CoreV1Api(client)
    client.close()


def test_kubeconfig_serves_the_official_client_and_kopf(k8s_api, tmp_path, monkeypatch):
    path = k8s_api.kubeconfig(tmp_path / 'kubeconfig')
    client = kubernetes.config.new_client_from_config(config_file=str(path))
    try:
        names = {ns.metadata.name for ns in kubernetes.client.CoreV1Api(client).list_namespace().items}
    finally:
        client.close()
    assert {'default', 'kube-system'} <= names
    monkeypatch.setenv('KUBECONFIG', str(path))  # what a kopf-based controller reads by default
    info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    assert info.server == k8s_api.url and info.default_namespace == 'default'


def test_kmock_dsl_injects_faults(k8s_api, core):
    k8s_api.handler['list v1/configmaps'] << 503 << {'kind': 'Status', 'apiVersion': 'v1', 'status': 'Failure',
                                                     'reason': 'ServiceUnavailable', 'code': 503}
    with pytest.raises(kubernetes.client.ApiException) as exc:
        core.list_namespaced_config_map('default')
    assert exc.value.status == 503
    assert core.list_namespaced_pod('default').items == []  # other requests are unaffected


def test_kmock_request_journal_and_object_history(k8s_api, core):
    core.create_namespaced_config_map('default', CM)
    core.patch_namespaced_config_map('c1', 'default', {'data': {'a': '2'}})
    core.delete_namespaced_config_map('c1', 'default')
    creates = list(k8s_api.handler[kmock.action.CREATE])
    assert [r.data['metadata']['name'] for r in creates] == ['c1']
    history = k8s_api.handler.objects['v1/configmaps', 'default', 'c1'].history
    assert [None if v is None else dict(v)['data'] for v in history] == [{'a': '1'}, {'a': '2'}, None]


def test_direct_helpers_go_through_the_api_semantics(k8s_api):
    rv = k8s_api.resource_version
    created = k8s_api.create(CM)
    assert int(created['metadata']['resourceVersion']) == rv + 1
    with pytest.raises(StatusError) as exc:
        k8s_api.create(CM)
    assert exc.value.code == 409
    k8s_api.patch('v1/configmaps', 'c1', {'data': {'b': '2'}}, 'default')
    assert k8s_api.get('v1/configmaps', 'c1', 'default')['data'] == {'a': '1', 'b': '2'}
    assert [c['metadata']['name'] for c in k8s_api.list('v1/configmaps', 'default')] == ['c1']
    k8s_api.apply_yaml('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c2, labels: {x: y}}\n', namespace='default')
    assert [c['metadata']['name'] for c in k8s_api.list('v1/configmaps', label_selector='x=y')] == ['c2']
    k8s_api.delete('v1/configmaps', 'c1', 'default')
    assert k8s_api.wait_for('v1/configmaps', 'c1', 'default', lambda obj: obj is None) is None


def test_crd_files_are_served_from_the_start(k8s_api):
    crd = k8s_api.get('apiextensions.k8s.io/v1/customresourcedefinitions', 'widgets.emulator.kubedag.test')
    conditions = {c['type']: c['status'] for c in crd['status']['conditions']}
    assert conditions['Established'] == 'True'
    assert crd['status']['acceptedNames']['kind'] == 'Widget'


def test_invalid_crd_is_rejected(k8s_api):
    with pytest.raises(StatusError) as exc:
        k8s_api.create({'apiVersion': 'apiextensions.k8s.io/v1', 'kind': 'CustomResourceDefinition',
                        'metadata': {'name': 'wrong.example.com'},
                        'spec': {'group': 'example.com', 'scope': 'Namespaced',
                                 'names': {'plural': 'things', 'kind': 'Thing'},
                                 'versions': [{'name': 'v1', 'served': True, 'storage': True}]}})
    assert exc.value.code == 422
    fields = {c['field'] for c in exc.value.details['causes']}
    assert {'metadata.name', 'spec.versions[0].schema.openAPIV3Schema'} <= fields


# --- ConfigMaps and Secrets, as a real API server serves them ----------------------------------------

def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_secret_string_data_is_merged_into_data_and_type_defaults_to_opaque(k8s_api, core):
    created = core.create_namespaced_secret('default', {'metadata': {'name': 's1'}, 'data': {'a': b64('1')},
                                                        'stringData': {'b': 'two'}})
    assert created.data == {'a': b64('1'), 'b': b64('two')} and created.string_data is None
    assert created.type == 'Opaque'
    patched = core.patch_namespaced_secret('s1', 'default', {'stringData': {'a': 'one'}})
    assert patched.data == {'a': b64('one'), 'b': b64('two')}
    assert 'stringData' not in k8s_api.get('v1/secrets', 's1', 'default')


def test_secret_data_must_be_base64(k8s_api):
    response = urllib3.request('POST', f'{k8s_api.url}/api/v1/namespaces/default/secrets',
                               json={'metadata': {'name': 's1'}, 'data': {'a': 'not base64!'}})
    assert response.status == 400
    assert 'illegal base64 data' in response.json()['message']


@pytest.mark.parametrize('obj, field', [
    ({'kind': 'Secret', 'data': {'a/b': b64('x')}}, 'data[a/b]'),
    ({'kind': 'ConfigMap', 'data': {'a b': 'x'}}, 'data[a b]'),
    ({'kind': 'ConfigMap', 'data': {'k': 'x'}, 'binaryData': {'k': b64('y')}}, 'binaryData[k]'),
])
def test_config_keys_are_validated(k8s_api, obj, field):
    with pytest.raises(StatusError) as exc:
        k8s_api.create({'apiVersion': 'v1', 'metadata': {'name': 'c', 'namespace': 'default'}, **obj})
    assert exc.value.code == 422
    assert [c['field'] for c in exc.value.details['causes']] == [field]


def test_immutable_secrets_and_config_maps_keep_their_data(k8s_api, core):
    core.create_namespaced_secret('default', {'metadata': {'name': 's1'}, 'stringData': {'a': '1'}, 'immutable': True})
    core.create_namespaced_config_map('default', {'metadata': {'name': 'c1'}, 'data': {'a': '1'}, 'immutable': True})
    for patch in (lambda: core.patch_namespaced_secret('s1', 'default', {'stringData': {'a': '2'}}),
                  lambda: core.patch_namespaced_config_map('c1', 'default', {'data': {'a': '2'}})):
        with pytest.raises(kubernetes.client.ApiException) as exc:
            patch()
        assert exc.value.status == 422 and 'field is immutable when `immutable` is set' in exc.value.body
    core.patch_namespaced_config_map('c1', 'default', {'metadata': {'labels': {'x': 'y'}}})  # metadata may change
    with pytest.raises(kubernetes.client.ApiException) as exc:
        core.patch_namespaced_secret('s1', 'default', {'type': 'kubernetes.io/basic-auth'})
    assert exc.value.status == 422 and 'type: Invalid value' in exc.value.body


def test_config_maps_and_secrets_are_listed_and_watched(k8s_api, core):
    rv = core.list_namespaced_secret('default').metadata.resource_version
    core.create_namespaced_secret('default', {'metadata': {'name': 's1', 'labels': {'app': 'x'}}, 'stringData': {'a': '1'}})
    core.create_namespaced_secret('default', {'metadata': {'name': 's2'}, 'stringData': {'a': '1'}})
    core.create_namespaced_config_map('default', {'metadata': {'name': 'c1', 'labels': {'app': 'x'}}, 'data': {'a': '1'}})
    assert [s.metadata.name for s in core.list_namespaced_secret('default', label_selector='app=x').items] == ['s1']
    assert [c.metadata.name for c in core.list_config_map_for_all_namespaces(label_selector='app=x').items] == ['c1']
    core.delete_namespaced_secret('s1', 'default')
    seen = []
    watch = kubernetes.watch.Watch()
    for event in watch.stream(core.list_namespaced_secret, 'default', resource_version=rv, timeout_seconds=10):
        seen.append((event['type'], event['object'].metadata.name))
        if len(seen) == 3:
            watch.stop()
    assert seen == [('ADDED', 's1'), ('ADDED', 's2'), ('DELETED', 's1')]


# --- the project's CRDs (crds/*.yaml, as tests/controller/conftest.py serves them) ---------------------

ROOT = pathlib.Path(__file__).resolve().parents[2]
GROUP, VERSION = 'kubedag.io', 'v1alpha1'


@pytest.fixture
def project_api() -> Iterator[EmulatedApiServer]:
    with EmulatedApiServer(crd_files=sorted((ROOT / 'crds').glob('*.yaml'))) as api:
        yield api


@pytest.fixture
def custom(project_api: EmulatedApiServer) -> Iterator[kubernetes.client.CustomObjectsApi]:
    client = project_api.api_client()
    yield kubernetes.client.CustomObjectsApi(client)
    client.close()


def test_the_four_project_crds_are_served_with_status_subresources(project_api, custom):
    crds = project_api.list('apiextensions.k8s.io/v1/customresourcedefinitions')
    assert {c['metadata']['name'] for c in crds} == {f'{p}.kubedag.io' for p in ('dags', 'dagruns', 'pools', 'backfills')}
    assert all({c['type']: c['status'] for c in crd['status']['conditions']}['Established'] == 'True' for crd in crds)
    resources = {r.name: r for r in custom.get_api_resources(GROUP, VERSION).resources}
    assert {'dags', 'dagruns', 'pools', 'backfills', 'pools/status', 'backfills/status'} <= set(resources)
    assert (resources['pools'].kind, resources['pools'].short_names, resources['pools'].categories) == ('Pool', ['pool'], ['kubedag'])
    assert (resources['backfills'].kind, resources['backfills'].short_names) == ('Backfill', ['bf'])


def pool(name: str, slots: object = 4) -> dict[str, object]:
    return {'apiVersion': f'{GROUP}/{VERSION}', 'kind': 'Pool', 'metadata': {'name': name}, 'spec': {'slots': slots}}


def test_pools_keep_status_apart_and_are_validated_and_pruned(custom):
    args = (GROUP, VERSION, 'default', 'pools')
    created = custom.create_namespaced_custom_object(*args, {**pool('p1'), 'status': {'occupied': 9}})
    assert 'status' not in created and created['metadata']['generation'] == 1
    updated = custom.patch_namespaced_custom_object_status(*args, 'p1', {'status': {'occupied': 1, 'open': 3, 'bogus': 1}})
    assert updated['status'] == {'occupied': 1, 'open': 3} and updated['metadata']['generation'] == 1
    resized = custom.patch_namespaced_custom_object(*args, 'p1', {'spec': {'slots': 8, 'color': 'red'}, 'status': {'open': 0}})
    assert resized['spec'] == {'slots': 8} and resized['status']['open'] == 3 and resized['metadata']['generation'] == 2
    for body, field in ((pool('p2', -1), 'spec.slots'), (pool('p3', 'many'), 'spec.slots'),
                        ({**pool('p4'), 'spec': {}}, 'spec.slots'), ({k: v for k, v in pool('p5').items() if k != 'spec'}, 'spec')):
        with pytest.raises(kubernetes.client.ApiException) as exc:
            custom.create_namespaced_custom_object(*args, body)
        assert exc.value.status == 422 and f'{field}:' in exc.value.body
    assert [p['metadata']['name'] for p in custom.list_namespaced_custom_object(*args)['items']] == ['p1']


def test_backfills_status_is_validated_against_the_crd_schema(custom):
    args = (GROUP, VERSION, 'default', 'backfills')
    spec = {'dagName': 'etl', 'startDate': '2026-01-01', 'endDate': '2026-01-03', 'conf': {'any': {'thing': [1]}}}
    created = custom.create_namespaced_custom_object(*args, {'apiVersion': f'{GROUP}/{VERSION}', 'kind': 'Backfill',
                                                             'metadata': {'name': 'b1'}, 'spec': spec})
    assert created['spec'] == spec  # conf preserves unknown fields
    condition = {'type': 'Complete', 'status': 'False', 'reason': 'Running', 'lastTransitionTime': '2026-01-01T00:00:00Z'}
    ok = custom.patch_namespaced_custom_object_status(*args, 'b1', {'status': {'phase': 'running', 'total': 3,
                                                                                'conditions': [condition]}})
    assert ok['status']['phase'] == 'running' and ok['status']['conditions'] == [condition]
    for status, field in (({'phase': 'weird'}, 'status.phase'), ({'total': -1}, 'status.total'),
                          ({'conditions': [condition, condition]}, 'status.conditions[1]')):
        with pytest.raises(kubernetes.client.ApiException) as exc:
            custom.patch_namespaced_custom_object_status(*args, 'b1', {'status': status})
        assert exc.value.status == 422 and f'{field}:' in exc.value.body
    with pytest.raises(kubernetes.client.ApiException) as exc:
        custom.create_namespaced_custom_object(*args, {'apiVersion': f'{GROUP}/{VERSION}', 'kind': 'Backfill',
                                                       'metadata': {'name': 'b2'}, 'spec': {**spec, 'dagName': 'Not_A_Name'}})
    assert exc.value.status == 422 and 'spec.dagName:' in exc.value.body


# --- unit tests of the pure parts ---------------------------------------------------------------

@pytest.mark.parametrize('selector, labels, expected', [
    ('a=1', {'a': '1'}, True),
    ('a=1', {}, False),
    ('a!=1', {}, True),
    ('a in (1, 2),b', {'a': '2', 'b': ''}, True),
    ('a notin (1,2)', {'a': '3'}, True),
    ('!a', {'a': '3'}, False),
    ('n>5', {'n': '7'}, True),
    ('n<5', {'n': '7'}, False),
    ('example.com/tier=web', {'example.com/tier': 'web'}, True),
])
def test_label_selectors(selector, labels, expected):
    assert selectors.parse_label_selector(selector)(labels) is expected


@pytest.mark.parametrize('selector', ['a=b=c', 'a in (x', '-bad=1', 'a=' + 'x' * 64])
def test_invalid_label_selectors_are_400(selector):
    with pytest.raises(StatusError) as exc:
        selectors.parse_label_selector(selector)
    assert exc.value.code == 400


def test_strategic_merge_patch_directives():
    pod = {'metadata': {'finalizers': ['a']},
           'spec': {'containers': [{'name': 'x', 'image': 'i1', 'env': [{'name': 'A', 'value': '1'}]},
                                   {'name': 'y', 'image': 'i2'}],
                    'tolerations': [{'key': 'k'}]}}
    patched = patching.strategic_merge_patch(pod, {
        'metadata': {'finalizers': ['b']},
        'spec': {'containers': [{'name': 'x', 'env': [{'name': 'B', 'value': '2'}]}, {'name': 'y', '$patch': 'delete'}],
                 'tolerations': [{'key': 'other'}]}})
    # new items come first, as kube-apiserver orders them (strategicpatch's normalizeElementOrder)
    assert patched['metadata']['finalizers'] == ['b', 'a']
    assert patched['spec']['containers'] == [{'name': 'x', 'image': 'i1', 'env': [{'name': 'B', 'value': '2'}, {'name': 'A', 'value': '1'}]}]
    ordered = patching.strategic_merge_patch(pod, {'spec': {'$setElementOrder/containers': [{'name': 'y'}, {'name': 'x'}],
                                                            'containers': [{'name': 'x', 'image': 'i3'}]}})
    assert [c['name'] for c in ordered['spec']['containers']] == ['y', 'x']
    assert patched['spec']['tolerations'] == [{'key': 'other'}]  # no merge key: replaced
    replaced = patching.strategic_merge_patch(pod, {'spec': {'$patch': 'replace', 'containers': []}})
    assert replaced['spec'] == {'containers': []}
    retained = patching.strategic_merge_patch({'spec': {'a': 1, 'b': 2}}, {'spec': {'$retainKeys': ['a'], 'a': 3}})
    assert retained == {'spec': {'a': 3}}
    assert pod['spec']['containers'][1]['name'] == 'y'  # the input is not mutated


def test_schema_prunes_but_keeps_embedded_resources_and_preserved_fields():
    s = {'type': 'object', 'properties': {
        'spec': {'type': 'object', 'properties': {
            'template': {'type': 'object', 'x-kubernetes-embedded-resource': True, 'x-kubernetes-preserve-unknown-fields': True},
            'known': {'type': 'string'}}}}}
    obj = {'apiVersion': 'x/v1', 'kind': 'X', 'metadata': {'name': 'n'},
           'spec': {'known': 'k', 'unknown': 1, 'template': {'apiVersion': 'v1', 'kind': 'Pod', 'anything': {}}}, 'top': 1}
    schema.prune(obj, s, root=True)
    assert obj == {'apiVersion': 'x/v1', 'kind': 'X', 'metadata': {'name': 'n'},
                   'spec': {'known': 'k', 'template': {'apiVersion': 'v1', 'kind': 'Pod', 'anything': {}}}}


def test_schema_combinators_and_nullable():
    s = {'type': 'object', 'properties': {
        'either': {'anyOf': [{'type': 'integer'}, {'type': 'string', 'pattern': '^[0-9]+%$'}], 'x-kubernetes-int-or-string': True},
        'maybe': {'type': 'string', 'nullable': True}}}
    assert schema.validate({'either': 5, 'maybe': None}, s) == []
    assert schema.validate({'either': '50%'}, s) == []
    causes = schema.validate({'either': 'lots'}, s)
    assert [c['field'] for c in causes] == ['either']


def test_schema_list_type_map_keys_must_be_unique():
    s = {'type': 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'],
         'items': {'type': 'object', 'properties': {'type': {'type': 'string'}, 'status': {'type': 'string'}}}}
    assert schema.validate([{'type': 'A'}, {'type': 'B'}], s, 'status.conditions') == []
    causes = schema.validate([{'type': 'A'}, {'type': 'A', 'status': 'x'}], s, 'status.conditions')
    assert [(c['field'], c['reason']) for c in causes] == [('status.conditions[1]', 'FieldValueDuplicate')]

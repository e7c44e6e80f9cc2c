"""Emulator-only features (kmock DSL, helpers, kubeconfig) and unit tests of its pure parts."""
from __future__ import annotations

import kmock
import kopf
import kubernetes
import pytest

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
    assert patched['metadata']['finalizers'] == ['a', 'b']
    assert patched['spec']['containers'] == [{'name': 'x', 'image': 'i1', 'env': [{'name': 'A', 'value': '1'}, {'name': 'B', 'value': '2'}]}]
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

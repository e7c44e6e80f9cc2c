"""The CRDs and examples through kubectl, as a user applies them: the real API server validates and prints them."""
from __future__ import annotations

import pathlib

import pytest
import yaml

from tests.controlplane.cluster import ROOT, ControlPlane, RealApiServer
from tests.controlplane.fixtures import wait

pytestmark = pytest.mark.controlplane

CRDS = ('backfills', 'dagruns', 'dags', 'pools')


@pytest.fixture(scope='module')
def crds_applied(control_plane: ControlPlane) -> ControlPlane:
    """`kubectl apply -f crds/` (what the README tells users), then wait until every CRD is Established."""
    applied = control_plane.kubectl('apply', '-f', str(ROOT / 'crds'))
    assert sorted(line.split()[0] for line in applied.stdout.splitlines()) == [
        f'customresourcedefinition.apiextensions.k8s.io/{plural}.kubedag.io' for plural in CRDS]
    control_plane.kubectl('wait', '--for=condition=Established', '--timeout=60s',
                          *(f'crd/{plural}.kubedag.io' for plural in CRDS))
    return control_plane


def columns(output: str) -> list[str]:
    """The header of a `kubectl get` table, split on runs of two or more spaces."""
    return [c.strip() for c in output.splitlines()[0].split('  ') if c.strip()]


def cells(output: str, header: list[str], column: str) -> list[str]:
    """The values of one column (fixed-width, as kubectl aligns them)."""
    head = output.splitlines()[0]
    start = head.index(column)
    index = header.index(column)
    end = head.index(header[index + 1]) if index + 1 < len(header) else None
    return [line[start:end].strip() for line in output.splitlines()[1:]]


def test_the_crds_are_accepted_and_keep_their_schema(crds_applied: ControlPlane, real_api: RealApiServer):
    for path in sorted((ROOT / 'crds').glob('*.yaml')):
        local = yaml.safe_load(path.read_text())
        served = real_api.get('apiextensions.k8s.io/v1/customresourcedefinitions', local['metadata']['name'])
        conditions = {c['type']: c['status'] for c in served['status']['conditions']}
        assert conditions.get('NonStructuralSchema', 'False') == 'False', path.name
        assert conditions['NamesAccepted'] == 'True' and conditions['Established'] == 'True', path.name
        assert served['spec']['versions'][0]['additionalPrinterColumns'] == local['spec']['versions'][0]['additionalPrinterColumns']


def test_kubectl_explain_reads_the_published_schema(crds_applied: ControlPlane):
    # the server publishes a new CRD's OpenAPI schema a moment after it is Established: kubectl retries as a user would
    explained = wait(lambda: crds_applied.kubectl('explain', 'dag.spec.tasks', check=False).stdout, 60, 'kubectl explain')
    assert 'KIND:       DAG' in explained
    for field in ('name', 'command', 'dependsOn', 'triggerRule'):
        assert f'\n  {field}\t' in explained or f'\n  {field} ' in explained, field


def test_kubectl_get_prints_the_printer_columns(crds_applied: ControlPlane, real_namespace: str):
    kubectl = crds_applied.kubectl
    kubectl('apply', '-n', real_namespace, '-f', str(ROOT / 'examples/supermarket/dag.yaml'))
    kubectl('apply', '-n', real_namespace, '-f', str(ROOT / 'examples/parity/supermarket-sensors/pool.yaml'))
    kubectl('create', '-n', real_namespace, '-f', '-', input=yaml.safe_dump({
        'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'DAGRun', 'metadata': {'name': 'manual-1'},
        'spec': {'dagName': 'supermarket-promotions', 'runId': 'manual__by-hand', 'conf': {'data_root': 'out'}}}))
    kubectl('create', '-n', real_namespace, '-f', '-', input=yaml.safe_dump({
        'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'Backfill', 'metadata': {'name': 'october'},
        'spec': {'dagName': 'supermarket-promotions', 'startDate': '2026-10-01', 'endDate': '2026-10-30'}}))

    dags = kubectl('get', 'dags', '-n', real_namespace).stdout
    assert columns(dags) == ['NAME', 'SCHEDULE', 'PAUSED', 'LAST RUN', 'NEXT RUN', 'AGE']
    assert cells(dags, columns(dags), 'NAME') == ['supermarket-promotions']
    assert cells(dags, columns(dags), 'SCHEDULE') == ['0 16 * * *']
    assert kubectl('get', 'dag', '-n', real_namespace, '-o', 'name').stdout.strip() == 'dag.kubedag.io/supermarket-promotions'

    runs = kubectl('get', 'dagruns', '-n', real_namespace).stdout
    assert columns(runs) == ['NAME', 'DAG', 'TYPE', 'LOGICAL DATE', 'PHASE', 'STARTED', 'FINISHED', 'AGE']
    wide = kubectl('get', 'dr', '-n', real_namespace, '-o', 'wide').stdout
    assert columns(wide) == ['NAME', 'DAG', 'TYPE', 'LOGICAL DATE', 'PHASE', 'STARTED', 'FINISHED', 'RUN ID', 'AGE']
    assert cells(wide, columns(wide), 'RUN ID') == ['manual__by-hand']
    assert cells(wide, columns(wide), 'DAG') == ['supermarket-promotions']

    pools = kubectl('get', 'pools', '-n', real_namespace).stdout
    assert columns(pools) == ['NAME', 'SLOTS', 'OCCUPIED', 'OPEN', 'AGE']
    assert cells(pools, columns(pools), 'SLOTS') == ['2']
    backfills = kubectl('get', 'backfills', '-n', real_namespace).stdout
    assert columns(backfills) == ['NAME', 'DAG', 'START', 'END', 'PHASE', 'TOTAL', 'SUCCEEDED', 'FAILED', 'AGE']
    assert cells(backfills, columns(backfills), 'START') == ['2026-10-01']


def test_server_side_apply_of_a_dag_then_an_update(crds_applied: ControlPlane, real_api: RealApiServer,
                                                   real_namespace: str, tmp_path: pathlib.Path):
    manifest = yaml.safe_load((ROOT / 'examples/supermarket/dag.yaml').read_text())
    path = tmp_path / 'dag.yaml'
    path.write_text(yaml.safe_dump(manifest))
    kubectl = crds_applied.kubectl
    assert 'serverside-applied' in kubectl('apply', '--server-side', '-n', real_namespace, '-f', str(path)).stdout
    manifest['spec']['maxActiveRuns'] = 1
    manifest['spec']['tasks'] = manifest['spec']['tasks'][:1]
    path.write_text(yaml.safe_dump(manifest))
    assert 'serverside-applied' in kubectl('apply', '--server-side', '-n', real_namespace, '-f', str(path)).stdout
    dag = real_api.get('kubedag.io/v1alpha1/dags', 'supermarket-promotions', real_namespace)
    assert dag['spec']['maxActiveRuns'] == 1
    assert [t['name'] for t in dag['spec']['tasks']] == [manifest['spec']['tasks'][0]['name']]
    assert dag['metadata']['generation'] == 2
    assert {m['manager'] for m in dag['metadata']['managedFields']} == {'kubectl'}


def test_an_invalid_dag_is_rejected_by_the_schema(crds_applied: ControlPlane, real_namespace: str):
    bad = {'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'DAG', 'metadata': {'name': 'bad'},
           'spec': {'maxActiveRuns': 'many', 'tasks': [{'name': 'a', 'command': ['true']}]}}
    done = crds_applied.kubectl('create', '-n', real_namespace, '-f', '-', input=yaml.safe_dump(bad), check=False)
    assert done.returncode != 0
    assert 'spec.maxActiveRuns' in done.stderr and 'Invalid value' in done.stderr

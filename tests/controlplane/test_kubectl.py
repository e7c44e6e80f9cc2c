"""The CRDs and examples through kubectl, as a user applies them: the real API server validates and prints them."""
from __future__ import annotations

import pathlib
from collections.abc import Callable

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


def test_a_dagrun_status_keeps_a_failed_tries_reason(crds_applied: ControlPlane, real_api: RealApiServer,
                                                     real_namespace: str):
    """The status's ``r`` (a failed try's reason) is in the schema: the real API server keeps it (no pruning), and
    refuses one over its 200 characters."""
    real_api.create({'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'DAGRun', 'metadata': {'name': 'r-1', 'namespace': real_namespace},
                     'spec': {'dagName': 'etl'}})
    why = "template error in command[2]: 'undefined_0' is undefined"
    written = real_api.patch('kubedag.io/v1alpha1/dagruns', 'r-1', {'status': {'phase': 'failed', 'tasks': {
        'a': {'s': 'failed', 't': 1, 'r': why}}}}, real_namespace, subresource='status')
    assert written['status']['tasks']['a'] == {'s': 'failed', 't': 1, 'r': why}
    cut = 'é' * 199 + '…'  # 200 characters, 401 bytes: maxLength counts characters
    written = real_api.patch('kubedag.io/v1alpha1/dagruns', 'r-1', {'status': {'tasks': {'a': {'s': 'failed', 't': 1, 'r': cut}}}},
                             real_namespace, subresource='status')
    assert written['status']['tasks']['a']['r'] == cut
    with pytest.raises(Exception, match='status.tasks.a.r: Too long'):
        real_api.patch('kubedag.io/v1alpha1/dagruns', 'r-1', {'status': {'tasks': {'a': {'s': 'failed', 't': 1, 'r': 'x' * 201}}}},
                       real_namespace, subresource='status')

def test_kubectl_shows_what_the_controller_did(control_plane: ControlPlane, controller_on_default: RealApiServer,
                                               tmp_path: pathlib.Path):
    from tests.controller.harness import wait_phase
    api, kubectl = controller_on_default, control_plane.kubectl
    manifest = {'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'DAG', 'metadata': {'name': 'greeting'},
                'spec': {'schedule': '@daily', 'startDate': '2026-11-01', 'catchup': False,
                         'defaults': {'image': 'busybox:1.36'}, 'tasks': [{'name': 'say', 'command': ['echo', 'hello']}]}}
    kubectl('apply', '-n', 'default', '-f', '-', input=yaml.safe_dump(manifest))
    run = wait(lambda: api.list('kubedag.io/v1alpha1/dagruns', 'default'), 60, 'the scheduled DAGRun')[0]
    name = run['metadata']['name']
    assert wait_phase(api, name, timeout=60)['status']['phase'] == 'success'

    def shown(args: tuple[str, ...], check: Callable[[str], bool]) -> Callable[[], str | None]:
        def output() -> str | None:
            out = kubectl(*args).stdout
            return out if check(out) else None
        return output

    described = wait(shown(('describe', 'dag', 'greeting', '-n', 'default'), lambda out: 'RunCreated' in out),
                     30, 'the RunCreated event in kubectl describe')
    assert 'Conditions:' in described and 'Ready' in described and 'Events:' in described
    dags = wait(shown(('get', 'dags', '-n', 'default'), lambda out: cells(out, columns(out), 'LAST RUN') == ['success']),
                30, 'LAST RUN success')
    assert cells(dags, columns(dags), 'NEXT RUN')[0].startswith('20')  # an RFC 3339 time
    wide = kubectl('get', 'dagruns', '-n', 'default', '-o', 'wide').stdout
    assert cells(wide, columns(wide), 'PHASE') == ['success']
    assert cells(wide, columns(wide), 'TYPE') == ['scheduled']
    assert cells(wide, columns(wide), 'RUN ID')[0].startswith('scheduled__')
    pod = kubectl('get', 'pods', '-n', 'default', '-l', f'kubedag.io/run={name}', '-o', 'name').stdout.split()
    assert len(pod) == 1
    assert kubectl('logs', '-n', 'default', pod[0]).stdout == 'hello\n'

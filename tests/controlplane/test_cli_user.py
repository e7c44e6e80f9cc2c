"""The kubedag CLI as a user with only the ClusterRole the README gives users (a RoleBinding in `default`)."""
from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest
import yaml

from tests.controlplane.cluster import ROOT, ControlPlane, RealApiServer
from tests.controlplane.rbac import rules_of, audit_usage

pytestmark = pytest.mark.controlplane
USER = 'kubedag-cli-user'


def readme_user_role() -> dict:
    """The ClusterRole of the README's "What a CLI user needs"."""
    text = (ROOT / 'README.md').read_text()
    section = text[text.index('**What a CLI user needs.**'):]
    return yaml.safe_load(re.search(r'```yaml\n(.*?)```', section, re.S).group(1))


@pytest.fixture
def user_kubeconfig(_real_with_crds: RealApiServer, tmp_path: pathlib.Path) -> pathlib.Path:
    """A ServiceAccount bound in `default` to the README's ClusterRole; a kubeconfig with its TokenRequest token."""
    api = _real_with_crds
    role = readme_user_role()
    if api.get('rbac.authorization.k8s.io/v1/clusterroles', role['metadata']['name']) is None:
        api.create(role)
    if api.get('v1/serviceaccounts', USER, 'default') is None:
        api.create({'apiVersion': 'v1', 'kind': 'ServiceAccount', 'metadata': {'name': USER, 'namespace': 'default'}})
        api.create({'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'RoleBinding',
                    'metadata': {'name': USER, 'namespace': 'default'},
                    'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'ClusterRole', 'name': role['metadata']['name']},
                    'subjects': [{'kind': 'ServiceAccount', 'name': USER, 'namespace': 'default'}]})
    token = api.request('POST', api.path('v1/serviceaccounts', USER, 'default', 'token'),
                        {'apiVersion': 'authentication.k8s.io/v1', 'kind': 'TokenRequest', 'spec': {}})['status']['token']
    config = yaml.safe_load(api.kubeconfig(tmp_path / 'user.kubeconfig').read_text())
    config['users'][0]['user'] = {'token': token}
    path = tmp_path / 'user.kubeconfig'
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_cli_works_with_the_readme_user_role_and_uses_all_of_it(
        control_plane: ControlPlane, controller_on_default: RealApiServer, user_kubeconfig: pathlib.Path,
        tmp_path: pathlib.Path):
    from tests.controller.harness import wait_phase
    api = controller_on_default
    audit_log = control_plane.state_dir / 'logs' / 'audit.log'
    offset = audit_log.stat().st_size
    api.create({'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'DAG', 'metadata': {'name': 'hello', 'namespace': 'default'},
                'spec': {'schedule': '@daily', 'startDate': '2026-11-01', 'catchup': False,
                         'defaults': {'image': 'busybox:1.36'}, 'tasks': [{'name': 'say', 'command': ['echo', 'hi']}]}})
    kubedag = pathlib.Path(sys.executable).with_name('kubedag')

    def cli(*args: str) -> str:
        done = subprocess.run([str(kubedag), *args, '--kubeconfig', str(user_kubeconfig)], capture_output=True, text=True,
                              timeout=180, env={'HOME': str(tmp_path), 'PATH': '/usr/bin:/bin'})
        assert done.returncode == 0, f'kubedag {" ".join(args)}: {done.stderr}'
        return done.stdout

    assert 'hello' in cli('dags', 'list')
    created = cli('dags', 'trigger', 'hello', '--logical-date', '2026-11-20T00:00:00Z')
    run_name = re.search(r'Created DAGRun (\S+)', created).group(1)
    run_id = 'manual__2026-11-20T00:00:00+00:00'
    assert wait_phase(api, run_name, timeout=60)['status']['phase'] == 'success'
    assert run_id in cli('runs', 'list')
    assert cli('logs', 'hello', run_id, 'say') == 'hi\n'
    cli('dags', 'pause', 'hello')
    cli('dags', 'unpause', 'hello')
    cli('tasks', 'clear', 'hello', '--run', run_id, '--yes', '--no-wait')
    cli('dags', 'backfill', 'hello', '-s', '2026-11-02', '-e', '2026-11-03', '--name', 'early-november')
    cli('runs', 'delete', 'hello', '--run', run_id, '--yes')
    user = f'system:serviceaccount:default:{USER}'
    used, forbidden = audit_usage(audit_log, user, offset)
    # `dags list` also looks for the controller's leader Lease (all namespaces) for its "who leads" line, a
    # best-effort extra the README grants separately (kubedag-leader-reader); a user without it gets the table only.
    assert 'hello' in cli('dags', 'list') and 'leads' not in cli('dags', 'list')
    assert [f for f in forbidden if f != 'list coordination.k8s.io/leases /'] == []
    granted = rules_of([readme_user_role()])
    assert used == granted, f'granted but unused: {sorted(granted - used)}; used but not granted: {sorted(used - granted)}'

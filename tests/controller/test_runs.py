"""The controller runs DAGRuns on the emulated cluster: pods per try, status, retries, deletions."""
from __future__ import annotations

import sqlalchemy as sa

from kubedag.k8s import names
from tests.controller.harness import (
    DAGRUNS, NS, RunningController, dag_manifest, manual_run, wait_phase, wait_until,
)


def test_a_hand_made_run_executes_each_task_in_its_own_pod(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('chain', [
        {'name': 'extract', 'command': ['sh', '-c', 'echo extracted {{ ds }}']},
        {'name': 'transform', 'command': ['sh', '-c', 'echo "try $KUBEDAG_TRY_NUMBER"'], 'dependsOn': ['extract']},
        {'name': 'load', 'command': ['true'], 'dependsOn': ['transform']},
    ]))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('chain', 'chain-by-hand', logicalDate='2026-11-01T00:00:00Z'))
        run = wait_phase(k8s_api, 'chain-by-hand')
    assert run['status']['phase'] == 'success'
    tasks = run['status']['tasks']
    assert {t: (e['s'], e['t']) for t, e in tasks.items()} == {
        'extract': ('success', 1), 'transform': ('success', 1), 'load': ('success', 1)}
    assert run['status']['counts']['success'] == 3
    pods = k8s_api.list('v1/pods', NS, label_selector=f'{names.LABEL_RUN}=chain-by-hand')
    assert sorted(p['metadata']['labels'][names.LABEL_TASK] for p in pods) == ['extract', 'load', 'transform']
    extract = names.pod_name('chain', 'chain-by-hand', 'extract', 1)
    assert fake_kubelet.logs(NS, extract).strip() == 'extracted 2026-11-01'
    assert tasks['extract']['p'] == extract[-5:]
    pod = k8s_api.get('v1/pods', extract, NS)
    assert pod['metadata']['ownerReferences'][0]['name'] == 'chain-by-hand'
    assert pod['spec']['restartPolicy'] == 'Never'
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        run_row = conn.execute(sa.text("select dag_id, run_id, state from dag_run")).one()
        tries = conn.execute(sa.text("select task_id, state, pod_name, log from task_instance_history order by task_id")).all()
    engine.dispose()
    assert run_row == ('default/chain', 'manual__2026-11-01T00:00:00+00:00', 'success')
    assert [(t.task_id, t.state) for t in tries] == [('extract', 'success'), ('load', 'success'), ('transform', 'success')]
    assert tries[0].pod_name == extract
    assert 'extracted 2026-11-01' in (tries[0].log or '')

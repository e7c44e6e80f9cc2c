"""``kind: empty`` tasks on the emulated cluster: the run pass's engine sets them success, so the controller
creates no pod for them, as the local executor starts no process."""
from __future__ import annotations

import sqlalchemy as sa

from kubedag.core import naming as names
from tests.controller.harness import NS, RunningController, dag_manifest, manual_run, wait_phase


def test_empty_tasks_succeed_with_no_pod(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('fan', [
        {'name': 'start', 'kind': 'empty'},
        {'name': 'work', 'command': ['sh', '-c', 'echo working'], 'dependsOn': ['start']},
        {'name': 'end', 'kind': 'empty', 'dependsOn': ['work']},
    ]))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('fan', 'fan-1', logicalDate='2026-11-01T00:00:00Z'))
        run = wait_phase(k8s_api, 'fan-1')
    assert run['status']['phase'] == 'success'
    assert {t: (e['s'], e['t']) for t, e in run['status']['tasks'].items()} == {
        'start': ('success', 1), 'work': ('success', 1), 'end': ('success', 1)}
    pods = k8s_api.list('v1/pods', NS, label_selector=f'{names.LABEL_RUN}=fan-1')
    assert [p['metadata']['labels'][names.LABEL_TASK] for p in pods] == ['work']
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select task_id, state, try_number from task_instance order by task_id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [('end', 'success', 1), ('start', 'success', 1), ('work', 'success', 1)]

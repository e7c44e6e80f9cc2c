"""The controller runs DAGRuns on the emulated cluster: pods per try, status, retries, deletions."""
from __future__ import annotations

import sqlalchemy as sa

from kubedag.core import naming as names
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


def test_a_failing_pod_is_retried_with_a_new_pod_and_try_number(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('flaky', [
        {'name': 'flaky', 'retries': 2, 'retryDelay': '0s',
         'command': ['sh', '-c', 'if [ -f ok ]; then echo fine; else touch ok; echo boom; exit 3; fi']},
    ]))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('flaky', 'flaky-1'))
        run = wait_phase(k8s_api, 'flaky-1')
    assert run['status']['phase'] == 'success'
    assert run['status']['tasks']['flaky'] == {'s': 'success', 't': 2, 'p': names.pod_suffix('flaky-1', 'flaky', 2)}
    first, second = (names.pod_name('flaky', 'flaky-1', 'flaky', t) for t in (1, 2))
    assert k8s_api.get('v1/pods', first, NS)['status']['phase'] == 'Failed'
    assert k8s_api.get('v1/pods', second, NS)['metadata']['labels'][names.LABEL_TRY] == '2'
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        tries = conn.execute(sa.text(
            "select try_number, state, exit_code, reason from task_instance_history order by try_number")).all()
    engine.dispose()
    assert [tuple(t) for t in tries] == [(1, 'failed', 3, 'exit code 3'), (2, 'success', 0, None)]


def test_a_pod_deleted_by_someone_else_fails_its_try(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('victim', [
        {'name': 'sleeper', 'command': ['sleep', '60']},
        {'name': 'after', 'command': ['true'], 'dependsOn': ['sleeper']},
    ]))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('victim', 'victim-1'))
        pod = names.pod_name('victim', 'victim-1', 'sleeper', 1)
        wait_until(lambda: (k8s_api.get('v1/pods', pod, NS) or {}).get('status', {}).get('phase') == 'Running',
                   what='sleeper running')
        k8s_api.delete('v1/pods', pod, NS, gracePeriodSeconds=0)
        run = wait_phase(k8s_api, 'victim-1')
    assert run['status']['phase'] == 'failed'
    assert run['status']['tasks']['sleeper']['s'] == 'failed'
    assert run['status']['tasks']['after']['s'] == 'upstream_failed'
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        reason = conn.execute(sa.text("select reason from task_instance_history where task_id='sleeper'")).scalar_one()
    engine.dispose()
    assert 'deleted' in reason


def test_max_active_tasks_caps_pods_running_at_once(k8s_api, fake_kubelet, sqlite_url, tmp_path):
    stamp = "echo start $(date +%s.%N) >> $$KUBEDAG_TASK_ID.t; sleep 1; echo end $(date +%s.%N) >> $$KUBEDAG_TASK_ID.t"
    k8s_api.create(dag_manifest('wide', [
        {'name': f'w{i}', 'command': ['sh', '-c', stamp.replace('$$', '$')]} for i in range(5)
    ], maxActiveTasks=2))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('wide', 'wide-1'))
        run = wait_phase(k8s_api, 'wide-1')
    assert run['status']['phase'] == 'success'
    spans = []
    for i in range(5):
        lines = dict(line.split() for line in (fake_kubelet.workdir / f'w{i}.t').read_text().splitlines())
        spans.append((float(lines['start']), float(lines['end'])))
    peak = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert peak == 2

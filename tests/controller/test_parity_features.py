"""The Airflow features on the emulated cluster, as a user sees them: XComs and branches, sensors that reschedule,
triggers, external task sensors, clear actions, callbacks, pools, variables and connections, dagrunTimeout."""
from __future__ import annotations

import base64
import threading
import time

import sqlalchemy as sa

from kubedag.core import naming as names
from tests.controller.harness import (
    DAGRUNS, NS, RunningController, dag_manifest, manual_run, wait_phase, wait_until,
)
from tests.notify.receiver import WebhookReceiver

PY = 'python'  # the fake kubelet runs it as the test's interpreter, as kubedag's image runs its own


def states(run):
    return {t: e['s'] for t, e in ((run or {}).get('status') or {}).get('tasks', {}).items()}


def db_rows(url, query):
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(query)).all()
    engine.dispose()
    return rows


def test_an_xcom_reaches_the_next_task_and_a_branch_skips_the_path_not_taken(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('xcoms', [
        {'name': 'produce', 'command': ['sh', '-c', 'echo \'{"rows": 42}\' > "$KUBEDAG_XCOM_PATH"']},
        {'name': 'pick', 'branch': True, 'dependsOn': ['produce'],
         'command': ['sh', '-c', 'echo \'"small"\' > "$KUBEDAG_XCOM_PATH"']},
        {'name': 'small', 'dependsOn': ['pick'],
         'command': ['sh', '-c', "echo rows={{ ti.xcom_pull('produce')['rows'] }}"]},
        {'name': 'big', 'dependsOn': ['pick'], 'command': ['true']},
    ]))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('xcoms', 'xcoms-1'))
        run = wait_phase(k8s_api, 'xcoms-1')
    assert run['status']['phase'] == 'success'
    assert states(run) == {'produce': 'success', 'pick': 'success', 'small': 'success', 'big': 'skipped'}
    assert fake_kubelet.logs(NS, names.pod_name('xcoms', 'xcoms-1', 'small', 1)).strip() == 'rows=42'
    rows = db_rows(sqlite_url, "select task_id, key, value from xcom order by task_id")
    assert [(r.task_id, r.key) for r in rows] == [('pick', 'return_value'), ('produce', 'return_value')]


def test_four_file_sensors_reschedule_two_at_a_time_until_their_files_appear(k8s_api, fake_kubelet, sqlite_url, tmp_path):
    data = tmp_path / 'landing'
    data.mkdir()
    sensors = [{'name': f'wait-{i}', 'sensor': {'mode': 'reschedule', 'pokeInterval': '1s', 'timeout': '60s',
                                                 'file': {'path': f'{data}/part-{i}.csv'}}} for i in range(4)]
    k8s_api.create(dag_manifest('landing', [
        *sensors,
        {'name': 'load', 'dependsOn': [s['name'] for s in sensors], 'command': ['sh', '-c', f'cat {data}/*.csv']},
    ], maxActiveTasks=2, defaults={'volumes': [{'name': 'landing', 'hostPath': {'path': str(data)}}],
                                    # mounted where it is on the host: the sensor's --path=... is not rewritten
                                    'volumeMounts': [{'name': 'landing', 'mountPath': str(data)}]}))
    with RunningController(k8s_api, sqlite_url, sensor_image='kubedag/controller:test'):
        k8s_api.create(manual_run('landing', 'landing-1'))
        wait_until(lambda: 'up_for_reschedule' in states(k8s_api.get(DAGRUNS, 'landing-1', NS)).values(),
                   what='a sensor rescheduled')
        for i in (2, 0, 3, 1):
            (data / f'part-{i}.csv').write_text(f'{i}\n')
            wait_until(lambda: states(k8s_api.get(DAGRUNS, 'landing-1', NS)).get(f'wait-{i}') == 'success',
                       what=f'wait-{i} met')
        run = wait_phase(k8s_api, 'landing-1')
        # a sensor's earlier pokes' pods are deleted at once; its last one is kept for --pod-retention
        wait_until(lambda: sorted(p['metadata']['labels'][names.LABEL_TASK] for p in k8s_api.list(
            'v1/pods', NS, label_selector=f'{names.LABEL_RUN}=landing-1')) == ['load', *(f'wait-{i}' for i in range(4))],
            what="the sensors' earlier pokes deleted")
    assert run['status']['phase'] == 'success'
    assert all(e['t'] == 1 for t, e in run['status']['tasks'].items())  # reschedules keep the try number
    pods = k8s_api.list('v1/pods', NS, label_selector=f'{names.LABEL_RUN}=landing-1')
    assert {p['spec']['containers'][0]['image'] for p in pods if p['metadata']['labels'][names.LABEL_TASK] != 'load'} \
        == {'kubedag/controller:test'}
    assert sorted(fake_kubelet.logs(NS, names.pod_name('landing', 'landing-1', 'load', 1)).split()) == ['0', '1', '2', '3']
    # never more than two sensors held a slot at once: every poke's pod ran within maxActiveTasks
    tries = db_rows(sqlite_url, "select task_id, try_number, state from task_instance_history where task_id like 'wait-%'")
    assert sorted((t.task_id, t.try_number, t.state) for t in tries) == [(f'wait-{i}', 1, 'success') for i in range(4)]


def test_a_dag_triggers_another_with_conf_and_waits_for_it(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('child', [{'name': 'greet', 'command': ['sh', '-c', 'echo hello {{ dag_run.conf.who }}']}]))
    k8s_api.create(dag_manifest('parent', [
        {'name': 'kick', 'trigger': {'dag': 'child', 'conf': {'who': '{{ dag_run.run_id }}'}, 'waitForCompletion': True,
                                     'pokeInterval': '1s', 'triggerRunId': 'from-parent'}},
        {'name': 'after', 'dependsOn': ['kick'], 'command': ['true']},
    ]))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('parent', 'parent-1', runId='p1'))
        run = wait_phase(k8s_api, 'parent-1')
        child_name = names.run_name('child', 'from-parent')
        child = k8s_api.get(DAGRUNS, child_name, NS)
    assert run['status']['phase'] == 'success', run['status']
    assert states(run) == {'kick': 'success', 'after': 'success'}
    assert child['status']['phase'] == 'success'
    assert child['spec']['conf'] == {'who': 'p1'} and child['spec']['runType'] == 'manual'
    assert fake_kubelet.logs(NS, names.pod_name('child', child_name, 'greet', 1)).strip() == 'hello p1'
    assert not k8s_api.list('v1/pods', NS, label_selector=f'{names.LABEL_TASK}=kick')  # no pod for a trigger


def test_an_external_task_sensor_waits_for_the_other_dag_an_execution_delta_earlier(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('upstream', [{'name': 'load', 'command': ['true']}]))
    k8s_api.create(dag_manifest('downstream', [
        {'name': 'wait', 'sensor': {'mode': 'poke', 'pokeInterval': '1s', 'timeout': '60s',
                                    'externalTask': {'dag': 'upstream', 'task': 'load', 'executionDelta': '1h'}}},
        {'name': 'report', 'dependsOn': ['wait'], 'command': ['true']},
    ]))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('downstream', 'down-1', logicalDate='2026-11-01T01:00:00Z'))
        wait_until(lambda: states(k8s_api.get(DAGRUNS, 'down-1', NS)).get('wait') == 'running', what='sensor running')
        assert run_phase_is(k8s_api, 'down-1', 'running')
        k8s_api.create(manual_run('upstream', 'up-1', logicalDate='2026-11-01T00:00:00Z'))
        run = wait_phase(k8s_api, 'down-1')
    assert run['status']['phase'] == 'success'
    assert states(run) == {'wait': 'success', 'report': 'success'}


def run_phase_is(api, name, phase):
    return (api.get(DAGRUNS, name, NS).get('status') or {}).get('phase') == phase


def test_clear_with_downstream_reruns_exactly_the_cleared_tasks(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('clearme', [
        {'name': 'a', 'command': ['true']},
        {'name': 'b', 'dependsOn': ['a'], 'command': ['true']},
        {'name': 'c', 'dependsOn': ['b'], 'command': ['true']},
        {'name': 'side', 'dependsOn': ['a'], 'command': ['true']},
    ]))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('clearme', 'clearme-1'))
        wait_phase(k8s_api, 'clearme-1')
        k8s_api.patch(DAGRUNS, 'clearme-1', {'spec': {'actions': [{'id': 'c1', 'type': 'clear', 'tasks': ['b'],
                                                                    'downstream': True}]}}, NS)
        wait_until(lambda: 'c1' in (k8s_api.get(DAGRUNS, 'clearme-1', NS)['status'].get('appliedActions') or []),
                   what='action applied')
        run = wait_phase(k8s_api, 'clearme-1')
    assert run['status']['phase'] == 'success'
    assert {t: (e['s'], e['t']) for t, e in run['status']['tasks'].items()} == {
        'a': ('success', 1), 'b': ('success', 2), 'c': ('success', 2), 'side': ('success', 1)}


def test_a_failing_task_posts_to_its_webhook_with_the_log_tail(k8s_api, fake_kubelet, sqlite_url):
    with WebhookReceiver() as hook:
        k8s_api.create({'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 'hooks', 'namespace': NS},
                        'stringData': {'url': hook.url + '/alerts'}})
        k8s_api.create(dag_manifest('alerting', [
            {'name': 'boom', 'command': ['sh', '-c', 'echo something broke; exit 4'],
             'onFailure': [{'webhook': {'urlFrom': {'name': 'hooks', 'key': 'url'}}}]},
        ], onFailure=[{'webhook': {'url': hook.url + '/runs'}}]))
        with RunningController(k8s_api, sqlite_url):
            k8s_api.create(manual_run('alerting', 'alerting-1'))
            wait_phase(k8s_api, 'alerting-1')
            received = hook.wait_for(2)
    by_path = {r.path: r.json for r in received}
    assert by_path['/alerts']['event'] == 'task_failure' and by_path['/alerts']['task_id'] == 'boom'
    assert 'something broke' in (by_path['/alerts'].get('log_tail') or '')
    assert by_path['/runs']['event'] == 'dag_failure'


def test_a_pool_caps_two_dags_together(k8s_api, fake_kubelet, sqlite_url, tmp_path):
    k8s_api.create({'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'Pool', 'metadata': {'name': 'warehouse', 'namespace': NS},
                    'spec': {'slots': 2}})
    log = tmp_path / 'concurrency'
    log.mkdir()
    step = (f'touch {log}/$KUBEDAG_DAG_ID-$KUBEDAG_TASK_ID; ls {log} | wc -l >> {log}/../counts; sleep 0.3; '
            f'rm {log}/$KUBEDAG_DAG_ID-$KUBEDAG_TASK_ID')
    for dag in ('east', 'west'):
        k8s_api.create(dag_manifest(dag, [{'name': f't{i}', 'pool': 'warehouse', 'command': ['sh', '-c', step]}
                                          for i in range(3)]))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('east', 'east-1'))
        k8s_api.create(manual_run('west', 'west-1'))
        runs = [wait_phase(k8s_api, n) for n in ('east-1', 'west-1')]
        pool = wait_until(lambda: (p := k8s_api.get('kubedag.io/v1alpha1/pools', 'warehouse', NS)).get('status', {}).get('occupied') == 0
                          and p, what='pool status')
    assert [r['status']['phase'] for r in runs] == ['success', 'success']
    counts = [int(x) for x in (tmp_path / 'counts').read_text().split()]
    assert len(counts) == 6 and max(counts) <= 2
    assert pool['status']['open'] == 2


def test_variables_and_connections_from_a_configmap_and_a_secret_are_masked_in_the_archived_log(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create({'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'settings', 'namespace': NS},
                    'data': {'region': 'eu-west-1'}})
    k8s_api.create({'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 'conns', 'namespace': NS},
                    'data': {'warehouse': base64.b64encode(b'postgres://etl:s3cr3tpw@db:5432/dw').decode()}})
    k8s_api.create(dag_manifest('configured', [
        {'name': 'show', 'command': ['sh', '-c',
                                     'echo region={{ var.value.region }} host={{ conn.warehouse.host }} '
                                     'pw={{ conn.warehouse.password }} env=$KUBEDAG_CONN_WAREHOUSE']},
    ], variablesFrom=[{'configMapRef': {'name': 'settings'}}], connectionsFrom=[{'secretRef': {'name': 'conns'}}]))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('configured', 'configured-1'))
        run = wait_phase(k8s_api, 'configured-1')
        pod = k8s_api.get('v1/pods', names.pod_name('configured', 'configured-1', 'show', 1), NS)
        wait_until(lambda: db_rows(sqlite_url, "select log from task_instance_history")[0].log, what='log archived')
    assert run['status']['phase'] == 'success'
    env = {e['name']: e for e in pod['spec']['containers'][0]['env']}
    assert env['KUBEDAG_CONN_WAREHOUSE'] == {  # the URI comes from the Secret, not the pod spec
        'name': 'KUBEDAG_CONN_WAREHOUSE', 'valueFrom': {'secretKeyRef': {'name': 'conns', 'key': 'warehouse'}}}
    [row] = db_rows(sqlite_url, "select log from task_instance_history")
    assert 'region=eu-west-1 host=db pw=*** env=***' in row.log


def test_dagrun_timeout_fails_the_run_and_deletes_its_pods(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('slow', [{'name': 'sleepy', 'command': ['sleep', '60']},
                                         {'name': 'next', 'dependsOn': ['sleepy'], 'command': ['true']}],
                                dagrunTimeout='2s'))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('slow', 'slow-1'))
        run = wait_phase(k8s_api, 'slow-1')
        pod = names.pod_name('slow', 'slow-1', 'sleepy', 1)
        wait_until(lambda: k8s_api.get('v1/pods', pod, NS) is None, what='pod deleted')
    assert run['status']['phase'] == 'failed'
    assert states(run) == {'sleepy': 'skipped', 'next': 'skipped'}

"""The official ``apache-airflow-client`` 3.x, unmodified, drives ``kubedag api --cluster`` on the emulated cluster
with the controller running (task instances are pods run by the fake kubelet): list DAGs, pause/unpause,
trigger with conf and wait for success, list task instances, read a try's log, clear a failed task with
downstream and see it rerun, mark a task, backfill to completion, health; DAGs of another namespace served as
``<namespace>.<name>``."""

from __future__ import annotations

from datetime import datetime, timezone

import airflow_client.client as ac
import pytest
from airflow_client.client.api.backfill_api import BackfillApi
from airflow_client.client.api.dag_api import DAGApi
from airflow_client.client.api.dag_run_api import DagRunApi
from airflow_client.client.api.import_error_api import ImportErrorApi
from airflow_client.client.api.monitor_api import MonitorApi
from airflow_client.client.api.pool_api import PoolApi
from airflow_client.client.api.task_instance_api import TaskInstanceApi
from airflow_client.client.models.backfill_post_body import BackfillPostBody
from airflow_client.client.models.clear_task_instances_body import ClearTaskInstancesBody
from airflow_client.client.models.clear_task_instances_body_task_ids_inner import ClearTaskInstancesBodyTaskIdsInner
from airflow_client.client.models.dag_patch_body import DAGPatchBody
from airflow_client.client.models.patch_task_instance_body import PatchTaskInstanceBody
from airflow_client.client.models.trigger_dag_run_post_body import TriggerDAGRunPostBody

from tests.api_cluster.conftest import DAGS, OTHER, dag
from tests.controller.harness import wait_until


@pytest.fixture
def client(cluster_api):
    config = ac.Configuration(host=cluster_api.url, access_token=cluster_api.token)
    with ac.ApiClient(config) as api_client:
        yield api_client


def finished(client, dag_id, run_id):
    state = DagRunApi(client).get_dag_run(dag_id, run_id).state.value
    return state if state in ('success', 'failed') else None


def validated(k8s_api, name, namespace='default'):
    wait_until(lambda: ((k8s_api.get(DAGS, name, namespace) or {}).get('status') or {}).get('conditions'),
               what=f'DAG {name} validated')


def test_dags_pause_trigger_with_conf_task_instances_and_logs(client, k8s_api):
    k8s_api.create(dag('greet', [
        {'name': 'hello', 'command': ['sh', '-c', 'echo "hello {{ dag_run.conf.who }}"']},
        {'name': 'bye', 'command': ['sh', '-c', 'echo bye'], 'dependsOn': ['hello']},
    ], tags=['demo']))
    k8s_api.create(dag('etl', [{'name': 'a', 'command': ['true']}], namespace=OTHER))
    k8s_api.create(dag('broken', [{'name': 'a', 'command': ['true'], 'dependsOn': ['nope']}]))
    for name, ns in (('greet', 'default'), ('etl', OTHER), ('broken', 'default')):
        validated(k8s_api, name, ns)

    dags = DAGApi(client).get_dags()
    assert [d.dag_id for d in dags.dags] == ['greet', 'team-b.etl'] and dags.total_entries == 2
    errors = ImportErrorApi(client).get_import_errors()
    assert [e.filename for e in errors.import_errors] == ['default/broken']
    assert DAGApi(client).patch_dag('greet', DAGPatchBody(is_paused=True)).is_paused is True
    assert k8s_api.get(DAGS, 'greet', 'default')['spec']['paused'] is True
    assert DAGApi(client).patch_dag('greet', DAGPatchBody(is_paused=False)).is_paused is False

    run = DagRunApi(client).trigger_dag_run('greet', TriggerDAGRunPostBody(conf={'who': 'airflow users'},
                                                                           logical_date=None))
    assert run.conf == {'who': 'airflow users'} and run.state.value == 'queued'
    assert wait_until(lambda: finished(client, 'greet', run.dag_run_id), 60, 'the run') == 'success'
    tis = TaskInstanceApi(client).get_task_instances('greet', run.dag_run_id)
    assert [(t.task_id, t.state.value, t.try_number) for t in tis.task_instances] == [
        ('bye', 'success', 1), ('hello', 'success', 1)]
    log = TaskInstanceApi(client).get_log('greet', run.dag_run_id, 'hello', 1)
    assert 'hello airflow users' in '\n'.join(m.event for m in log.content.actual_instance)
    runs = DagRunApi(client).get_dag_runs('greet', state=['success'])
    assert [r.dag_run_id for r in runs.dag_runs] == [run.dag_run_id]

    other = DagRunApi(client).trigger_dag_run('team-b.etl', TriggerDAGRunPostBody(logical_date=None))
    assert other.dag_id == 'team-b.etl'
    assert wait_until(lambda: finished(client, 'team-b.etl', other.dag_run_id), 60, 'the other run') == 'success'
    assert [r['spec']['dagName'] for r in k8s_api.list('kubedag.io/v1alpha1/dagruns', OTHER)] == ['etl']


def test_clear_a_failed_task_with_downstream_reruns_it_then_mark(client, k8s_api, tmp_path):
    marker = tmp_path / 'marker'
    k8s_api.create(dag('flaky', [
        {'name': 'first', 'command': ['sh', '-c', f'test -f {marker}']},
        {'name': 'after', 'command': ['sh', '-c', 'echo after'], 'dependsOn': ['first']},
    ]))
    validated(k8s_api, 'flaky')
    run = DagRunApi(client).trigger_dag_run('flaky', TriggerDAGRunPostBody(logical_date=None))
    assert wait_until(lambda: finished(client, 'flaky', run.dag_run_id), 60, 'the first attempt') == 'failed'
    states = {t.task_id: t.state.value for t in
              TaskInstanceApi(client).get_task_instances('flaky', run.dag_run_id).task_instances}
    assert states == {'first': 'failed', 'after': 'upstream_failed'}
    marker.write_text('ok')
    body = ClearTaskInstancesBody(dag_run_id=run.dag_run_id, task_ids=[ClearTaskInstancesBodyTaskIdsInner('first')],
                                  include_downstream=True, only_failed=False, dry_run=False)
    cleared = TaskInstanceApi(client).post_clear_task_instances('flaky', body)
    assert sorted(t.task_id for t in cleared.task_instances) == ['after', 'first']
    wait_until(lambda: DagRunApi(client).get_dag_run('flaky', run.dag_run_id).state.value != 'failed', 30,
               'the run reopened')
    assert wait_until(lambda: finished(client, 'flaky', run.dag_run_id), 60, 'the rerun') == 'success'
    first = TaskInstanceApi(client).get_task_instance('flaky', run.dag_run_id, 'first')
    assert (first.state.value, first.try_number) == ('success', 2)
    tries = TaskInstanceApi(client).get_task_instance_tries('flaky', run.dag_run_id, 'first')
    assert [(t.try_number, t.state.value) for t in tries.task_instances] == [(1, 'failed'), (2, 'success')]
    first_log = TaskInstanceApi(client).get_log('flaky', run.dag_run_id, 'after', 1)
    assert 'after' in '\n'.join(m.event for m in first_log.content.actual_instance)

    marked = TaskInstanceApi(client).patch_task_instance('flaky', run.dag_run_id, 'after',
                                                         PatchTaskInstanceBody(new_state='failed'))
    assert marked.task_instances[0].task_id == 'after'
    assert wait_until(lambda: finished(client, 'flaky', run.dag_run_id) == 'failed', 30, 'the marked run')
    after = TaskInstanceApi(client).get_task_instance('flaky', run.dag_run_id, 'after')
    assert after.state.value == 'failed'


def test_a_backfill_to_completion_pools_and_health(client, k8s_api):
    k8s_api.create(dag('daily', [{'name': 'work', 'command': ['sh', '-c', 'echo {{ ds }}']}], schedule='@daily',
                       startDate='2030-01-01T00:00:00Z'))
    validated(k8s_api, 'daily')
    body = BackfillPostBody(dag_id='daily', from_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
                            to_date=datetime(2026, 1, 3, tzinfo=timezone.utc), max_active_runs=2,
                            reprocess_behavior='none')
    backfill = BackfillApi(client).create_backfill(body)
    assert (backfill.dag_id, backfill.max_active_runs) == ('daily', 2)
    done = wait_until(lambda: BackfillApi(client).get_backfill(backfill.id).completed_at, 90, 'the backfill')
    assert done is not None
    runs = DagRunApi(client).get_dag_runs('daily', run_type=['backfill'], order_by=['logical_date'])
    assert [(r.logical_date.day, r.state.value) for r in runs.dag_runs] == [(1, 'success'), (2, 'success'),
                                                                             (3, 'success')]
    assert [b.id for b in BackfillApi(client).list_backfills('daily').backfills] == [backfill.id]
    with pytest.raises(ac.ApiException) as completed:
        BackfillApi(client).pause_backfill(backfill.id)
    assert completed.value.status == 409

    pools = {p.name: p for p in PoolApi(client).get_pools().pools}
    assert pools['default-pool'].slots == 128 and 'team-b.default-pool' in pools
    health = MonitorApi(client).get_health()
    assert health.metadatabase.status == 'healthy'

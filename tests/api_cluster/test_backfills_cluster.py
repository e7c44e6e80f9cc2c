"""Backfills on a cluster through the :class:`kubedag.app.catalog.Backfills` port
(:class:`kubedag.k8s.backfills.ClusterBackfills`): Backfill objects the running controller carries out, paused,
unpaused and cancelled as Airflow 3's are."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kubedag.app import operations as ops
from kubedag.app.catalog import BackfillRequest, Conflict, RunQuery
from kubedag.k8s.backfills import ClusterBackfills
from kubedag.k8s.catalog import ClusterCatalog
from tests.api_cluster.conftest import BACKFILLS, DAGRUNS, OTHER, dag
from tests.controller.harness import wait_until


def day(n: int) -> datetime:
    return datetime(2026, 1, n, tzinfo=timezone.utc)


def status(k8s_api, name, namespace='default'):
    return (k8s_api.get(BACKFILLS, name, namespace) or {}).get('status') or {}


def phases(k8s_api, namespace='default'):
    return sorted((r['spec']['runId'][10:20], (r.get('status') or {}).get('phase')) for r in k8s_api.list(DAGRUNS, namespace))


def test_a_backfill_runs_to_completion_and_a_second_one_is_refused_meanwhile(k8s_api, kube, controller):
    k8s_api.create(dag('daily', [{'name': 'work', 'command': ['sh', '-c', 'sleep 0.3']}], schedule='@daily',
                       startDate='2030-01-01', namespace=OTHER))
    wait_until(lambda: (k8s_api.get('kubedag.io/v1alpha1/dags', 'daily', OTHER).get('status') or {}).get('conditions'))
    catalog = ClusterCatalog(kube, namespaces=[OTHER])
    backfills = ClusterBackfills(catalog)
    created = backfills.create(BackfillRequest('team-b.daily', day(1), day(3), max_active_runs=2,
                                               dag_run_conf={'source': 'api'}))
    assert created.id.startswith('team-b.daily-backfill-') and created.dag_id == 'team-b.daily'
    assert (created.from_date, created.to_date, created.max_active_runs) == (day(1), day(3), 2)
    obj = k8s_api.get(BACKFILLS, created.id.split('.', 1)[1], OTHER)
    assert obj['spec'] == {'dagName': 'daily', 'startDate': '2026-01-01T00:00:00+00:00',
                           'endDate': '2026-01-03T00:00:00+00:00', 'reprocessBehavior': 'none',
                           'conf': {'source': 'api'}, 'maxActiveRuns': 2}
    with pytest.raises(ops.AlreadyExists, match='has a backfill that has not completed'):
        backfills.create(BackfillRequest('team-b.daily', day(5), day(6)))

    wait_until(lambda: catalog.backfill(created.id).completed_at is not None, timeout=60, what='backfill done')
    done = catalog.backfill(created.id)
    assert (done.runs_total, done.runs_done, done.is_paused, done.cancelled) == (3, 3, False, False)
    runs, total = catalog.runs(RunQuery(dag_id='team-b.daily', run_types=['backfill']))
    assert total == 3 and {r.state for r in runs} == {'success'} and {r.conf['source'] for r in runs} == {'api'}
    assert {r.backfill_id for r in runs} == {created.id}
    assert [b.id for b in catalog.backfills('team-b.daily')] == [created.id]
    with pytest.raises(Conflict, match='has completed'):
        backfills.set_paused(created.id, True)
    again = backfills.create(BackfillRequest('team-b.daily', day(5), day(6)))  # the first has completed
    assert again.id != created.id


@pytest.mark.parametrize(('request_', 'message'), [
    (BackfillRequest('daily', day(3), day(1)), 'to_date'),
    (BackfillRequest('daily', day(1), day(3), reprocess_behavior='everything'), 'reprocess_behavior'),
    (BackfillRequest('daily', day(1), day(3), max_active_runs=0), 'max_active_runs'),
    (BackfillRequest('daily', datetime(2026, 1, 1), day(3)), 'timezone'),
])
def test_bad_requests_name_the_field(k8s_api, kube, request_, message):
    k8s_api.create(dag('daily', [{'name': 'work', 'command': ['true']}], schedule='@daily'))
    with pytest.raises(ops.InvalidRequest, match=message):
        ClusterBackfills(ClusterCatalog(kube)).create(request_)
    with pytest.raises(ops.NotFound):
        ClusterBackfills(ClusterCatalog(kube)).create(BackfillRequest('nope', day(1), day(2)))
    assert k8s_api.list(BACKFILLS, 'default') == []


def test_reprocess_failed_reruns_only_the_failed_existing_run(k8s_api, kube, controller):
    k8s_api.create(dag('daily', [{'name': 'work', 'command': ['sh', '-c', 'test -f "$KUBEDAG_RUN_ID.ok" || '
                                                           '{ touch "$KUBEDAG_RUN_ID.ok"; exit 1; }']}],
                       schedule='@daily', startDate='2030-01-01'))
    wait_until(lambda: (k8s_api.get('kubedag.io/v1alpha1/dags', 'daily', 'default').get('status') or {}).get('conditions'))
    catalog = ClusterCatalog(kube)
    backfills = ClusterBackfills(catalog)
    first = backfills.create(BackfillRequest('daily', day(1), day(2)))
    wait_until(lambda: catalog.backfill(first.id).completed_at is not None, timeout=60, what='first backfill')
    assert phases(k8s_api) == [('2026-01-01', 'failed'), ('2026-01-02', 'failed')]
    k8s_api.patch(DAGRUNS, k8s_api.list(DAGRUNS, 'default')[1]['metadata']['name'], {'status': {'phase': 'success'}},
                  'default', subresource='status')  # as if it had been marked success meanwhile
    assert sorted(p for _, p in phases(k8s_api)) == ['failed', 'success']
    k8s_api.delete(BACKFILLS, first.id, 'default', propagationPolicy='Orphan')  # its runs stay

    second = backfills.create(BackfillRequest('daily', day(1), day(2), reprocess_behavior='failed'))
    wait_until(lambda: catalog.backfill(second.id).completed_at is not None, timeout=60, what='reprocessing')
    assert sorted(p for _, p in phases(k8s_api)) == ['success', 'success']
    assert status(k8s_api, second.id)['succeeded'] == 2


def test_pause_holds_new_runs_and_cancel_deletes_the_queued_ones(k8s_api, kube, controller):
    # the DAG runs one run at a time: the backfill's other runs wait queued
    k8s_api.create(dag('slow', [{'name': 'work', 'command': ['sh', '-c', 'sleep 1']}], schedule='@daily',
                       startDate='2030-01-01', maxActiveRuns=1))
    wait_until(lambda: (k8s_api.get('kubedag.io/v1alpha1/dags', 'slow', 'default').get('status') or {}).get('conditions'))
    catalog = ClusterCatalog(kube)
    backfills = ClusterBackfills(catalog)
    held = backfills.create(BackfillRequest('slow', day(1), day(4), max_active_runs=1))
    wait_until(lambda: status(k8s_api, held.id).get('created') == 1, what='the first run')
    paused = backfills.set_paused(held.id, True)
    assert paused.is_paused
    wait_until(lambda: status(k8s_api, held.id).get('succeeded') == 1, timeout=30, what='the first run done')
    wait_until(lambda: status(k8s_api, held.id)['conditions'][0]['reason'] == 'Paused', what='paused condition')
    assert status(k8s_api, held.id)['created'] == 1 and len(k8s_api.list(DAGRUNS, 'default')) == 1
    assert catalog.backfill(held.id).is_paused and catalog.backfill(held.id).completed_at is None

    backfills.set_paused(held.id, False)
    wait_until(lambda: status(k8s_api, held.id).get('created') == 2, what='unpaused: the next run')
    backfills.set_paused(held.id, True)
    wait_until(lambda: status(k8s_api, held.id).get('succeeded') == 2, timeout=30, what='two runs done')
    k8s_api.patch(BACKFILLS, held.id, {'spec': {'maxActiveRuns': 2}}, 'default')
    backfills.set_paused(held.id, False)  # two runs at once now, but the DAG runs one: one stays queued
    wait_until(lambda: status(k8s_api, held.id).get('created') == 4, what='the last two runs created')
    cancelled = backfills.cancel(held.id)
    assert cancelled.cancelled and cancelled.is_paused
    wait_until(lambda: status(k8s_api, held.id).get('phase') == 'cancelled', what='cancelled')
    info = catalog.backfill(held.id)
    assert info.completed_at is not None and info.cancelled
    left = phases(k8s_api)
    assert len(left) == 3 and all(p in ('running', 'success') for _, p in left)  # the queued run was deleted
    with pytest.raises(Conflict):
        backfills.cancel(held.id)

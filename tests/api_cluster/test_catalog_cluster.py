"""The cluster's Catalog (:class:`kubedag.k8s.catalog.ClusterCatalog`) against the emulator with the controller
running: what the REST API will serve, read from DAG, DAGRun and Pool objects and the pods' logs."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from kubedag.app import operations as ops
from kubedag.app.catalog import Identity, RunQuery
from kubedag.k8s.access import SubjectAccessReviewAuthorizer
from kubedag.k8s.catalog import ClusterCatalog
from kubedag.k8s.kubeapi import ClusterRuns
from tests.api_cluster.conftest import DAGS, OTHER, POOLS, dag
from tests.controller.harness import wait_until

FLAKY = ('if [ -f "flaky.$KUBEDAG_RUN_ID" ]; then echo "second try"; '
         'else touch "flaky.$KUBEDAG_RUN_ID"; echo "first try"; exit 3; fi')


def ready(k8s_api, name, namespace='default'):
    return wait_until(lambda: ((k8s_api.get(DAGS, name, namespace) or {}).get('status') or {}).get('conditions'),
                      what=f'DAG {name} validated')


def test_dags_of_every_served_namespace_with_ids_errors_pause_and_next_run(k8s_api, kube, controller):
    k8s_api.create(dag('sales', [{'name': 'a', 'command': ['true']}], schedule='@daily', startDate='2030-01-01'))
    k8s_api.create(dag('broken', [{'name': 'a', 'command': ['true'], 'dependsOn': ['missing']}]))
    k8s_api.create(dag('etl', [{'name': 'a', 'command': ['true']}], namespace=OTHER, paused=True))
    for name, ns in (('sales', 'default'), ('broken', 'default'), ('etl', OTHER)):
        ready(k8s_api, name, ns)
    wait_until(lambda: (k8s_api.get(DAGS, 'sales', 'default').get('status') or {}).get('nextRunAt'), what='nextRunAt')
    catalog = ClusterCatalog(kube, namespaces=[OTHER])

    found = {d.dag_id: d for d in catalog.dags()}
    assert list(found) == ['broken', 'sales', 'team-b.etl']
    assert found['broken'].dag is None and 'missing' in found['broken'].error
    sales = found['sales']
    assert sales.dag is not None and sales.error is None and not sales.is_paused
    assert sales.next_run_after == datetime(2030, 1, 2, tzinfo=timezone.utc)
    assert sales.next_logical_date == datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert (sales.namespace, sales.fileloc) == ('default', 'default/sales')
    etl = catalog.dag('team-b.etl')
    assert (etl.namespace, etl.is_paused, etl.dag.dag_id) == (OTHER, True, 'etl')
    for unknown in ('nope', 'team-c.etl', 'team-b.nope', 'default.sales'):
        with pytest.raises(ops.NotFound):
            catalog.dag(unknown)
    assert [d.dag_id for d in ClusterCatalog(kube).dags()] == ['broken', 'sales']  # team-b is not served


def test_a_triggered_run_its_task_instances_tries_and_logs(k8s_api, kube, controller):
    k8s_api.create(dag('pipe', [
        {'name': 'extract', 'command': ['sh', '-c', 'echo "rows: 42"']},
        {'name': 'flaky', 'command': ['sh', '-c', FLAKY], 'dependsOn': ['extract'], 'retries': 1,
         'retryDelay': '0s', 'pool': 'warehouse'},
    ]))
    k8s_api.create({'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'Pool', 'metadata': {'name': 'warehouse', 'namespace': 'default'},
                    'spec': {'slots': 3, 'description': 'the warehouse'}})
    ready(k8s_api, 'pipe')
    catalog = ClusterCatalog(kube)
    run = ops.trigger(ClusterRuns(kube), 'pipe', logical_date=datetime(2026, 11, 1, tzinfo=timezone.utc),
                      conf={'region': 'eu'})
    wait_until(lambda: catalog.run('pipe', run.run_id).state in ('success', 'failed'), timeout=60, what='run done')

    got = catalog.run('pipe', run.run_id)
    assert (got.state, got.run_type, got.conf, got.logical_date) == ('success', 'manual', {'region': 'eu'},
                                                                      datetime(2026, 11, 1, tzinfo=timezone.utc))
    assert got.start_date is not None and got.end_date >= got.start_date and got.queued_at is not None
    listed, total = catalog.runs(RunQuery(dag_id='pipe'))
    assert total == 1 and [r.run_id for r in listed] == [run.run_id]
    assert catalog.runs(RunQuery(dag_id='pipe', states=['failed'])) == ([], 0)
    assert catalog.runs(RunQuery(dag_id='pipe', logical_date_gte=datetime(2026, 11, 2, tzinfo=timezone.utc)))[1] == 0

    tis = {t.task_id: t for t in catalog.task_instances('pipe', run.run_id)}
    assert (tis['extract'].state, tis['extract'].try_number, tis['extract'].operator) == ('success', 1, 'command')
    flaky = tis['flaky']
    # max_tries is Airflow's (the retries allowed), as the REST API and the local catalog give it
    assert (flaky.state, flaky.try_number, flaky.max_tries, flaky.pool) == ('success', 2, 1, 'warehouse')
    assert flaky.pod_name.startswith('pipe-flaky-2-') and flaky.priority_weight == 1
    assert tis['extract'].priority_weight == 2  # its own and flaky's downstream weight, as Airflow's default rule
    assert [t.try_number for t in catalog.tries('pipe', run.run_id, 'flaky')] == [2]

    assert 'second try' in catalog.log('pipe', run.run_id, 'flaky', 2)
    assert 'first try' in catalog.log('pipe', run.run_id, 'flaky', 1)  # an earlier try's pod, while it exists
    assert 'rows: 42' in catalog.log('pipe', run.run_id, 'extract', 1)
    with pytest.raises(ops.OperationError, match='log unavailable'):
        catalog.log('pipe', run.run_id, 'flaky', 3)
    with pytest.raises(ops.NotFound):
        catalog.run('pipe', 'manual__nope')
    with pytest.raises(ops.NotFound, match="DAG 'nope' not found"):
        catalog.runs(RunQuery(dag_id='nope'))

    wait_until(lambda: (k8s_api.get(POOLS, 'warehouse', 'default') or {}).get('status'), what='pool status')
    pools = {p.name: p for p in catalog.pools()}
    assert set(pools) == {'default-pool', 'warehouse'}
    assert (pools['warehouse'].slots, pools['warehouse'].description, pools['warehouse'].open) == (3, 'the warehouse', 3)
    assert pools['default-pool'].slots == 128


def test_live_logs_are_masked_with_the_dags_secrets(k8s_api, kube, controller):
    k8s_api.create({'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 'creds', 'namespace': 'default'},
                    'stringData': {'api_token': 'sup3r-s3cret-value'}})
    k8s_api.create(dag('leaky', [{'name': 'say', 'command': ['sh', '-c', 'echo "token is {{ var.value.api_token }}"']}],
                       variablesFrom=[{'secretRef': {'name': 'creds'}}]))
    ready(k8s_api, 'leaky')
    catalog = ClusterCatalog(kube)
    run = ops.trigger(ClusterRuns(kube), 'leaky', logical_date=datetime(2026, 11, 1, tzinfo=timezone.utc))
    wait_until(lambda: catalog.run('leaky', run.run_id).state == 'success', timeout=60, what='run done')
    text = catalog.log('leaky', run.run_id, 'say', 1)
    assert 'token is ***' in text and 'sup3r-s3cret-value' not in text


def test_a_namespace_the_identity_cannot_list_is_invisible(k8s_api, kube, auth, controller):
    k8s_api.create(dag('sales', [{'name': 'a', 'command': ['true']}]))
    k8s_api.create(dag('etl', [{'name': 'a', 'command': ['true']}], namespace=OTHER))
    ready(k8s_api, 'etl', OTHER)
    ops.trigger(ClusterRuns(kube.__class__(kube.api_client, OTHER)), 'etl',
                logical_date=datetime(2026, 11, 1, tzinfo=timezone.utc))
    auth.grant('user:alice', ['get', 'list'], ['dags', 'dagruns'], namespace='default')
    authorizer = SubjectAccessReviewAuthorizer(kube.api_client)
    everything = ClusterCatalog(kube, namespaces=[OTHER])
    alice = everything.for_identity(Identity('alice'), authorizer)

    assert [d.dag_id for d in everything.dags()] == ['sales', 'team-b.etl']
    assert [d.dag_id for d in alice.dags()] == ['sales']
    assert everything.runs(RunQuery())[1] == 1 and alice.runs(RunQuery()) == ([], 0)
    for call in (lambda: alice.dag('team-b.etl'), lambda: alice.runs(RunQuery(dag_id='team-b.etl')),
                 lambda: alice.backfills('team-b.etl')):
        with pytest.raises(ops.NotFound):
            call()
    assert {p.namespace for p in alice.pools()} == {'default'}
    asked = {(r['resourceAttributes']['namespace'], r['user']) for r in auth.reviews}
    assert asked == {('default', 'alice'), (OTHER, 'alice')}


def test_runs_logs_and_tries_etcd_no_longer_holds_come_from_the_history(k8s_api, fake_kubelet, kube, tmp_path):
    """With runHistoryLimit 1 the first run's DAGRun (and its pods) is deleted once a second run finishes: the
    catalog still lists it, with its task instances, tries and archived log, from the controller's DB."""
    from datetime import timedelta

    from kubedag.cli.api_cluster import cluster_history
    from tests.api_cluster.conftest import DAGRUNS
    from tests.controller.harness import RunningController

    db = f"sqlite:///{tmp_path / 'history.db'}"
    k8s_api.create(dag('twice', [{'name': 'say', 'command': ['sh', '-c', 'echo "run $KUBEDAG_RUN_ID"']}]))
    with RunningController(k8s_api, db, run_history_limit=1, pod_retention=timedelta(seconds=0)):
        ready(k8s_api, 'twice')
        history, close_history = cluster_history(db)
        catalog = ClusterCatalog(kube, history=history)
        first = ops.trigger(ClusterRuns(kube), 'twice', logical_date=datetime(2026, 11, 1, tzinfo=timezone.utc))
        wait_until(lambda: catalog.run('twice', first.run_id).state == 'success', timeout=60, what='first run')
        second = ops.trigger(ClusterRuns(kube), 'twice', logical_date=datetime(2026, 11, 2, tzinfo=timezone.utc))
        wait_until(lambda: catalog.run('twice', second.run_id).state == 'success', timeout=60, what='second run')
        wait_until(lambda: len(k8s_api.list(DAGRUNS, 'default')) == 1, timeout=60, what='the first DAGRun deleted')

        listed, total = catalog.runs(RunQuery(dag_id='twice', order_by='logical_date'))
        assert total == 2 and [r.run_id for r in listed] == [first.run_id, second.run_id]
        old = catalog.run('twice', first.run_id)
        assert (old.dag_id, old.state, old.object_name) == ('twice', 'success', None)  # from the history
        [ti] = catalog.task_instances('twice', first.run_id)
        assert (ti.dag_id, ti.task_id, ti.state, ti.try_number) == ('twice', 'say', 'success', 1)
        assert [t.try_number for t in catalog.tries('twice', first.run_id, 'say')] == [1]
        assert f'run {first.run_id}' in catalog.log('twice', first.run_id, 'say', 1)
        live = {t.task_id: t for t in catalog.task_instances('twice', second.run_id)}
        assert live['say'].start_date is not None and live['say'].end_date is not None  # dates from the history
        grid = catalog.grid('twice', [first.run_id, second.run_id, 'gone'])  # the UI grid's batched read
        def unrendered(run_id: str) -> list:  # the grid leaves out the rendered fields (only the panel shows them)
            return [replace(t, rendered_fields={}) for t in catalog.task_instances('twice', run_id)]
        assert grid == {first.run_id: unrendered(first.run_id), second.run_id: unrendered(second.run_id)}
        assert catalog.health().metadatabase.status == 'healthy'
        close_history()


def test_a_failed_tries_reason_comes_from_the_status_without_the_history(k8s_api, kube, controller):
    """Without the archive (the metadata DB), a try that failed with no pod still says why: its status entry's
    reason, in the task instance and its try."""
    k8s_api.create(dag('untemplated', [{'name': 'a', 'command': ['sh', '-c', 'echo {{ undefined_7.x }}']}]))
    ready(k8s_api, 'untemplated')
    catalog = ClusterCatalog(kube)
    run = ops.trigger(ClusterRuns(kube), 'untemplated', logical_date=datetime(2026, 11, 1, tzinfo=timezone.utc))
    wait_until(lambda: catalog.run('untemplated', run.run_id).state == 'failed', timeout=60, what='run failed')
    [ti] = catalog.task_instances('untemplated', run.run_id)
    [attempt] = catalog.tries('untemplated', run.run_id, 'a')
    assert 'undefined_7' in ti.reason and attempt.reason == ti.reason

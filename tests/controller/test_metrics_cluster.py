"""The controller's /metrics, /healthz and /readyz, scraped while it runs DAGs on the emulated cluster."""
from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from kubedag.cli.controller import serve
from kubedag.http.probes import ProbeServer
from tests.controller import harness
from tests.controller.harness import NS, RunningController, dag_manifest, manual_run, wait_phase, wait_until
from tests.metrics.dbproxy import DbProxy
from tests.metrics.scrape import probe, scrape
from tests.notify.receiver import WebhookReceiver


@pytest.fixture
def probes(monkeypatch):
    """A probe server on a free port handed to every controller the harness starts."""
    server = ProbeServer("127.0.0.1", 0).start()
    monkeypatch.setattr(harness, 'serve', functools.partial(serve, probes=server))
    yield server
    server.stop()


def test_each_metric_moves_as_a_run_goes_on_the_cluster(k8s_api, fake_kubelet, sqlite_url, probes):
    url = probes.url
    assert probe(url, '/readyz')[0] == 503  # no controller yet: "starting"
    k8s_api.create({'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'Pool', 'metadata': {'name': 'dock', 'namespace': NS},
                    'spec': {'slots': 1}})
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).strftime('%Y-%m-%d')
    with WebhookReceiver() as hook, WebhookReceiver(fail_first=1, fail_status=400) as refusing:
        k8s_api.create(dag_manifest('metered', [
            {'name': 'extract', 'command': ['echo', 'extracted']},
            {'name': 'transform', 'retries': 1, 'retryDelay': '0s', 'dependsOn': ['extract'],
             'command': ['sh', '-c', 'if [ -f done ]; then exit 0; fi; touch done; exit 3']},
            {'name': 'load', 'pool': 'dock', 'command': ['true'], 'dependsOn': ['transform']},
        ], onSuccess=[{'webhook': {'url': hook.url + '/ok'}}]))
        k8s_api.create(dag_manifest('broken', [{'name': 'boom', 'command': ['sh', '-c', 'exit 1']}],
                                    onFailure=[{'webhook': {'url': refusing.url + '/no'}}]))
        k8s_api.create(dag_manifest('late', [{'name': 'slow', 'sla': '1s', 'command': ['true']}],
                                    schedule='@daily', startDate=yesterday, catchup=False))
        before = scrape(url)
        with RunningController(k8s_api, sqlite_url):
            wait_until(lambda: probe(url, '/readyz') == (200, 'ok\n'), what='controller ready')
            assert probe(url, '/healthz') == (200, 'ok\n')
            k8s_api.create(manual_run('metered', 'metered-1'))
            k8s_api.create(manual_run('broken', 'broken-1'))
            assert wait_phase(k8s_api, 'metered-1')['status']['phase'] == 'success'
            assert wait_phase(k8s_api, 'broken-1')['status']['phase'] == 'failed'
            wait_until(lambda: [r for r in k8s_api.list('kubedag.io/v1alpha1/dagruns', NS)
                                if r['spec']['dagName'] == 'late' and r.get('status', {}).get('phase') == 'success'],
                       what='the scheduled run of late')
            hook.wait_for(1)
            refusing.wait_for(1)
            wait_until(lambda: scrape(url).value('kubedag_notifications_total', event='dag_failure') > before.value(
                'kubedag_notifications_total', event='dag_failure'), what='the refused notification counted')
            wait_until(lambda: scrape(url).has('kubedag_pool_open_slots', pool=f'{NS}/dock'), what='pool gauges')
            wait_until(lambda: scrape(url).value('kubedag_db_writes_pending') == 0, what='no write in flight')
            after = scrape(url)
    moved = after - before

    # DAG runs: started and finished by DAG, run type and state, with their durations
    assert moved.value('kubedag_dag_run_started_total', dag_id='default/metered', run_type='manual') == 1
    assert moved.value('kubedag_dag_run_finished_total', dag_id='default/metered', run_type='manual', state='success') == 1
    assert moved.value('kubedag_dag_run_finished_total', dag_id='default/broken', run_type='manual', state='failed') == 1
    assert moved.value('kubedag_dag_run_finished_total', dag_id='default/late', run_type='scheduled', state='success') == 1
    assert moved.value('kubedag_dag_run_duration_seconds_count', dag_id='default/metered', state='success') == 1
    assert moved.value('kubedag_dag_run_duration_seconds_sum', dag_id='default/metered', state='success') > 0
    # task instances: 4 tries (transform twice); 3 successes and one retry; every try's wait to run measured
    assert moved.value('kubedag_task_instance_started_total', dag_id='default/metered') == 4
    assert moved.value('kubedag_task_instance_finished_total', dag_id='default/metered', state='success') == 3
    assert moved.value('kubedag_task_instance_finished_total', dag_id='default/metered', state='up_for_retry') == 1
    assert moved.value('kubedag_task_instance_finished_total', dag_id='default/broken', state='failed') == 1
    assert moved.value('kubedag_task_instance_queued_to_running_seconds_count', dag_id='default/metered') == 4
    # successor latency: transform's first try after extract, load after transform (a retry is not a successor)
    assert moved.value('kubedag_task_instance_successor_latency_seconds_count', dag_id='default/metered') == 2
    # pools, SLA misses, notifications
    assert after.value('kubedag_pool_open_slots', pool='default/dock') == 1
    assert after.value('kubedag_pool_occupied_slots', pool='default/dock') == 0
    assert moved.value('kubedag_sla_missed_total', dag_id='default/late', task_id='slow') == 1
    assert moved.value('kubedag_notifications_total', kind='webhook', event='dag_success', result='sent') == 1
    assert moved.value('kubedag_notifications_total', kind='webhook', event='dag_failure', result='failed') == 1
    # the controller's machinery: work queues, reconciles, API requests, DB writes
    for queue in ('DAGRun', 'DAG'):
        assert moved.value('kubedag_workqueue_adds_total', name=queue) > 0
        assert moved.value('kubedag_workqueue_queue_duration_seconds_count', name=queue) > 0
        assert after.has('kubedag_workqueue_depth', name=queue)
        assert moved.value('kubedag_reconcile_total', resource=queue, result='success') > 0
        assert moved.value('kubedag_reconcile_duration_seconds_count', resource=queue) > 0
    assert moved.value('kubedag_kube_api_requests_total', verb='create', code='201') >= 5  # 5 pods, events
    assert moved.value('kubedag_kube_api_requests_total', verb='list') > 0  # the readiness check's listings
    assert moved.value('kubedag_kube_api_request_duration_seconds_count', verb='create') >= 5
    assert moved.value('kubedag_db_write_duration_seconds_count', operation='save_pass') > 0


@pytest.mark.postgres
def test_readyz_fails_and_writes_pend_while_the_db_is_unreachable(k8s_api, fake_kubelet, postgres_url, probes, tmp_path):
    admin = sa.create_engine(postgres_url, isolation_level='AUTOCOMMIT')
    with admin.connect() as conn:
        conn.exec_driver_sql('DROP DATABASE IF EXISTS kubedag_metrics_outage')
        conn.exec_driver_sql('CREATE DATABASE kubedag_metrics_outage')
    admin.dispose()
    url = probes.url
    gate = tmp_path / 'gate'
    k8s_api.create(dag_manifest('outage', [
        {'name': 'wait', 'command': ['sh', '-c', f'while [ ! -f {gate} ]; do sleep 0.1; done']},
        {'name': 'after', 'command': ['true'], 'dependsOn': ['wait']},
    ]))
    db = sa.make_url(postgres_url).set(database='kubedag_metrics_outage').render_as_string(hide_password=False)
    with DbProxy(db) as proxy, RunningController(k8s_api, proxy.url):
        wait_until(lambda: probe(url, '/readyz') == (200, 'ok\n'), what='controller ready')
        k8s_api.create(manual_run('outage', 'outage-1'))
        wait_until(lambda: (k8s_api.get(harness.DAGRUNS, 'outage-1', NS) or {}).get('status', {}).get('tasks', {})
                   .get('wait', {}).get('s') == 'running', what='wait running')
        before = scrape(url)
        proxy.cut()
        gate.touch()  # the try ends while the DB is away: its pass cannot be written
        status, body = wait_until(lambda: (r := probe(url, '/readyz'))[0] == 503 and r, what='not ready')
        assert body.startswith('not ready: metadata DB unreachable')
        assert '\n' not in body.strip()
        wait_until(lambda: scrape(url).value('kubedag_db_writes_pending') >= 1, what='a pending write')
        wait_until(lambda: (scrape(url) - before).value('kubedag_reconcile_errors_total', resource='DAGRun') >= 1,
                   what='a failed reconcile')
        assert probe(url, '/healthz') == (200, 'ok\n')  # alive: nothing a restart would fix
        proxy.restore()
        wait_until(lambda: probe(url, '/readyz') == (200, 'ok\n'), what='ready again', timeout=60)
        assert wait_phase(k8s_api, 'outage-1', timeout=90)['status']['phase'] == 'success'
        wait_until(lambda: scrape(url).value('kubedag_db_writes_pending') == 0, what='nothing pending')
        moved = scrape(url) - before
    assert moved.value('kubedag_db_write_errors_total', operation='save_pass') >= 1
    assert moved.value('kubedag_dag_run_finished_total', dag_id='default/outage', state='success') == 1


def test_kubedag_controller_serves_its_probes_on_the_metrics_port(k8s_api, tmp_path, monkeypatch):
    monkeypatch.setenv('KUBEDAG_HOME', str(tmp_path / 'home'))
    monkeypatch.delenv('KUBEDAG_DATABASE_URL', raising=False)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    kubeconfig = k8s_api.kubeconfig(tmp_path / 'kubeconfig')
    proc = subprocess.Popen([str(Path(sys.executable).with_name('kubedag')), 'controller', '--kubeconfig', str(kubeconfig),
                             '-n', NS, '--liveness-port', '0', '--metrics-port', str(port), '--metrics-host', '127.0.0.1'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    url = f'http://127.0.0.1:{port}'
    try:
        wait_until(lambda: _answers(url) == (200, 'ok\n'), 60, 'the controller ready')
        assert probe(url, '/healthz') == (200, 'ok\n')
        assert scrape(url).has('kubedag_workqueue_depth', name='DAGRun')
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out


def _answers(url: str) -> tuple[int, str] | None:
    try:
        return probe(url, '/readyz')
    except OSError:  # not listening yet
        return None

"""The controller survives restarts, keeps history in the DB, and tidies pods and old runs."""
from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from kubedag.core import naming as names
from tests.controller.harness import (
    DAGRUNS, NS, ROOT, RunningController, dag_manifest, load_yaml, manual_run, wait_phase, wait_until,
)


def _rows(url, query):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query)).all()]
    finally:
        engine.dispose()


def test_a_controller_killed_mid_run_resumes_without_duplicate_runs_or_pods(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('resume', [
        {'name': 'first', 'command': ['true']},
        {'name': 'slow', 'command': ['sleep', '1.5'], 'dependsOn': ['first']},
        {'name': 'last', 'command': ['true'], 'dependsOn': ['slow']},
    ], schedule='@daily', startDate='2026-01-01T00:00:00Z', catchup=False))
    controller = RunningController(k8s_api, sqlite_url).start()
    try:
        run = wait_until(lambda: k8s_api.list(DAGRUNS, NS), what='the scheduled run')[0]
        name = run['metadata']['name']
        slow = names.pod_name('resume', name, 'slow', 1)
        wait_until(lambda: k8s_api.get('v1/pods', slow, NS), what='the slow pod')
    finally:
        controller.stop()  # gone while 'slow' runs
    controller.start()
    try:
        run = wait_phase(k8s_api, name)
    finally:
        controller.stop()
    assert run['status']['phase'] == 'success'
    assert len(k8s_api.list(DAGRUNS, NS)) == 1
    pods = k8s_api.list('v1/pods', NS, label_selector=f'{names.LABEL_RUN}={name}')
    assert sorted((p['metadata']['labels'][names.LABEL_TASK], p['metadata']['labels'][names.LABEL_TRY]) for p in pods) == [
        ('first', '1'), ('last', '1'), ('slow', '1')]
    creates = [r for r in k8s_api.handler['post'] if r.url.path.endswith('/pods')]
    assert len(creates) in (3, 4)  # a pod re-created after the restart answers 409, never makes a second pod
    assert _rows(sqlite_url, "select count(*) from dag_run") == [(1,)]
    assert _rows(sqlite_url, "select task_id, try_number, state from task_instance order by task_id") == [
        ('first', 1, 'success'), ('last', 1, 'success'), ('slow', 1, 'success')]


def test_a_pod_deleted_while_the_controller_was_down_fails_its_try_after_the_restart(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('gone', [
        {'name': 'sleeper', 'command': ['sleep', '60']},
        {'name': 'after', 'command': ['true'], 'dependsOn': ['sleeper']},
    ]))
    controller = RunningController(k8s_api, sqlite_url).start()
    try:
        k8s_api.create(manual_run('gone', 'gone-1'))
        pod = names.pod_name('gone', 'gone-1', 'sleeper', 1)
        wait_until(lambda: (k8s_api.get('v1/pods', pod, NS) or {}).get('status', {}).get('phase') == 'Running',
                   what='sleeper running')
    finally:
        controller.stop()
    k8s_api.delete('v1/pods', pod, NS, gracePeriodSeconds=0)
    wait_until(lambda: k8s_api.get('v1/pods', pod, NS) is None, what='the pod gone')
    controller.start()  # its pod is in no watch cache: the controller asks the API server before calling it lost
    try:
        run = wait_phase(k8s_api, 'gone-1')
    finally:
        controller.stop()
    assert run['status']['phase'] == 'failed'
    assert run['status']['tasks']['sleeper']['s'] == 'failed'
    assert run['status']['tasks']['after']['s'] == 'upstream_failed'
    assert _rows(sqlite_url, "select reason from task_instance_history where task_id='sleeper'") == [
        (f'pod {pod} was deleted before it finished',)]


def test_finished_pods_are_deleted_after_retention_with_their_logs_kept(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('tidy', [{'name': 'say', 'command': ['echo', 'kept in the database']}]))
    with RunningController(k8s_api, sqlite_url, pod_retention=timedelta(0)):
        k8s_api.create(manual_run('tidy', 'tidy-1'))
        wait_phase(k8s_api, 'tidy-1')
        wait_until(lambda: not k8s_api.list('v1/pods', NS, label_selector=f'{names.LABEL_RUN}=tidy-1'),
                   what='the pod deleted')
    assert _rows(sqlite_url, "select log from task_instance_history") == [('kept in the database\n',)]


def test_old_runs_beyond_the_history_limit_are_deleted_but_stay_in_the_db(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('keep2', [{'name': 'a', 'command': ['true']}]))
    with RunningController(k8s_api, sqlite_url, run_history_limit=2):
        for i in range(3):
            k8s_api.create(manual_run('keep2', f'keep2-{i}', logicalDate=f'2026-11-0{i + 1}T00:00:00Z'))
            wait_phase(k8s_api, f'keep2-{i}')
        wait_until(lambda: len(k8s_api.list(DAGRUNS, NS)) == 2, what='the oldest run deleted')
    assert sorted(r['metadata']['name'] for r in k8s_api.list(DAGRUNS, NS)) == ['keep2-1', 'keep2-2']
    assert _rows(sqlite_url, "select count(*) from dag_run where state = 'success'") == [(3,)]


def test_execution_timeout_fails_the_try(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('late', [{'name': 'slow', 'command': ['sleep', '30'], 'executionTimeout': '1s'}]))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('late', 'late-1'))
        run = wait_phase(k8s_api, 'late-1')
    assert run['status']['tasks']['slow']['s'] == 'failed'
    # the pod carried activeDeadlineSeconds; whichever of the kubelet or the controller acted first, it is gone
    created = [r for r in k8s_api.handler['post'] if r.url.path.endswith('/pods')]
    assert [r.data['spec']['activeDeadlineSeconds'] for r in created] == [1]
    (reason,) = _rows(sqlite_url, "select reason from task_instance_history")[0]
    assert 'timeout' in reason


@pytest.mark.postgres
def test_the_supermarket_example_runs_on_the_cluster_with_history_in_postgres(
        k8s_api, fake_kubelet, postgres_url, tmp_path):
    example = tmp_path / 'supermarket'
    shutil.copytree(ROOT / 'examples' / 'supermarket', example, ignore=shutil.ignore_patterns('out'))
    fake_kubelet.cwd_for = lambda pod: example  # the image's WORKDIR, with the example's files
    admin = sa.create_engine(postgres_url, isolation_level='AUTOCOMMIT')
    with admin.connect() as conn:
        conn.exec_driver_sql('DROP DATABASE IF EXISTS kubedag_controller_example WITH (FORCE)')
        conn.exec_driver_sql('CREATE DATABASE kubedag_controller_example')
    url = sa.make_url(postgres_url).set(database='kubedag_controller_example').render_as_string(hide_password=False)
    manifest = load_yaml(ROOT / 'examples' / 'supermarket' / 'dag.yaml')
    manifest['spec']['schedule'] = None  # one manual run, not the catch-up of every day since the start date
    k8s_api.create(manifest, NS)
    try:
        with RunningController(k8s_api, url):
            k8s_api.create(manual_run('supermarket-promotions', 'supermarket-manual', logicalDate='2026-11-01T00:00:00Z'))
            run = wait_phase(k8s_api, 'supermarket-manual', timeout=90)
        assert run['status']['phase'] == 'success', run['status']
        assert run['status']['counts']['success'] == 10
        pods = k8s_api.list('v1/pods', NS, label_selector=f'{names.LABEL_RUN}=supermarket-manual')
        assert len(pods) == 10 and all(p['status']['phase'] == 'Succeeded' for p in pods)
        assert all(p['spec']['containers'][0]['image'] == 'kubedag/supermarket-example:0.1.0' for p in pods)
        assert (example / 'out').is_dir() and any((example / 'out').rglob('*.csv'))
        assert _rows(url, "select dag_id, state from dag_run") == [('default/supermarket-promotions', 'success')]
        assert _rows(url, "select count(*) from task_instance_history where state = 'success'") == [(10,)]
    finally:
        admin.dispose()

"""Issue 13: one identity per run, (namespace, DAG, run id), held by one DAGRun object.

Several DAGRun objects mapped to the same run and shared one DB run: two ``kubectl create`` in the same second (the
default logical date had whole seconds), a ``runId`` reused, and a run id used again after ``kubedag runs delete``.
The history was overwritten, or a run reported ``success`` in 0.0 s having run nothing."""
from __future__ import annotations

from tests.controller.harness import (
    DAGRUNS, NS, RunningController, dag_manifest, manual_run, run_phase, wait_phase, wait_until)
from tests.controller.test_resilience import _rows


def _pods_of(api, run):
    return [p for p in api.list('v1/pods', NS) if p['metadata']['labels'].get('kubedag.io/run') == run]


def _condition(run):
    return next(c for c in run['status']['conditions'] if c['type'] == 'Ready')


def test_a_second_dagrun_with_a_run_id_in_use_fails_at_once_naming_the_first(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('nightly', [{'name': 'work', 'command': ['sleep', '1']}]))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('nightly', 'first', runId='the-run', logicalDate='2026-11-01T00:00:00Z'))
        wait_until(lambda: _pods_of(k8s_api, 'first'), what="the first run's pod")
        k8s_api.create(manual_run('nightly', 'second', runId='the-run', logicalDate='2026-11-02T00:00:00Z'))
        second = wait_phase(k8s_api, 'second')
        assert wait_phase(k8s_api, 'first')['status']['phase'] == 'success'
    assert second['status']['phase'] == 'failed'
    condition = _condition(second)
    assert (condition['status'], condition['reason']) == ('False', 'RunIdTaken')
    assert condition['message'].startswith('run id the-run of DAG nightly belongs to DAGRun first;')
    assert 'tasks' not in second['status'] and not _pods_of(k8s_api, 'second')
    events = [e for e in k8s_api.list('v1/events', NS) if e['involvedObject']['name'] == 'second']
    assert [e['reason'] for e in events] == ['RunIdTaken']
    assert _rows(sqlite_url, "select run_id, state, object_name, logical_date from dag_run") == [
        ('the-run', 'success', 'first', '2026-11-01 00:00:00.000000')]
    assert _rows(sqlite_url, "select count(*) from task_instance_history") == [(1,)]


def test_two_runs_created_in_the_same_second_without_a_date_get_distinct_run_ids(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('twice', [{'name': 'work', 'command': ['true']}]))
    with RunningController(k8s_api, sqlite_url):
        for name in ('twice-a', 'twice-b'):  # creationTimestamp has whole seconds: the same for both, mostly
            k8s_api.create(manual_run('twice', name))
        runs = [wait_phase(k8s_api, name) for name in ('twice-a', 'twice-b')]
    assert [r['status']['phase'] for r in runs] == ['success', 'success']
    dates = [r['spec']['logicalDate'] for r in runs]  # written by the controller, at microsecond precision
    assert dates[0] != dates[1] and all('.' in d for d in dates)
    rows = _rows(sqlite_url, "select run_id, object_name, state from dag_run order by object_name")
    assert [(name, state) for _, name, state in rows] == [('twice-a', 'success'), ('twice-b', 'success')]
    assert all(run_id.startswith('manual__') and '.' in run_id for run_id, _, _ in rows)
    assert _rows(sqlite_url, "select count(*) from task_instance_history where state = 'success'") == [(2,)]


def test_a_run_id_used_again_after_its_dagrun_was_deleted_runs_afresh_and_keeps_the_old_history(
        k8s_api, fake_kubelet, sqlite_url):
    """Airflow deletes the dag_run row, so triggering the same run id again makes a fresh run; kubedag keeps the
    deleted run's history, under ``<run id>~deleted-<uid>``, and the new object runs every task again."""
    k8s_api.create(dag_manifest('again', [{'name': 'work', 'command': ['echo', 'hello']}]))
    with RunningController(k8s_api, sqlite_url):
        first = k8s_api.create(manual_run('again', 'again-1', runId='rerun', logicalDate='2026-11-01T00:00:00Z'))
        assert wait_phase(k8s_api, 'again-1')['status']['phase'] == 'success'
        k8s_api.delete(DAGRUNS, 'again-1', NS)
        wait_until(lambda: k8s_api.get(DAGRUNS, 'again-1', NS) is None, what='the DAGRun deleted')
        k8s_api.create(manual_run('again', 'again-1', runId='rerun', logicalDate='2026-11-02T00:00:00Z'))
        wait_until(lambda: run_phase(k8s_api, 'again-1') in ('success', 'failed'), what='the new run finished')
        second = k8s_api.get(DAGRUNS, 'again-1', NS)
    assert second['status']['phase'] == 'success'
    old = f"rerun~deleted-{first['metadata']['uid'][:8]}"
    assert _rows(sqlite_url, "select run_id, state, logical_date from dag_run order by run_id") == [
        ('rerun', 'success', '2026-11-02 00:00:00.000000'), (old, 'success', '2026-11-01 00:00:00.000000')]
    tries = _rows(sqlite_url, "select run_id, try_number, state from task_instance_history order by run_id")
    assert tries == [('rerun', 1, 'success'), (old, 1, 'success')]  # the new run ran its task: its own try
    posts = [r for r in k8s_api.handler['post'] if r.url.path.endswith('/pods')]
    assert len(posts) == 2
    events = [e for e in k8s_api.list('v1/events', NS) if e['reason'] == 'RunIdReused']
    assert len(events) == 1 and f'kept in the metadata DB as run {old}' in events[0]['message']

"""DAG custom resources: validation into status conditions, and scheduled runs with Airflow's timetable."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kubedag.core import naming as names
from tests.controller.harness import (
    DAGRUNS, DAGS, NS, RunningController, dag_manifest, manual_run, wait_phase, wait_until,
)


def _midnight(days_ago: int) -> datetime:
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def _runs(api, dag):
    return sorted(api.list(DAGRUNS, NS, label_selector=f'{names.LABEL_DAG}={dag}'),
                  key=lambda r: r['spec']['logicalDate'])


def _ready(api, dag):
    status = (api.get(DAGS, dag, NS) or {}).get('status') or {}
    return next((c for c in status.get('conditions', []) if c['type'] == 'Ready'), None)


def test_catchup_creates_a_run_per_missed_interval_with_airflow_run_ids(k8s_api, fake_kubelet, sqlite_url):
    start = _midnight(3)
    k8s_api.create(dag_manifest('daily', [{'name': 'hello', 'command': ['echo', '{{ ds }} {{ data_interval_end }}']}],
                                schedule='@daily', startDate=start.isoformat(), catchup=True))
    with RunningController(k8s_api, sqlite_url):
        runs = wait_until(lambda: len(_runs(k8s_api, 'daily')) == 3 and _runs(k8s_api, 'daily'), what='3 runs')
        for run in runs:
            wait_phase(k8s_api, run['metadata']['name'])
        dag = wait_until(lambda: (k8s_api.get(DAGS, 'daily', NS)['status'].get('lastRun') or {}).get('phase') == 'success'
                         and k8s_api.get(DAGS, 'daily', NS), what='lastRun success')
    expected = [start + timedelta(days=i) for i in range(3)]
    assert [r['spec']['runId'] for r in runs] == [f'scheduled__{d.isoformat()}' for d in expected]
    assert [r['metadata']['name'] for r in runs] == [names.run_name('daily', f'scheduled__{d.isoformat()}') for d in expected]
    assert all(r['spec']['runType'] == 'scheduled' for r in runs)
    assert runs[0]['metadata']['ownerReferences'][0]['kind'] == 'DAG'
    # the first run saw its own data interval, as Airflow renders {{ ds }} and {{ data_interval_end }}
    log = fake_kubelet.logs(NS, names.pod_name('daily', runs[0]['metadata']['name'], 'hello', 1))
    assert log.split()[0] == expected[0].date().isoformat()
    assert log.split()[1].startswith(expected[1].date().isoformat())
    status = dag['status']
    assert status['nextRunAt'].startswith((start + timedelta(days=4)).date().isoformat())
    assert status['lastRun']['runId'] == f'scheduled__{expected[-1].isoformat()}'
    assert _ready(k8s_api, 'daily')['status'] == 'True'
    assert status['observedGeneration'] == dag['metadata']['generation']


def test_without_catchup_only_the_latest_interval_runs(k8s_api, fake_kubelet, sqlite_url):
    start = _midnight(5)
    k8s_api.create(dag_manifest('nocatchup', [{'name': 'hello', 'command': ['true']}],
                                schedule='@daily', startDate=start.isoformat(), catchup=False))
    with RunningController(k8s_api, sqlite_url):
        runs = wait_until(lambda: _runs(k8s_api, 'nocatchup'), what='a run')
        wait_phase(k8s_api, runs[0]['metadata']['name'])
    runs = _runs(k8s_api, 'nocatchup')
    assert [r['spec']['logicalDate'] for r in runs] == [_midnight(1).isoformat()]


def test_max_active_runs_makes_later_intervals_wait(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('serial', [{'name': 'work', 'command': ['sleep', '0.3']}],
                                schedule='@daily', startDate=_midnight(3).isoformat(), maxActiveRuns=1))
    seen_active = []
    with RunningController(k8s_api, sqlite_url):
        def all_done():
            runs = _runs(k8s_api, 'serial')
            seen_active.append(sum(1 for r in runs if (r.get('status') or {}).get('phase') not in ('success', 'failed')))
            return len(runs) == 3 and all((r.get('status') or {}).get('phase') == 'success' for r in runs)
        wait_until(all_done, timeout=60, what='3 successful runs')
    assert max(seen_active) <= 1  # never two runs active at once
    events = k8s_api.list('v1/events', NS)
    assert any(e['reason'] == 'MaxActiveRunsReached' and e['involvedObject']['name'] == 'serial' for e in events)
    assert sum(1 for e in events if e['reason'] == 'RunCreated') == 3


def test_a_paused_dag_creates_no_runs_until_unpaused(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(dag_manifest('sleepy', [{'name': 'hello', 'command': ['true']}],
                                schedule='@daily', startDate=_midnight(2).isoformat(), paused=True))
    with RunningController(k8s_api, sqlite_url):
        dag = wait_until(lambda: (k8s_api.get(DAGS, 'sleepy', NS).get('status') or {}).get('paused') is True
                         and k8s_api.get(DAGS, 'sleepy', NS), what='paused status')
        assert 'nextRunAt' not in dag['status'] and _ready(k8s_api, 'sleepy')['reason'] == 'Paused'
        assert _runs(k8s_api, 'sleepy') == []
        k8s_api.patch(DAGS, 'sleepy', {'spec': {'paused': False}}, NS)
        wait_until(lambda: len(_runs(k8s_api, 'sleepy')) == 2, what='2 runs after unpausing')
        for run in _runs(k8s_api, 'sleepy'):
            wait_phase(k8s_api, run['metadata']['name'])


def test_an_invalid_dag_gets_ready_false_while_others_keep_running(k8s_api, fake_kubelet, sqlite_url):
    bad = dag_manifest('broken', [
        {'name': 'a', 'command': ['true'], 'dependsOn': ['b']},
        {'name': 'b', 'command': ['true'], 'dependsOn': ['a']},
    ])
    k8s_api.create(bad)
    k8s_api.create(dag_manifest('fine', [{'name': 'ok', 'command': ['true']}]))
    with RunningController(k8s_api, sqlite_url):
        condition = wait_until(lambda: _ready(k8s_api, 'broken'), what='Ready condition')
        k8s_api.create(manual_run('fine', 'fine-1'))
        k8s_api.create(manual_run('broken', 'broken-1'))
        assert wait_phase(k8s_api, 'fine-1')['status']['phase'] == 'success'
        waiting = wait_until(lambda: ((k8s_api.get(DAGRUNS, 'broken-1', NS).get('status') or {}).get('conditions')),
                             what='the run of the invalid DAG says why it waits')
        # fixing the DAG lets its waiting run go
        k8s_api.patch(DAGS, 'broken', {'spec': {'tasks': [{'name': 'a', 'command': ['true']}]}}, NS)
        assert wait_phase(k8s_api, 'broken-1')['status']['phase'] == 'success'
        fixed = wait_until(lambda: _ready(k8s_api, 'broken')['status'] == 'True' and _ready(k8s_api, 'broken'),
                           what='Ready after the fix')
    assert condition['status'] == 'False' and condition['reason'] == 'Invalid'
    assert 'cycle' in condition['message'] and 'a -> b -> a' in condition['message'].replace('b -> a -> b', 'a -> b -> a')
    assert 'invalid' in waiting[0]['message']
    events = k8s_api.list('v1/events', NS)
    assert any(e['reason'] == 'Invalid' and e['type'] == 'Warning' and e['involvedObject']['name'] == 'broken' for e in events)
    assert fixed['observedGeneration'] == k8s_api.get(DAGS, 'broken', NS)['metadata']['generation']


def test_a_task_without_an_image_makes_the_dag_invalid_on_kubernetes(k8s_api, fake_kubelet, sqlite_url):
    manifest = dag_manifest('noimage', [{'name': 'a', 'command': ['true']}])
    del manifest['spec']['defaults']['image']
    k8s_api.create(manifest)
    with RunningController(k8s_api, sqlite_url):
        condition = wait_until(lambda: _ready(k8s_api, 'noimage'), what='Ready condition')
    assert condition['status'] == 'False' and 'image' in condition['message']

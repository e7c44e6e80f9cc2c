"""Issue 13, bad input: what the controller says about a render too large, a missing or too small pool, and a DAG
with typos or a bad quantity (README, "What kubedag says about bad input")."""
from __future__ import annotations

from tests.controller.harness import DAGRUNS, NS, RunningController, dag_manifest, manual_run, wait_phase, wait_until
from tests.controller.test_resilience import _rows


def test_a_command_rendered_over_the_cap_fails_its_try_before_any_pod_is_created(k8s_api, fake_kubelet, sqlite_url):
    """``{{ 'x' * 100000000 }}`` made a pod the API server refused (413) after taking the controller's memory; a
    300,000-character argument made a pod of 300 KB. The try now fails with the field and the size."""
    k8s_api.create(dag_manifest('render', [
        {'name': 'huge', 'command': ['echo'], 'args': ["{{ 'x' * 100000000 }}"]},
        {'name': 'large', 'command': ['echo'], 'args': ['ok', "{{ 'é' * 200000 }}"]},
        {'name': 'fine', 'command': ['echo'], 'args': ["{{ 'z' * 1000 }}"]}]))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('render', 'render-1'))
        run = wait_phase(k8s_api, 'render-1')
    assert run['status']['phase'] == 'failed'
    assert run['status']['tasks']['huge']['s'] == 'failed' and run['status']['tasks']['large']['s'] == 'failed'
    assert run['status']['tasks']['fine']['s'] == 'success'
    pods = {p['metadata']['labels']['kubedag.io/task'] for p in k8s_api.list('v1/pods', NS)}
    assert pods == {'fine'}
    reasons = dict(_rows(sqlite_url, "select task_id, reason from task_instance_history where task_id != 'fine'"))
    assert reasons['huge'].startswith('template error in args[0]: repeating 1 characters or items 100000000 times '
                                      'is over the cap of 262144')
    assert reasons['large'] == ('template error in args[1]: rendered to 400000 bytes, over the cap of 262144 bytes '
                                '(256 KiB) for a templated field')
    assert k8s_api.get(DAGRUNS, 'render-1', NS)['status']['phase'] == 'failed'


def _pool(name, slots):
    return {'apiVersion': 'kubedag.io/v1alpha1', 'kind': 'Pool', 'metadata': {'name': name, 'namespace': NS},
            'spec': {'slots': slots}}


def test_a_task_on_a_missing_or_too_small_pool_says_so_and_runs_once_the_pool_is_there(k8s_api, fake_kubelet,
                                                                                       sqlite_url):
    """The run sat ``running`` forever with no reason. As Airflow, the task instance stays scheduled (the pool may
    come), but now with its reason in the DB, a ``PoolUnavailable`` condition on the run and a Warning event."""
    k8s_api.create(_pool('small', 3))
    k8s_api.create(dag_manifest('pooled', [{'name': 'fine', 'command': ['true']},
                                           {'name': 'gpu', 'command': ['true'], 'pool': 'gpus'},
                                           {'name': 'wide', 'command': ['true'], 'pool': 'small', 'poolSlots': 5}]))
    message = ('task gpu: pool gpus does not exist; task wide: needs 5 slots, pool small has 3 '
               '(it waits until the Pool exists with enough slots)')

    def condition():
        run = k8s_api.get(DAGRUNS, 'pooled-1', NS)
        return next((c for c in (run.get('status') or {}).get('conditions') or [] if c['reason'] == 'PoolUnavailable'),
                    None)

    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('pooled', 'pooled-1'))
        ready = wait_until(condition, what='a PoolUnavailable condition')
        assert (ready['type'], ready['status'], ready['message']) == ('Ready', 'False', message)
        wait_until(lambda: _rows(sqlite_url, "select state from task_instance where task_id = 'fine'") == [('success',)],
                   what='the task on the default pool done')
        assert k8s_api.get(DAGRUNS, 'pooled-1', NS)['status']['phase'] == 'running'
        assert dict(_rows(sqlite_url, "select task_id, reason from task_instance where task_id != 'fine'")) == {
            'gpu': 'pool gpus does not exist', 'wide': 'needs 5 slots, pool small has 3'}
        k8s_api.create(_pool('gpus', 1))
        k8s_api.patch('kubedag.io/v1alpha1/pools', 'small', {'spec': {'slots': 5}}, NS)
        run = wait_phase(k8s_api, 'pooled-1')
    assert run['status']['phase'] == 'success' and not run['status'].get('conditions')
    events = [e['message'] for e in k8s_api.list('v1/events', NS) if e['reason'] == 'PoolUnavailable']
    # one event when the condition appears, another if it changed (the gpus Pool came before small grew)
    assert message in events
    assert set(events) <= {message, 'task wide: needs 5 slots, pool small has 3 (it waits until the Pool exists with '
                                    'enough slots)'}


def _applied(obj):
    """``obj`` as ``kubectl apply --validate=false`` stores it: the manifest as written in the last-applied
    annotation (the API server prunes the fields its schema does not declare from the object itself)."""
    import json

    meta = obj['metadata']
    meta['annotations'] = {'kubectl.kubernetes.io/last-applied-configuration': json.dumps(obj, sort_keys=True)}
    return obj


def _dag_ready(api, name):
    from tests.controller.harness import DAGS

    dag = api.get(DAGS, name, NS)
    return next((c for c in (dag.get('status') or {}).get('conditions') or [] if c['type'] == 'Ready'), None)


def test_typos_the_api_server_dropped_and_a_bad_quantity_make_the_dag_invalid_naming_the_fields(
        k8s_api, fake_kubelet, sqlite_url):
    """``schedul`` and ``dependson`` were pruned silently (a DAG that never ran, a task that did not wait), where a
    strict API server refuses them; ``cpu: lots`` was not checked."""
    typos = dag_manifest('typos', [{'name': 'a', 'command': ['true']},
                                   {'name': 'b', 'command': ['true'], 'dependson': ['a']}], schedul='@daily')
    k8s_api.create(_applied(typos))
    stored = k8s_api.get('kubedag.io/v1alpha1/dags', 'typos', NS)
    assert 'schedul' not in stored['spec'] and 'dependson' not in stored['spec']['tasks'][1]  # pruned
    k8s_api.create(dag_manifest('greedy', [{'name': 'a', 'command': ['true'], 'resources': {'requests': {'cpu': 'lots'}}}]))
    k8s_api.create(_applied(dag_manifest('fine', [{'name': 'a', 'command': ['true']}])))
    with RunningController(k8s_api, sqlite_url):
        typo, greedy, fine = (wait_until(lambda n=n: _dag_ready(k8s_api, n), what=f'{n} validated')
                              for n in ('typos', 'greedy', 'fine'))
        k8s_api.create(_applied(manual_run('fine', 'fine-1', runid='mine')))
        run = wait_phase(k8s_api, 'fine-1')
    assert (typo['status'], typo['reason']) == ('False', 'Invalid')
    assert typo['message'] == (
        "spec.tasks[1].dependson: unknown field (did you mean 'dependsOn'?); dropped by the API server, which does "
        "not know it; spec.schedul: unknown field (did you mean 'schedule'?); dropped by the API server, which does "
        "not know it")
    assert (greedy['status'], greedy['reason'], greedy['message']) == (
        'False', 'Invalid',
        "spec.tasks[0].resources.requests.cpu: 'lots' is not a Kubernetes quantity (e.g. 500m, 2, 1.5, 512Mi, 1Gi)")
    assert (fine['status'], fine['reason']) == ('True', 'Scheduled')
    events = {e['involvedObject']['name']: e['message'] for e in k8s_api.list('v1/events', NS) if e['reason'] == 'Invalid'}
    assert "spec.schedul: unknown field (did you mean 'schedule'?)" in events['typos']
    assert events['greedy'].startswith("invalid DAG: spec.tasks[0].resources.requests.cpu: 'lots'")
    assert run['status']['phase'] == 'failed' and not k8s_api.list('v1/pods', NS)
    condition = next(c for c in run['status']['conditions'] if c['type'] == 'Ready')
    assert (condition['reason'], condition['message']) == (
        'InvalidSpec', "spec.runid: unknown field (did you mean 'runId'?); dropped by the API server, which does not "
                       "know it")


def test_a_dagrun_spec_the_models_refuse_fails_with_the_field_and_the_rule(k8s_api, fake_kubelet, sqlite_url):
    """The message was pydantic's text (``1 validation error for DAGRunSpec ... [type=value_error, ...]``, a URL)."""
    k8s_api.create(dag_manifest('spans', [{'name': 'a', 'command': ['true']}]))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('spans', 'spans-1', dataIntervalStart='2026-11-02T00:00:00Z',
                                  dataIntervalEnd='2026-11-01T00:00:00Z'))
        run = wait_phase(k8s_api, 'spans-1')
    condition = next(c for c in run['status']['conditions'] if c['type'] == 'Ready')
    assert (run['status']['phase'], condition['reason'], condition['message']) == (
        'failed', 'InvalidSpec',
        'spec: dataIntervalEnd 2026-11-01T00:00:00+00:00 is before dataIntervalStart 2026-11-02T00:00:00+00:00')
    assert not k8s_api.list('v1/pods', NS)

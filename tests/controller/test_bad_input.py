"""Issue 13, bad input: what the controller says about a render too large, a missing or too small pool, and a DAG
with typos or a bad quantity (README, "What kubedag says about bad input")."""
from __future__ import annotations

from tests.controller.harness import DAGRUNS, NS, RunningController, dag_manifest, manual_run, wait_phase
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

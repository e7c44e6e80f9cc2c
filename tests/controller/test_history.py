"""Issue 13, a history that converges: the controller makes the metadata DB agree with a finished run's status and
its kept pods, at start and every ``history_resync``, and never the other way round."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from tests.controller.harness import DAGRUNS, NS, RunningController, dag_manifest, manual_run, wait_phase, wait_until
from tests.controller.test_resilience import _rows

TI_ROWS = "select task_id, state, try_number, exit_code, end_date is not null from task_instance order by task_id"
TRY_ROWS = ("select task_id, try_number, state, exit_code, end_date is not null, log from task_instance_history "
            "order by task_id, try_number")
EXPECTED_TIS = [('first', 'success', 1, 0, 1), ('second', 'failed', 1, 3, 1)]


def _pair(first_for: float = 0) -> dict:
    """``first`` echoes ``one`` (then sleeps ``first_for`` seconds, for a test that must see it running);
    ``second`` echoes ``two`` and fails with exit code 3."""
    sleep = f'; sleep {first_for}' if first_for else ''
    return dag_manifest('pair', [{'name': 'first', 'command': ['sh', '-c', f'echo one{sleep}']},
                                 {'name': 'second', 'command': ['sh', '-c', 'echo two; exit 3'], 'dependsOn': ['first']}])


def _execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def _converged(url: str) -> bool:
    tries = _rows(url, TRY_ROWS)
    return (_rows(url, "select state from dag_run") == [('failed',)] and _rows(url, TI_ROWS) == EXPECTED_TIS
            and [t[:5] for t in tries] == [('first', 1, 'success', 0, 1), ('second', 1, 'failed', 3, 1)]
            and all(t[5] for t in tries))


def _run_pair_to_its_end(k8s_api, url: str) -> None:
    """Under a running controller: create the DAGRun ``pair-1`` and wait until it failed and its history is in the DB."""
    k8s_api.create(manual_run('pair', 'pair-1'))
    assert wait_phase(k8s_api, 'pair-1')['status']['phase'] == 'failed'
    wait_until(lambda: _converged(url), what='the history written')


def test_rows_lost_or_corrupted_while_the_controller_was_down_are_corrected_at_start(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(_pair())
    controller = RunningController(k8s_api, sqlite_url)
    with controller:
        _run_pair_to_its_end(k8s_api, sqlite_url)
    _execute(sqlite_url,  # a DB behind its status: the run and a task still running, a try and a log lost
             "update dag_run set state = 'running', end_date = null",
             "update task_instance set state = 'running', end_date = null, exit_code = null where task_id = 'second'",
             "update task_instance_history set log = null where task_id = 'first'",
             "delete from task_instance_history where task_id = 'second'")
    with controller:
        wait_until(lambda: _converged(sqlite_url), what='the DB history corrected from the status and pods')
        assert wait_phase(k8s_api, 'pair-1')['status']['phase'] == 'failed'  # the status is left as it was
    logs = dict((t[0], t[5]) for t in _rows(sqlite_url, TRY_ROWS))
    assert 'one' in logs['first'] and 'two' in logs['second']  # read again from the kept pods


def test_a_history_lost_while_the_controller_was_down_and_its_pods_gone_converges_with_a_log_unavailable_reason(
        k8s_api, fake_kubelet, sqlite_url):
    """The DB lost a finished run's end and its tries' logs (a restore from an older backup, a DB outage and a kill) while the
    controller was down, and the pods are gone with their logs: after the restart the DB has the status's states
    and end times again, and each try whose log can no longer be read says so ("log unavailable")."""
    k8s_api.create(_pair())
    controller = RunningController(k8s_api, sqlite_url)
    with controller:
        _run_pair_to_its_end(k8s_api, sqlite_url)
    _execute(sqlite_url,
             "update dag_run set state = 'running', end_date = null",
             "update task_instance set state = 'running', end_date = null where task_id = 'second'",
             "update task_instance_history set log = null")
    for pod in k8s_api.list('v1/pods', NS):  # gone while the controller was down, with their logs
        k8s_api.delete('v1/pods', pod['metadata']['name'], NS, gracePeriodSeconds=0)
    wait_until(lambda: not k8s_api.list('v1/pods', NS), what='pods gone')
    with controller:
        wait_until(lambda: _rows(sqlite_url, TI_ROWS) == EXPECTED_TIS
                   and _rows(sqlite_url, "select state from dag_run") == [('failed',)]
                   and all(t[5] for t in _rows(sqlite_url, TRY_ROWS)),
                   what='the DB history corrected')
        tries = _rows(sqlite_url, TRY_ROWS)
        assert [t[:3] for t in tries] == [('first', 1, 'success'), ('second', 1, 'failed')]
        assert all(t[4] for t in tries)  # every finished try has its end time
        assert all('log unavailable' in t[5] for t in tries), tries
        assert wait_phase(k8s_api, 'pair-1')['status']['phase'] == 'failed'  # the status is left as it was


def test_rows_corrupted_while_the_controller_runs_are_corrected_by_the_periodic_pass(k8s_api, fake_kubelet, sqlite_url):
    k8s_api.create(_pair())
    with RunningController(k8s_api, sqlite_url, history_resync=timedelta(seconds=1)):
        _run_pair_to_its_end(k8s_api, sqlite_url)
        _execute(sqlite_url, "update task_instance set state = 'running', end_date = null where task_id = 'first'",
                 "update task_instance_history set state = 'running', log = null where task_id = 'second'")
        wait_until(lambda: _converged(sqlite_url), what='the DB history corrected by the periodic pass')


def test_a_run_whose_tasks_all_ended_while_its_status_lagged_finishes_after_a_restart(k8s_api, fake_kubelet, sqlite_url):
    """A status behind the DB (its writes lost to a 429 burst and a kill, as the chaos suite produces): the DB has
    every task instance finished while the status says ``queued``; after the restart the run moves on from the DB
    to its final phase, with no pod event left to wake it, and the history still agrees."""
    k8s_api.create(_pair())
    controller = RunningController(k8s_api, sqlite_url)
    with controller:
        _run_pair_to_its_end(k8s_api, sqlite_url)
    k8s_api.patch(DAGRUNS, 'pair-1', {'status': {'phase': 'queued', 'startedAt': None, 'finishedAt': None}}, NS,
                  subresource='status', content_type='application/merge-patch+json')
    with controller:
        assert wait_phase(k8s_api, 'pair-1', timeout=20)['status']['phase'] == 'failed'
        wait_until(lambda: _converged(sqlite_url), what='the DB history agreeing')


def test_a_launched_try_records_its_rendered_fields_with_the_secret_masked(k8s_api, fake_kubelet, sqlite_url):
    import base64
    import json

    token = 's3cr3t-token-value'
    k8s_api.create({'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 'creds', 'namespace': NS},
                    'data': {'api_token': base64.b64encode(token.encode()).decode()}})
    k8s_api.create(dag_manifest('rendering', [
        {'name': 'show', 'command': ['sh', '-c'], 'args': ['echo who={{ params.who }}'],
         'env': [{'name': 'CALL_WITH', 'value': 'Bearer {{ var.value.api_token }}'}]},
    ], params={'who': 'alice'}, variablesFrom=[{'secretRef': {'name': 'creds'}}]))
    with RunningController(k8s_api, sqlite_url):
        k8s_api.create(manual_run('rendering', 'rendering-1'))
        assert wait_phase(k8s_api, 'rendering-1')['status']['phase'] == 'success'
        wait_until(lambda: _rows(sqlite_url, "select state from task_instance_history") == [('success',)],
                   what='the try recorded')
    [(text,)] = _rows(sqlite_url, "select rendered_fields from task_instance_history")
    rendered = json.loads(text)
    assert rendered['command'] == ['sh', '-c']
    assert rendered['args'] == ['echo who=alice']
    assert rendered['env']['CALL_WITH'] == 'Bearer ***'
    assert token not in text


def test_a_template_error_whose_db_write_was_lost_to_a_kill_is_named_after_the_restart(k8s_api, fake_kubelet, sqlite_url):
    """Issue 13 (the chaos corpus's ``template-*`` cases): a try that failed with no pod (its template does not
    render) and a controller killed after the status write and before the DB write and the events. The restarted
    controller records the failure from the status with the template error as its reason, and posts an Event naming
    it; a secret the error shows is masked in the status, the DB and the Event."""
    import base64

    token = 's3cr3t-token-value'
    k8s_api.create({'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 'creds', 'namespace': NS},
                    'data': {'api_token': base64.b64encode(token.encode()).decode()}})
    k8s_api.create(dag_manifest('broken', [
        {'name': 'undefined', 'command': ['sh', '-c', 'echo {{ undefined_0.x }}']},
        {'name': 'secretive', 'command': ['sh', '-c', 'echo {{ var.value[var.value.api_token] }}']},
    ], variablesFrom=[{'secretRef': {'name': 'creds'}}]))
    controller = RunningController(k8s_api, sqlite_url)
    with controller:
        k8s_api.create(manual_run('broken', 'broken-1'))
        assert wait_phase(k8s_api, 'broken-1')['status']['phase'] == 'failed'
        wait_until(lambda: _rows(sqlite_url, "select count(*) from task_instance_history where state = 'failed'") == [(2,)],
                   what='the failures recorded')
    entries = k8s_api.get(DAGRUNS, 'broken-1', NS)['status']['tasks']
    assert 'undefined_0' in entries['undefined']['r'] and '***' in entries['secretive']['r']
    assert token not in str(entries)
    _execute(sqlite_url,  # the pass's DB write never landed: the run and its tries as the pass before left them
             "update dag_run set state = 'running', end_date = null",
             "delete from task_instance_history", "delete from task_instance")
    for event in k8s_api.list('v1/events', NS):  # nor did its events
        k8s_api.delete('v1/events', event['metadata']['name'], NS)
    with controller:
        wait_until(lambda: _rows(sqlite_url, "select count(*) from task_instance where state = 'failed'") == [(2,)],
                   what='the failures recorded from the status')
        events = wait_until(lambda: [e['message'] for e in k8s_api.list('v1/events', NS) if e['reason'] == 'TaskFailed'],
                            what='the failures posted as an Event')
    reasons = dict(_rows(sqlite_url, "select task_id, reason from task_instance"))
    tries = dict(_rows(sqlite_url, "select task_id, reason from task_instance_history"))
    assert 'undefined_0' in reasons['undefined'] and 'undefined_0' in tries['undefined']
    assert 'no variable' in reasons['secretive'] and '***' in tries['secretive']
    assert len(events) == 1 and 'undefined_0' in events[0] and 'no variable' in events[0]
    assert token not in str((reasons, tries, events))

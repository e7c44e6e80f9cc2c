"""kubedag.app.convergence: the DB write that makes a finished run's history agree with its status and pods."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kubedag.app.convergence import LOG_UNAVAILABLE, RECONCILED, converge_history
from kubedag.app.ports import RunHistory, TryHistory
from kubedag.core import engine, runpass
from kubedag.core.states import RunType
from kubedag.core.states import DagRunState
from kubedag.core.states import TaskInstanceState as S

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _run(state: DagRunState) -> engine.DagRun:
    return engine.DagRun('d', 'r', RunType.MANUAL, T0, T0, T0, state=state, start_date=T0,
                         end_date=T0 + timedelta(minutes=5) if state in (DagRunState.SUCCESS, DagRunState.FAILED) else None)


STATUS = {'a': engine.TaskInstance('a', S.SUCCESS, 1), 'b': engine.TaskInstance('b', S.FAILED, 2)}


def test_a_db_behind_the_status_gets_final_states_end_times_exit_codes_and_logs():
    history = RunHistory('running', None, {'a': engine.TaskInstance('a', S.RUNNING, 1, start_date=T0)},
                         {('a', 1): TryHistory('running', T0), ('b', 1): TryHistory('failed', T0, T0, 1, True)})
    pod_b = runpass.TryObservation('failed', T0 + timedelta(minutes=1), T0 + timedelta(minutes=2), exit_code=3,
                                   reason='exit code 3')
    found = converge_history(_run(DagRunState.FAILED), STATUS, history, {('b', 2): pod_b}, pod_name='the pod')
    write = found.write
    assert write is not None and write.run.state == DagRunState.FAILED
    tis = {ti.task_id: ti for ti in write.tis}
    assert (tis['a'].state, tis['a'].end_date) == (S.SUCCESS, T0 + timedelta(minutes=5))  # the run's end: no pod kept
    assert (tis['b'].state, tis['b'].try_number, tis['b'].exit_code, tis['b'].end_date) == (
        S.FAILED, 2, 3, T0 + timedelta(minutes=2))
    tries = {(t.task_id, t.try_number): t for t in write.tries}
    assert set(tries) == {('a', 1), ('b', 2)}  # b's first try was recorded with its outcome already
    assert (tries['a', 1].state, tries['a', 1].reason) == (S.SUCCESS, RECONCILED)
    assert (tries['b', 2].state, tries['b', 2].exit_code) == (S.FAILED, 3)
    assert write.logs == {('a', 1): LOG_UNAVAILABLE.format(why='the pod of try 1 was gone before its log was archived')}
    assert found.logs_to_read == {('b', 2)}  # its pod is kept: the caller reads its log


def test_a_db_that_agrees_needs_no_write_and_an_unfinished_run_is_left_to_its_passes():
    end = T0 + timedelta(minutes=5)
    history = RunHistory('failed', end, {'a': engine.TaskInstance('a', S.SUCCESS, 1, T0, end, exit_code=0),
                                         'b': engine.TaskInstance('b', S.FAILED, 2, T0, end, exit_code=3)},
                         {('a', 1): TryHistory('success', T0, end, 0, True), ('b', 1): TryHistory('failed', T0, T0, 1, True),
                          ('b', 2): TryHistory('failed', T0, end, 3, True)})
    status = {'a': engine.TaskInstance('a', S.SUCCESS, 1), 'b': engine.TaskInstance('b', S.FAILED, 2)}
    assert converge_history(_run(DagRunState.FAILED), status, history, {}).write is None
    assert converge_history(_run(DagRunState.RUNNING), status, RunHistory(None), {}).write is None


def test_a_failure_the_db_missed_takes_its_reason_from_the_status_and_is_posted_once():
    """A try that failed with no pod (a template error) and a controller killed after the status write: the DB has
    the try queued (``b``) or nothing (``c``); the status entry's reason is the DB's, and one Warning names both.
    A failure whose reason the status lacks (an older controller's status) is recorded as reconciled, unnamed."""
    why = "template error in command[2]: 'undefined_0' is undefined"
    status = {'a': engine.TaskInstance('a', S.FAILED, 1),
              'b': engine.TaskInstance('b', S.FAILED, 1, reason=why),
              'c': engine.TaskInstance('c', S.FAILED, 2, reason='pool nope does not exist')}
    history = RunHistory('running', None, {'b': engine.TaskInstance('b', S.QUEUED, 1, reason='waiting')},
                         {('b', 1): TryHistory('queued', None)})
    found = converge_history(_run(DagRunState.FAILED), status, history, {})
    assert found.write is not None
    tis = {ti.task_id: ti.reason for ti in found.write.tis}
    tries = {t.task_id: t.reason for t in found.write.tries}
    assert tis == {'a': RECONCILED, 'b': why, 'c': 'pool nope does not exist'}
    assert tries == tis
    [event] = found.events
    assert (event.kind, event.reason) == ('Warning', 'TaskFailed')
    assert f"task b (try 1): {why}" in event.message and 'task c (try 2): pool nope' in event.message
    assert 'task a' not in event.message
    recorded = RunHistory('failed', found.write.run.end_date, {ti.task_id: ti for ti in found.write.tis},
                          {(t.task_id, t.try_number): TryHistory(str(t.state), t.start_date, t.end_date, t.exit_code, True)
                           for t in found.write.tries})
    again = converge_history(_run(DagRunState.FAILED), status, recorded, {})
    assert again.events == ()  # the DB has them now: not posted again


def test_the_db_reason_of_a_failure_it_recorded_is_kept_over_the_status_cut():
    full = "exit code 1: " + "x" * 300
    history = RunHistory('running', None, {'a': engine.TaskInstance('a', S.FAILED, 1, T0, T0, reason=full, exit_code=1)}, {})
    found = converge_history(_run(DagRunState.FAILED), {'a': engine.TaskInstance('a', S.FAILED, 1, reason=full[:199] + '…')},
                             history, {})
    assert found.tis['a'].reason == full and found.events == ()


def test_a_kept_pods_reason_is_masked_in_the_db_rows_and_the_event():
    """A kept pod's message (an eviction's, say) can hold a secret's value: the rows and the Warning the
    convergence writes hide it, as the pass's own writes do."""
    pod = runpass.TryObservation('failed', T0, T0 + timedelta(minutes=1), exit_code=1,
                                 reason='Evicted: token s3cr3t-value leaked in a message')
    history = RunHistory('running', None, {}, {})
    found = converge_history(_run(DagRunState.FAILED), {'b': engine.TaskInstance('b', S.FAILED, 1)}, history,
                             {('b', 1): pod}, mask=lambda text: text.replace('s3cr3t-value', '***'))
    assert found.write is not None
    written = [ti.reason for ti in found.write.tis] + [t.reason for t in found.write.tries]
    assert written == ['Evicted: token *** leaked in a message'] * 2
    assert len(found.events) == 1 and '***' in found.events[0].message and 's3cr3t' not in found.events[0].message

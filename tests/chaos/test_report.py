"""How the chaos report reads the controller's log (no controller runs here)."""
from __future__ import annotations

from tests.chaos.harness import raised

CHAINED = '''2026-12-02 19:03:10,560 ERROR kubedag.controller: reconciling DAG chaos/c-chain-500 failed; retrying in 0.5s
Traceback (most recent call last):
  File "sqlalchemy/pool/base.py", line 1402, in _checkout
    raise exc.InvalidatePoolError()
sqlalchemy.exc.InvalidatePoolError: ()

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "psycopg/connection.py", line 126, in connect
    raise last_ex.with_traceback(None)
psycopg.OperationalError: connection failed: FATAL:  the database system is shutting down

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "kubedag/k8s/workqueue.py", line 140, in run_worker
    result = await reconcile(key)
sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection failed: the database system is shutting down
(Background on this error at: https://sqlalche.me/e/20/e3q8)
2026-12-02 19:03:11,000 ERROR kubedag.controller: reconciling DAGRun chaos/x failed; retrying in 0.5s
Traceback (most recent call last):
  File "kubedag/k8s/runs.py", line 1, in reconcile
    raise KeyError('x')
KeyError: 'x'
'''


def test_a_chain_of_exceptions_is_one_traceback_named_by_the_exception_raised():
    """The full chaos run counted a DB outage's chained traceback three times and judged it by its first cause
    (``InvalidatePoolError``, "not explained by an injected fault") instead of the ``OperationalError`` raised."""
    assert raised(CHAINED.splitlines()) == [
        'sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection failed: the database system is shutting down',
        "KeyError: 'x'",
    ]


def _judged(subject_status: dict, other_status: dict, db_runs: int) -> tuple[bool, str]:
    """The ``reused-runid`` case judged against a stand-in API and DB (the two DAGRuns' statuses, the DB's count of
    runs with that id)."""
    from tests.chaos.corpus import corpus
    from tests.chaos.harness import Chaos

    case = next(c for c in corpus(full=False) if c.name == 'reused-runid')
    statuses = {'c-reuse-2': subject_status, 'c-reuse-1': other_status}

    class Api:
        def get(self, plural, name, namespace):
            return {'metadata': {'name': name}, 'spec': {'dagName': 'c-reuse-dag'}, 'status': statuses[name]}

        def list(self, plural, namespace):
            return []

    class Db:
        def rows(self, sql):
            if 'count(*)' in sql:  # the runs with that id
                assert "dag_id = 'chaos/c-reuse-dag'" in sql and "run_id = 'same-id'" in sql, sql
                return [(db_runs,)]
            return []  # no task reasons

    chaos = Chaos.__new__(Chaos)
    chaos.api, chaos.db, chaos.rejected, chaos._events = Api(), Db(), {}, None
    _, ok, message = chaos._judge(case)
    return ok, message


def test_a_reused_run_id_that_went_to_the_second_object_holds_when_the_first_was_refused_naming_it():
    refused = {'phase': 'failed', 'conditions': [{'type': 'Ready', 'status': 'False', 'reason': 'RunIdTaken',
                                                  'message': 'run id same-id of DAG c-reuse-dag belongs to DAGRun c-reuse-2; ...'}]}
    assert _judged({'phase': 'success'}, refused, 1)[0]
    assert not _judged({'phase': 'success'}, {'phase': 'success'}, 1)[0]  # both ran: one identity broken
    assert not _judged({'phase': 'success'}, refused, 2)[0]
    named = {'phase': 'failed', 'conditions': [{'type': 'Ready', 'status': 'False', 'reason': 'RunIdTaken',
                                                'message': 'run id same-id of DAG c-reuse-dag belongs to DAGRun c-reuse-1; ...'}]}
    assert _judged(named, {'phase': 'success'}, 1)[0]  # the usual order: the second refused naming the first

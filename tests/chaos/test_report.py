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

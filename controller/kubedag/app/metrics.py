"""kubedag's Prometheus metrics, defined once for every process (the controller, the local scheduler, the API).

The metrics are in-process counters, gauges and histograms of ``prometheus_client``'s default registry
(:data:`prometheus_client.REGISTRY`), so whatever serves that registry (:mod:`kubedag.http.probes`' ``/metrics``,
the API's ``make_asgi_app()``) exports them all. Names are Prometheus-style (``kubedag_<subsystem>_<what>_<unit>``,
counters ending in ``_total``, durations in seconds); the README's "Metrics" table gives each its Airflow (statsd)
equivalent.

Adapters record what they see through the functions below, so both executors count the same things the same
way: :func:`record_pass` after a run's pass landed (run started/finished, task instances finished, queued ->
running latency), :func:`try_started` when a try's pod or process was created (successor latency),
:func:`set_pools` with the pools' usage, :func:`db_write` around a metadata DB write, and the plain metrics
(``WORKQUEUE_*``, ``RECONCILE_*``, ``KUBE_API_*``, ``NOTIFICATIONS``) where they happen.

Labels: ``dag_id`` is the metadata DB's DAG id (``<namespace>/<name>`` on a cluster, the DAG's id locally), as
the REST API names it; ``pool`` likewise. Durations are seconds; datetimes are UTC-aware.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from kubedag.app.memory import RunMemory
from kubedag.app.pools import PoolUsage
from kubedag.app.reconcile import RunPlan
from kubedag.core import engine
from kubedag.core.notify import task_transitions
from kubedag.core.spec.dag import DAG
from kubedag.core.states import DagRunState
from kubedag.core.states import TaskInstanceState as S
from kubedag.core.tries import TryRecord

RUN_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
"""Histogram buckets of DAG run durations, seconds (1 s to a day)."""
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
"""Histogram buckets of scheduling latencies, seconds (5 ms to 5 min)."""
TI_FINISHED_STATES = frozenset({S.SUCCESS, S.FAILED, S.UP_FOR_RETRY, S.UPSTREAM_FAILED, S.SKIPPED, S.REMOVED})
"""States in which a try or task instance counts as finished (Airflow's ``ti.finish.<dag>.<task>.<state>``,
which is also sent for ``up_for_retry``)."""

# -- DAG runs and task instances ---------------------------------------------------------------------------------
DAG_RUN_STARTED = Counter("kubedag_dag_run_started_total", "DAG runs that started running.", ["dag_id", "run_type"])
DAG_RUN_FINISHED = Counter("kubedag_dag_run_finished_total", "DAG runs that finished, by final state.",
                           ["dag_id", "run_type", "state"])
DAG_RUN_DURATION = Histogram("kubedag_dag_run_duration_seconds", "Duration of finished DAG runs (start to end).",
                             ["dag_id", "run_type", "state"], buckets=RUN_BUCKETS)
TI_STARTED = Counter("kubedag_task_instance_started_total", "Tries whose pod or process was created.", ["dag_id"])
TI_FINISHED = Counter("kubedag_task_instance_finished_total", "Tries that ended, by the task instance's state.",
                      ["dag_id", "state"])
TI_QUEUED_TO_RUNNING = Histogram(
    "kubedag_task_instance_queued_to_running_seconds",
    "From a try being queued (the pass that decided to start it) to its container or process starting.",
    ["dag_id"], buckets=LATENCY_BUCKETS)
TI_SUCCESSOR_LATENCY = Histogram(
    "kubedag_task_instance_successor_latency_seconds",
    "From the end of a task's last upstream task to its first try's pod or process being created.",
    ["dag_id"], buckets=LATENCY_BUCKETS)
SLA_MISSED = Counter("kubedag_sla_missed_total", "SLA misses reported (a task not done by its sla).",
                     ["dag_id", "task_id"])
NOTIFICATIONS = Counter("kubedag_notifications_total", "Notifications delivered (sent) or given up (failed).",
                        ["kind", "event", "result"])

# -- pools --------------------------------------------------------------------------------------------------------
POOL_OPEN = Gauge("kubedag_pool_open_slots", "Open slots of a pool (slots less queued and running).", ["pool"])
POOL_OCCUPIED = Gauge("kubedag_pool_occupied_slots", "Slots of a pool held by queued or running tries.", ["pool"])
POOL_QUEUED = Gauge("kubedag_pool_queued_slots", "Slots of a pool held by queued tries.", ["pool"])
POOL_RUNNING = Gauge("kubedag_pool_running_slots", "Slots of a pool held by running tries.", ["pool"])

# -- the controller's machinery ------------------------------------------------------------------------------------
WORKQUEUE_DEPTH = Gauge("kubedag_workqueue_depth", "Keys waiting in a work queue.", ["name"])
WORKQUEUE_ADDS = Counter("kubedag_workqueue_adds_total", "Keys queued (added while not already waiting).", ["name"])
WORKQUEUE_LATENCY = Histogram("kubedag_workqueue_queue_duration_seconds",
                              "How long a key waited in its work queue before a worker took it.", ["name"],
                              buckets=LATENCY_BUCKETS)
WORKQUEUE_RETRIES = Counter("kubedag_workqueue_retries_total", "Keys re-queued with backoff after a failure.", ["name"])
RECONCILE_TOTAL = Counter("kubedag_reconcile_total", "Reconciles, by resource and result (success, requeue, error).",
                          ["resource", "result"])
RECONCILE_ERRORS = Counter("kubedag_reconcile_errors_total", "Reconciles that raised (retried with backoff).",
                           ["resource"])
RECONCILE_DURATION = Histogram("kubedag_reconcile_duration_seconds", "Duration of one reconcile.", ["resource"],
                               buckets=LATENCY_BUCKETS)
KUBE_API_REQUESTS = Counter("kubedag_kube_api_requests_total",
                            "Requests of the controller to the Kubernetes API, by verb and HTTP code "
                            "(<error>: no answer).", ["verb", "code"])
KUBE_API_DURATION = Histogram("kubedag_kube_api_request_duration_seconds", "Duration of Kubernetes API requests.",
                              ["verb"], buckets=LATENCY_BUCKETS)
KUBE_API_IN_FLIGHT = Gauge("kubedag_kube_api_requests_in_flight",
                           "Kubernetes API requests holding one of their client's concurrency slots.", ["client"])
KUBE_API_QUEUED = Gauge("kubedag_kube_api_requests_queued",
                        "Kubernetes API calls waiting for a free concurrency slot of their client.", ["client"])
KUBE_API_REJECTED = Counter("kubedag_kube_api_requests_rejected_total",
                            "Kubernetes API calls refused unsent because their client's queue was full "
                            "(retried as a 429).", ["client"])

# -- the metadata DB ------------------------------------------------------------------------------------------------
DB_WRITE_DURATION = Histogram("kubedag_db_write_duration_seconds", "Duration of metadata DB write transactions.",
                              ["operation"], buckets=LATENCY_BUCKETS)
DB_WRITE_ERRORS = Counter("kubedag_db_write_errors_total", "Metadata DB writes that failed (retried).", ["operation"])
DB_WRITES_PENDING = Gauge("kubedag_db_writes_pending",
                          "DAG runs with a pass not yet written to the metadata DB (in flight, or failed and "
                          "waiting for its retry).")


class PendingWrites:
    """The runs whose pass is not yet in the DB: :meth:`begin` before a write, :meth:`landed` once it committed.
    A write that failed stays pending until a later write of the same run lands (issue 13: writes are retried
    until they land); a run deleted while its write fails stays counted until the process restarts.
    Thread-safe; exported as ``kubedag_db_writes_pending``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: set[Any] = set()

    def begin(self, key: Any) -> None:
        """A write of ``key`` (any hashable naming a run) starts."""
        with self._lock:
            self._keys.add(key)

    def landed(self, key: Any) -> None:
        """A write of ``key`` committed: nothing of that run is pending."""
        with self._lock:
            self._keys.discard(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)


PENDING = PendingWrites()
DB_WRITES_PENDING.set_function(lambda: len(PENDING))


@contextmanager
def db_write(operation: str, run: Any = None) -> Iterator[None]:
    """Time one DB write transaction named ``operation`` (e.g. ``save_pass``); when ``run`` (a hashable naming the
    run) is given, the run counts as pending until a write of it lands. An exception propagates, counted in
    ``kubedag_db_write_errors_total``."""
    if run is not None:
        PENDING.begin(run)
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        DB_WRITE_ERRORS.labels(operation).inc()
        raise
    finally:
        DB_WRITE_DURATION.labels(operation).observe(time.perf_counter() - start)
    if run is not None:
        PENDING.landed(run)


# -- what the executors report --------------------------------------------------------------------------------------
_queued_lock = threading.Lock()
_queued: dict[tuple[Any, str, int], tuple[str, datetime]] = {}
"""``(run key, task_id, try_number) -> (dag_id, queued at)`` of tries started but not yet seen running."""


def try_started(dag_id: str, dag: DAG, run: Any, tis: Mapping[str, engine.TaskInstance], task_id: str,
                try_number: int, queued_at: datetime, created_at: datetime, *, first_poke: bool = True) -> None:
    """A try's pod or process was created at ``created_at`` by the pass that queued it at ``queued_at``.

    ``dag_id``: the label; ``run``: a hashable naming the run (the pass that sees the try running measures its
    queued -> running latency against ``queued_at``); ``tis``: the run's task instances then. The successor
    latency (``created_at`` less the latest end of the task's upstream tasks) is observed for a first try's first
    poke of a task with upstream tasks that all ended: a retry waits its ``retryDelay`` and a cleared task's
    upstream may have ended long before, so neither measures the scheduler. Negative values (clock skew between
    a node and the controller) count as 0."""
    TI_STARTED.labels(dag_id).inc()
    with _queued_lock:
        _queued[(run, task_id, try_number)] = (dag_id, queued_at)
    task = dag.tasks.get(task_id)
    if task is None or not task.upstream or try_number != 1 or not first_poke:
        return
    ends = [tis[u].end_date if u in tis else None for u in task.upstream]
    if any(end is None for end in ends):
        return
    latest = max(end for end in ends if end is not None)
    TI_SUCCESSOR_LATENCY.labels(dag_id).observe(max(0.0, (created_at - latest).total_seconds()))


def record_pass(dag_id: str, run: Any, before_run: engine.DagRun, after_run: engine.DagRun,
                before_tis: Mapping[str, engine.TaskInstance], changed: Mapping[str, engine.TaskInstance],
                tries: Iterable[TryRecord] = ()) -> None:
    """A run's pass landed, taking the run from ``before_run`` to ``after_run`` and changing the task instances
    ``changed`` (task_id -> task instance; ``before_tis``: all of them before the pass) with the try rows
    ``tries``; the cost is in the changes, not the run's size. Counts a run that started (left ``queued``, or re-ran after a clear) or finished (with its
    duration), each try that ended (:data:`TI_FINISHED_STATES`, a try failed and retried within the pass
    included, as :func:`kubedag.core.notify.task_transitions`), and the queued -> running latency of tries
    :func:`try_started` saw created."""
    run_type = str(after_run.run_type)
    if after_run.state != before_run.state:
        if before_run.state != DagRunState.RUNNING and after_run.state != DagRunState.QUEUED:
            DAG_RUN_STARTED.labels(dag_id, run_type).inc()
        if after_run.finished:
            state = str(after_run.state)
            DAG_RUN_FINISHED.labels(dag_id, run_type, state).inc()
            if after_run.start_date is not None and after_run.end_date is not None:
                seconds = max(0.0, (after_run.end_date - after_run.start_date).total_seconds())
                DAG_RUN_DURATION.labels(dag_id, run_type, state).observe(seconds)
    tries = list(tries)
    for was, ti in task_transitions(before_tis, changed, tries):
        if ti.state in TI_FINISHED_STATES and (was is None or was.state != ti.state or was.try_number != ti.try_number):
            TI_FINISHED.labels(dag_id, str(ti.state)).inc()
    started = [(t.task_id, t.try_number, t.start_date) for t in tries]
    started += [(ti.task_id, ti.try_number, ti.start_date) for ti in changed.values()
                if ti.state not in (S.NONE, S.SCHEDULED, S.QUEUED, S.UP_FOR_RESCHEDULE)]
    with _queued_lock:
        for task_id, try_number, start in started:
            entry = _queued.pop((run, task_id, try_number), None) if start is not None else None
            if entry is not None:
                TI_QUEUED_TO_RUNNING.labels(entry[0]).observe(max(0.0, (start - entry[1]).total_seconds()))
        if after_run.finished:
            for key in [k for k in _queued if k[0] == run]:
                del _queued[key]


def record_plan(dag_id: str, run: Any, before: RunMemory, after: RunMemory, plan: RunPlan) -> None:
    """A controller pass (:func:`kubedag.app.reconcile.reconcile_run`) landed, taking the run's memory from
    ``before`` to ``after``: :func:`record_pass`, and the SLA misses it reported (tasks added to the memory's
    ``sla_reported``: each task once per run, as Airflow records one ``sla_miss`` row per task and run)."""
    write = plan.write
    changed = {ti.task_id: after.tis.get(ti.task_id, ti) for ti in write.tis} if write is not None else {}
    record_pass(dag_id, run, before.run, after.run, before.tis, changed, write.tries if write is not None else ())
    for task_id in sorted(after.sla_reported - before.sla_reported):
        SLA_MISSED.labels(dag_id, task_id).inc()


def set_pools(usage: Mapping[str, PoolUsage], prefix: str = "") -> None:
    """Set the pool gauges from ``usage`` (pool name -> :class:`kubedag.app.pools.PoolUsage`); ``prefix`` is put
    before each name (``<namespace>/`` on a cluster)."""
    for name, u in usage.items():
        pool = prefix + name
        POOL_OPEN.labels(pool).set(u.open)
        POOL_OCCUPIED.labels(pool).set(u.queued + u.running)
        POOL_QUEUED.labels(pool).set(u.queued)
        POOL_RUNNING.labels(pool).set(u.running)


__all__ = [
    "DAG_RUN_DURATION", "DAG_RUN_FINISHED", "DAG_RUN_STARTED", "DB_WRITES_PENDING", "DB_WRITE_DURATION",
    "DB_WRITE_ERRORS", "KUBE_API_DURATION", "KUBE_API_IN_FLIGHT", "KUBE_API_QUEUED", "KUBE_API_REJECTED",
    "KUBE_API_REQUESTS", "LATENCY_BUCKETS", "NOTIFICATIONS", "PENDING",
    "POOL_OCCUPIED", "POOL_OPEN", "POOL_QUEUED", "POOL_RUNNING", "PendingWrites", "RECONCILE_DURATION",
    "RECONCILE_ERRORS", "RECONCILE_TOTAL", "RUN_BUCKETS", "SLA_MISSED", "TI_FINISHED", "TI_FINISHED_STATES",
    "TI_QUEUED_TO_RUNNING", "TI_STARTED", "TI_SUCCESSOR_LATENCY", "WORKQUEUE_ADDS", "WORKQUEUE_DEPTH",
    "WORKQUEUE_LATENCY", "WORKQUEUE_RETRIES", "db_write", "record_pass", "record_plan", "set_pools", "try_started",
]

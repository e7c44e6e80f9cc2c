"""The local executor's Prometheus metrics (:mod:`kubedag.app.metrics`), recorded only when its options'
``metrics`` is on (``kubedag scheduler --metrics-port``, which serves them): the module ``prometheus_client`` is
imported on first use, so ``kubedag dags test`` and a scheduler without metrics start without it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from kubedag.core import engine
from kubedag.core.tries import TryRecord


def launched(runner: Any, request: Any, queued_at: datetime, started: datetime | None) -> None:
    """``runner`` started the process of ``request`` (a :class:`~kubedag.core.runpass.LaunchRequest`) at ``started``
    (None: it could not start), decided by the step at ``queued_at``: :func:`kubedag.app.metrics.try_started`."""
    if started is None or not runner.options.metrics:
        return
    from kubedag.app import metrics  # on first use: prometheus_client's import is slow

    metrics.try_started(runner.dag.dag_id, runner.dag, (runner.run_.dag_id, runner.run_.run_id), runner.tis,
                        request.task_id, request.try_number, queued_at, started, first_poke=not request.new_poke)


def stepped(runner: Any, before_run: engine.DagRun, before: Mapping[str, engine.TaskInstance],
            changed: Mapping[str, engine.TaskInstance], tries: list[TryRecord]) -> None:
    """``runner`` recorded a step from ``before_run``/``before`` to its run and ``changed`` task instances with the
    try rows ``tries``: :func:`kubedag.app.metrics.record_pass`."""
    if not runner.options.metrics:
        return
    from kubedag.app import metrics  # on first use: prometheus_client's import is slow

    metrics.record_pass(runner.dag.dag_id, (runner.run_.dag_id, runner.run_.run_id), before_run, runner.run_, before,
                        changed, tries)


def pools(usage: Mapping[str, Any]) -> None:
    """Set the pool gauges from ``usage`` (pool -> :class:`kubedag.app.pools.PoolUsage`):
    :func:`kubedag.app.metrics.set_pools`."""
    from kubedag.app import metrics  # on first use: prometheus_client's import is slow

    metrics.set_pools(usage)


@contextmanager
def db_write(on: bool, operation: str, run: Any = None) -> Iterator[None]:
    """Time a metadata DB write when ``on`` (:func:`kubedag.app.metrics.db_write`), else nothing."""
    if not on:
        yield
        return
    from kubedag.app import metrics  # on first use: prometheus_client's import is slow

    with metrics.db_write(operation, run):
        yield


def forget(on: bool, run: Any) -> None:
    """A run's pending writes were given up (its runner dropped): it no longer counts in
    ``kubedag_db_writes_pending`` (:data:`kubedag.app.metrics.PENDING`)."""
    if not on:
        return
    from kubedag.app import metrics  # on first use: prometheus_client's import is slow

    metrics.PENDING.landed(run)


__all__ = ["db_write", "forget", "launched", "pools", "stepped"]

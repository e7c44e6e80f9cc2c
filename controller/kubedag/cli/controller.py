"""``kubedag controller``: composes the metadata DB (:mod:`kubedag.store`) with the Kubernetes adapter
(:mod:`kubedag.k8s.manager`) and runs it until SIGINT/SIGTERM.

The adapters never import each other: this entry point opens the store (migrated to head), wraps it as the run
store and the ``externalTask`` query the controller's ports ask for, and hands them to the manager.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kubedag.k8s.client import Connection, load_connection
from kubedag.k8s.manager import ControllerConfig, Manager, run, utcnow
from kubedag.store.history import SqlRunStore, db_dag_id

log = logging.getLogger("kubedag.controller")


class ExternalTasks:
    """:class:`kubedag.app.ports.ExternalTaskQuery` on the metadata DB (Airflow's ``ExternalTaskSensor.poke``):
    the logical dates to look at, the states found there, the outcome and its summary."""

    def __init__(self, sessionmaker: Any) -> None:
        self.sessionmaker = sessionmaker

    def __call__(self, namespace: str, check: Any, logical_date: datetime,
                 render: Callable[[str, str], str]) -> tuple[str, str]:
        from kubedag.sensors import external_logical_dates, external_outcome, external_states, external_summary

        dates = external_logical_dates(check, logical_date, render)
        with self.sessionmaker() as session:
            states = external_states(session, db_dag_id(namespace, check.dag), check.task, dates)
        return external_outcome(check, states), external_summary(check, dates, states)


async def serve(config: ControllerConfig, *, connection: Connection | None = None, sessionmaker: Any = None,
                stop_flag: Any = None, ready_flag: Any = None, clock: Callable[[], datetime] = utcnow) -> Manager:
    """Run the controller until ``stop_flag`` is set (or forever); returns its manager (for tests and benchmarks).

    ``connection`` defaults to :func:`kubedag.k8s.client.load_connection` of the config's kubeconfig and
    context; ``sessionmaker`` to the metadata DB at ``config.database_url`` (migrated to head).
    """
    if connection is None:
        connection = load_connection(config.kubeconfig, config.context)
    engine_ = None
    if sessionmaker is None:
        from kubedag.store.db import open_store  # SQLAlchemy and Alembic load here, not at CLI start

        engine_, sessionmaker = open_store(config.database_url)
    manager = Manager(config, connection, SqlRunStore(sessionmaker), ExternalTasks(sessionmaker), clock=clock)
    try:
        await run(manager, stop_flag=stop_flag, ready_flag=ready_flag)
    finally:
        if engine_ is not None:
            engine_.dispose()
    return manager


def main(config: ControllerConfig, log_level: str = "INFO") -> None:
    """``kubedag controller``: log to stderr and serve until SIGINT/SIGTERM."""
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kopf").setLevel(max(logging.INFO, logging.getLogger().level))
    log.info("kubedag controller %s starting; namespaces: %s", os.environ.get("HOSTNAME", ""), config.namespaces or "all")
    asyncio.run(serve(config))


__all__ = ["ExternalTasks", "main", "serve"]

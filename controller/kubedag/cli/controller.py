"""``kubedag controller``: composes the metadata DB (:mod:`kubedag.store`) with the Kubernetes adapter
(:mod:`kubedag.k8s.manager`) and runs it until SIGINT/SIGTERM.

The adapters never import each other: this entry point opens the store (migrated to head), wraps it as the run
store the controller's port asks for, and hands it to the manager with the webhook sender of the http adapter.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kubedag.http import webhook_sender
from kubedag.k8s.client import Connection, load_connection
from kubedag.k8s.leader import LeaderElectionLost
from kubedag.k8s.manager import ControllerConfig, Manager, run, utcnow
from kubedag.store.history import SqlRunStore

log = logging.getLogger("kubedag.controller")


async def serve(config: ControllerConfig, *, connection: Connection | None = None, sessionmaker: Any = None,
                stop_flag: Any = None, ready_flag: Any = None, clock: Callable[[], datetime] = utcnow,
                make_sender: Callable[..., Any] | None = webhook_sender) -> Manager:
    """Run the controller until ``stop_flag`` is set (or forever); returns its manager (for tests and benchmarks).

    ``connection`` defaults to :func:`kubedag.k8s.client.load_connection` of the config's kubeconfig and
    context; ``sessionmaker`` to the metadata DB at ``config.database_url`` (migrated to head); ``make_sender``:
    the webhook sender (:func:`kubedag.http.webhook_sender`; None: notifiers are not sent).
    """
    if connection is None:
        connection = load_connection(config.kubeconfig, config.context)
    engine_ = None
    if sessionmaker is None:
        from kubedag.store.db import open_store  # SQLAlchemy and Alembic load here, not at CLI start

        engine_, sessionmaker = open_store(config.database_url)
    manager = Manager(config, connection, SqlRunStore(sessionmaker), make_sender=make_sender, clock=clock)
    try:
        await run(manager, stop_flag=stop_flag, ready_flag=ready_flag)
    finally:
        if engine_ is not None:
            engine_.dispose()
    return manager


def main(config: ControllerConfig, log_level: str = "INFO", make_sender: Callable[..., Any] | None = webhook_sender) -> None:
    """``kubedag controller``: log to stderr and serve until SIGINT/SIGTERM (``make_sender``: see :func:`serve`).
    A replica that lost its leader Lease exits with status 1 (as kube-controller-manager)."""
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kopf").setLevel(max(logging.INFO, logging.getLogger().level))
    log.info("kubedag controller %s starting; namespaces: %s", os.environ.get("HOSTNAME", ""), config.namespaces or "all")
    try:
        asyncio.run(serve(config, make_sender=make_sender))
    except LeaderElectionLost as exc:
        log.error("%s: exiting so that this replica restarts as a follower", exc)
        raise SystemExit(1) from None


__all__ = ["main", "serve"]

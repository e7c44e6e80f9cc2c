"""``kubedag controller``: composes the metadata DB (:mod:`kubedag.store`) with the Kubernetes adapter
(:mod:`kubedag.k8s.manager`) and runs it until SIGINT/SIGTERM.

The adapters never import each other: this entry point opens the store (migrated to head), wraps it as the run
store the controller's port asks for, and hands it to the manager with the webhook sender of the http adapter.
It also serves ``/metrics``, ``/healthz`` and ``/readyz`` (:class:`kubedag.http.probes.ProbeServer`): alive while
the event loop answers, ready once the informer caches are synced (:class:`kubedag.k8s.readiness.CacheSync`) and
the metadata DB answers (:func:`kubedag.store.health.db_unreachable`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kubedag.http import webhook_sender
from kubedag.http.probes import ProbeServer
from kubedag.k8s.client import Connection, load_connection
from kubedag.k8s.leader import LeaderElectionLost
from kubedag.k8s.manager import ControllerConfig, Manager, run, utcnow
from kubedag.k8s.readiness import CacheSync, loop_answers, start_sync
from kubedag.store.health import db_unreachable
from kubedag.store.history import SqlRunStore

log = logging.getLogger("kubedag.controller")


async def serve(config: ControllerConfig, *, connection: Connection | None = None, sessionmaker: Any = None,
                stop_flag: Any = None, ready_flag: Any = None, clock: Callable[[], datetime] = utcnow,
                make_sender: Callable[..., Any] | None = webhook_sender, probes: ProbeServer | None = None) -> Manager:
    """Run the controller until ``stop_flag`` is set (or forever); returns its manager (for tests and benchmarks).

    ``connection`` defaults to :func:`kubedag.k8s.client.load_connection` of the config's kubeconfig and
    context; ``sessionmaker`` to the metadata DB at ``config.database_url`` (migrated to head); ``make_sender``:
    the webhook sender (:func:`kubedag.http.webhook_sender`; None: notifiers are not sent). ``probes``: a started
    probe server given the controller's liveness and readiness checks (None: no probes; metrics are still counted).
    """
    if connection is None:
        connection = load_connection(config.kubeconfig, config.context)
    engine_ = None
    if sessionmaker is None:
        from kubedag.store.db import open_store_waiting  # SQLAlchemy and Alembic load here, not at CLI start

        engine_, sessionmaker = await asyncio.to_thread(open_store_waiting, config.database_url, say=log.warning)
    manager = Manager(config, connection, SqlRunStore(sessionmaker), make_sender=make_sender, clock=clock)
    sync = CacheSync(manager.cache, lambda: manager.client, config.namespaces, on_synced=manager.hold_finished_runs())
    if probes is not None:
        probes.set_checks(ready=[sync.check, lambda: db_unreachable(sessionmaker)],
                          alive=[loop_answers(asyncio.get_running_loop())])
    syncing = start_sync(sync)
    try:
        await run(manager, stop_flag=stop_flag, ready_flag=ready_flag)
    finally:
        syncing.cancel()
        if probes is not None:
            probes.set_checks(ready=[lambda: "the controller stopped"], alive=[lambda: "the controller stopped"])
        if engine_ is not None:
            engine_.dispose()
    return manager


def main(config: ControllerConfig, log_level: str = "INFO", make_sender: Callable[..., Any] | None = webhook_sender,
         metrics_address: tuple[str, int] | None = None) -> None:
    """``kubedag controller``: log to stderr and serve until SIGINT/SIGTERM (``make_sender``: see :func:`serve`);
    ``metrics_address``: ``(host, port)`` of ``/metrics``, ``/healthz`` and ``/readyz`` (None: not served; a port
    that cannot be bound is logged as an error and the controller runs without them, its readiness probe failing).
    A replica that lost its leader Lease exits with status 1 (as kube-controller-manager)."""
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kopf").setLevel(max(logging.INFO, logging.getLogger().level))
    # kopf logs "Handler ... succeeded" at INFO for every watch event: 10,000 lines when a start lists 10,000 kept pods
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    log.info("kubedag controller %s starting; namespaces: %s", os.environ.get("HOSTNAME", ""), config.namespaces or "all")
    try:
        probes = ProbeServer(*metrics_address).start() if metrics_address else None
    except OSError as exc:  # on by default: a busy port (two controllers on one machine) must not stop the controller
        log.error("metrics and probes are not served: cannot listen on %s:%s (%s); see --metrics-port",
                  *metrics_address, exc.strerror or exc)
        probes = None
    try:
        asyncio.run(serve(config, make_sender=make_sender, probes=probes))
    except LeaderElectionLost as exc:
        log.error("%s: exiting so that this replica restarts as a follower", exc)
        raise SystemExit(1) from None
    finally:
        if probes is not None:
            probes.stop()


__all__ = ["main", "serve"]

"""``kubedag scheduler`` and ``kubedag standalone``: kubedag on one machine, the entry points that compose the
local scheduler (:mod:`kubedag.local.scheduler`) with the metadata DB (:mod:`kubedag.store`).

``kubedag standalone`` is Airflow's ``airflow standalone``: every server kubedag needs on a laptop, in one
process, on a DAG folder (default: the repository's ``examples/supermarket``): the scheduler and the REST API
(:mod:`kubedag.cli.api`, on 127.0.0.1:8080 by default); a server added later (a web UI) is one more
:class:`Service` in :func:`services`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer

EXAMPLE_FOLDER = Path(__file__).resolve().parents[3] / "examples" / "supermarket"
"""The example DAG folder of a source checkout (``kubedag standalone``'s default)."""


@dataclass
class Service:
    """One server of ``kubedag standalone``: ``run()`` blocks until ``stop()`` is called (from a signal handler)."""

    name: str
    run: Callable[[], None]
    stop: Callable[[], None]


def _masked_url(url: str) -> str:
    """A DB URL fit to print: its password replaced by ``***``."""
    from urllib.parse import urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return "***"
    return url.replace(f":{password}@", ":***@") if password else url


def _scheduler(dags_folder: Path, database_url: str | None, parallelism: int, dag_dir_list_interval: float,
               grace_period: float, metrics: bool = False) -> tuple[Any, str, Path]:
    """The scheduler on ``dags_folder`` with the metadata DB, its lock taken; also the DB URL and logs folder.
    ``metrics``: record Prometheus metrics (for ``--metrics-port``).

    Raises:
        typer.Exit: the folder does not exist, or another scheduler holds the DB (the message names it).
    """
    from kubedag.app.scheduler_ports import SchedulerLocked
    from kubedag.cli.output import fail
    from kubedag.http.notify import WebhookSender
    from kubedag.local.scheduler import Scheduler, SchedulerOptions
    from kubedag.store import config
    from kubedag.store.db import open_store_waiting
    from kubedag.store.scheduler_store import SqlSchedulerStore

    if not dags_folder.is_dir():
        raise fail(f"--dags-folder: {dags_folder} is not a folder", 2)
    url = config.normalize_database_url(database_url) if database_url else config.database_url()
    _, sessions = open_store_waiting(url, say=lambda line: typer.echo(line, err=True))
    logs = config.logs_dir()
    options = SchedulerOptions(folder=dags_folder.resolve(), logs_dir=logs, database_url=url, parallelism=parallelism,
                               dag_dir_list_interval=dag_dir_list_interval, grace_period=grace_period,
                               metrics=metrics, make_sender=WebhookSender)
    scheduler = Scheduler(SqlSchedulerStore(sessions), options, say=lambda line: typer.echo(line, err=True))
    try:
        scheduler.start()
    except SchedulerLocked as exc:
        raise fail(f"{exc}; stop it first (or wait until its heartbeat is stale)", 1) from None
    return scheduler, url, logs


def probes(scheduler: Any, host: str, port: int) -> Any:
    """A started :class:`kubedag.http.probes.ProbeServer` on ``host:port`` for ``scheduler``: ready once it has
    read its DAG folder, while the metadata DB answers and while the scheduler is not backing off from failed DB
    calls (:meth:`kubedag.local.scheduler.Scheduler.db_problem`: a locked SQLite file still answers reads); None
    when ``port`` is 0 (off).

    Raises:
        typer.Exit: the address cannot be bound (the message names it; the scheduler is shut down first).
    """
    if not port:
        return None
    from kubedag.cli.output import fail
    from kubedag.http.probes import ProbeServer  # only with --metrics-port: start-up time
    from kubedag.store.health import db_unreachable

    try:
        server = ProbeServer(host, port)
    except OSError as exc:
        scheduler.shutdown()  # releases the single-scheduler lock it took
        raise fail(f"--metrics-port: cannot listen on {host}:{port}: {exc.strerror or exc}", 1) from None
    server.set_checks(ready=[lambda: None if scheduler.folder.bag is not None else "the DAG folder is not read yet",
                             lambda: db_unreachable(scheduler.store.sessions), scheduler.db_problem])
    typer.echo(f"metrics and probes on {server.url} (/metrics, /healthz, /readyz)", err=True)
    return server.start()


def serve(items: list[Service]) -> None:
    """Run ``items`` until Ctrl-C or SIGTERM: the first in this thread, the others in threads; then stop them
    all (each stops gracefully: the scheduler kills its tries and records them)."""
    def stop(*_: Any) -> None:
        for item in items:
            item.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    threads = [threading.Thread(target=item.run, name=item.name, daemon=True) for item in items[1:]]
    try:
        for thread in threads:
            thread.start()
        items[0].run()
    finally:
        stop()
        for thread in threads:
            thread.join(timeout=30)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


METRICS_PORT_HELP = "Port of GET /metrics, /healthz and /readyz (Prometheus metrics and probes); 0: off."
METRICS_HOST_HELP = "Address the metrics port binds (default: this machine only)."
FOLDER_HELP = "The DAGs folder: every *.yaml/*.yml under it (DAG manifests, their ConfigMaps, Secrets and Pools)."


def scheduler_command(
    dags_folder: Path = typer.Option(..., "--dags-folder", envvar="KUBEDAG_DAGS_FOLDER", help=FOLDER_HELP),
    parallelism: int = typer.Option(32, envvar="KUBEDAG_PARALLELISM", min=1,
                                    help="Tries running at once on this machine (Airflow's core.parallelism)."),
    dag_dir_list_interval: float = typer.Option(2.0, min=0.1, help="Seconds between scans of the DAGs folder."),
    grace_period: float = typer.Option(10.0, min=0.0,
                                       help="On Ctrl-C/SIGTERM: seconds between SIGTERM and SIGKILL of running tries."),
    database_url: Optional[str] = typer.Option(None, envvar="KUBEDAG_DATABASE_URL",
                                               help="Metadata DB URL (postgresql://...); default: local SQLite."),
    metrics_port: int = typer.Option(0, envvar="KUBEDAG_METRICS_PORT", min=0, max=65535, help=METRICS_PORT_HELP),
    metrics_host: str = typer.Option("127.0.0.1", envvar="KUBEDAG_METRICS_HOST", help=METRICS_HOST_HELP),
) -> None:
    """Schedule the DAGs of a folder and run their task instances as local processes (Airflow's scheduler)."""
    scheduler, url, logs = _scheduler(dags_folder, database_url, parallelism, dag_dir_list_interval, grace_period,
                                      metrics=bool(metrics_port))
    typer.echo(f"scheduler on {dags_folder} (DB {_masked_url(url)}, logs {logs})", err=True)
    server = probes(scheduler, metrics_host, metrics_port)
    try:
        serve([Service("scheduler", scheduler.run, scheduler.stop)])
    finally:
        if server is not None:
            server.stop()


def standalone_command(
    dags_folder: Path = typer.Option(EXAMPLE_FOLDER, "--dags-folder", envvar="KUBEDAG_DAGS_FOLDER", help=FOLDER_HELP),
    parallelism: int = typer.Option(32, envvar="KUBEDAG_PARALLELISM", min=1, help="Tries running at once."),
    grace_period: float = typer.Option(10.0, min=0.0, help="On Ctrl-C: seconds before running tries are SIGKILLed."),
    api_host: str = typer.Option("127.0.0.1", envvar="KUBEDAG_API_HOST",
                                 help="REST API address (beyond loopback only with --api-token/--api-users)."),
    api_port: int = typer.Option(8080, envvar="KUBEDAG_API_PORT", min=0, help="REST API port (0: no API)."),
    api_token: Optional[str] = typer.Option(None, envvar="KUBEDAG_API_TOKEN", help="REST API bearer token."),
    api_users: Optional[Path] = typer.Option(None, envvar="KUBEDAG_API_USERS",
                                             help="REST API basic-auth users file (username:bcrypt-hash lines)."),
    metrics_port: int = typer.Option(0, envvar="KUBEDAG_METRICS_PORT", min=0, max=65535, help=METRICS_PORT_HELP),
    metrics_host: str = typer.Option("127.0.0.1", envvar="KUBEDAG_METRICS_HOST", help=METRICS_HOST_HELP),
) -> None:
    """Run kubedag on this machine: the scheduler on a DAGs folder (default: the supermarket example) and the
    REST API (Airflow 3's /api/v2)."""
    from kubedag.cli import api as api_cli  # start-up time: the API's imports only for this command

    auth = api_cli.local_auth(api_host, api_token, False, api_users) if api_port else None
    scheduler, url, logs = _scheduler(dags_folder, None, parallelism, 2.0, grace_period, metrics=bool(metrics_port))
    server = probes(scheduler, metrics_host, metrics_port)
    api = None
    if auth is not None:
        api = api_cli.api_server(api_cli.local_services(dags_folder, url, auth), api_host, api_port)
    typer.echo("\n".join([
        f"kubedag standalone: DAGs folder {dags_folder}",
        f"  metadata DB: {_masked_url(url)}",
        f"  task logs:   {logs}",
        f"  trigger a run:  kubedag dags trigger DAG --dags-folder {dags_folder}",
        "  runs:           kubedag runs list;  logs: kubedag logs DAG RUN TASK",
        "  stop:           Ctrl-C (running tries are killed and recorded; the next start resumes)",
        *([f"  REST API:       http://{api_host}:{api_port}/api/v2 (Airflow 3's; docs at /docs)",
           f"  web UI:         http://{api_host}:{api_port}/ui/"] if api else []),
    ]), err=True)
    try:
        serve(services(scheduler, api))
    finally:
        if server is not None:
            server.stop()


def services(scheduler: Any, api: tuple[Callable[[], None], Callable[[], None]] | None = None) -> list[Service]:
    """The servers of ``kubedag standalone``: the scheduler first, then the REST API (``api``: its ``(run,
    stop)``, :func:`kubedag.cli.api.api_server`) when it is served (later: the web UI)."""
    return [Service("scheduler", scheduler.run, scheduler.stop),
            *([Service("api", api[0], api[1])] if api else [])]


def register_commands(app: typer.Typer) -> None:
    """Add ``kubedag scheduler`` and ``kubedag standalone`` to the CLI."""
    app.command("scheduler")(scheduler_command)
    app.command("standalone")(standalone_command)

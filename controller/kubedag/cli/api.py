"""``kubedag api``: the REST API server (Airflow 3's ``/api/v2``, :mod:`kubedag.api`), and the composition root
that builds its :class:`~kubedag.api.ApiServices`:

* **local** (default): the standalone scheduler's metadata DB (:mod:`kubedag.store`: ``SqlCatalog``, ``DbRuns``,
  ``SqlBackfills``) and DAG folder (:class:`kubedag.local.folder.LocalDagFolder`); authentication by a start-up
  token and/or basic-auth users (:class:`kubedag.api.auth.LocalAuthenticator`), served on 127.0.0.1 unless
  authentication is on;
* **cluster** (``--cluster``): composed by :func:`kubedag.cli.api_cluster.serve_cluster` (the Kubernetes API's
  DAG, DAGRun, Pool, Backfill objects; TokenReview and SubjectAccessReview; the history DB when
  ``--database-url``/``KUBEDAG_DATABASE_URL`` is given; the controller's health from ``--leader-lease``), with
  the options the Helm chart's API Deployment passes.

Imports of the API, the store and the Kubernetes client are made inside the functions that need them, to keep
the CLI's start-up fast (as elsewhere in :mod:`kubedag.cli`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer

from kubedag.cli.output import fail


@dataclass
class LocalAuth:
    """Local authentication options: ``token`` (Bearer), ``users`` (a users file of bcrypt hashes)."""

    token: str | None = None
    users: Path | None = None


class ScanDags:
    """:class:`~kubedag.app.operations.DagSource` over a :class:`~kubedag.app.scheduler_ports.DagFolder` scan, so
    the API's writes see the same DAGs as its reads (the scheduler's recursive reading of the folder)."""

    def __init__(self, folder: Any) -> None:
        self.folder = folder

    def dag(self, name: str) -> Any:
        """The DAG ``name`` (:meth:`kubedag.app.scheduler_ports.FolderScan.dag`). Raises NotFound, or
        OperationError (``InvalidDag``) for an invalid one, naming its file and error."""
        return self.folder.scan().dag(name)

    def dags(self) -> list[Any]:
        """Every valid DAG, by name."""
        scan = self.folder.scan()
        return [scan.dags[name][0] for name in sorted(scan.dags)]


def local_services(dags_folder: Path, database_url: str | None, auth: LocalAuth) -> Any:
    """The :class:`~kubedag.api.ApiServices` of local mode on ``dags_folder`` and the metadata DB.

    Raises:
        typer.Exit: the folder does not exist, or the users file is invalid (exit 2, naming it).
    """
    from kubedag import __version__
    from kubedag.api import ApiServices
    from kubedag.api.auth import AllowAll, LocalAuthenticator, load_users
    from kubedag.cli.api_cluster import metadb_ready
    from kubedag.cli.local_catalog import local_catalog
    from kubedag.store.operations import DbRuns

    try:
        users = load_users(auth.users) if auth.users else {}
    except (OSError, ValueError) as exc:
        raise fail(f"--users: {exc}", 2) from None
    try:
        local = local_catalog(dags_folder, database_url)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    runs = DbRuns(local.catalog.sessions)
    return ApiServices(catalog=local.catalog, runs=runs, dags=ScanDags(local.folder), pauses=runs,
                       backfills=local.backfills, authenticator=LocalAuthenticator(auth.token, users),
                       authorizer=AllowAll(), version=__version__, mode="local", ready=metadb_ready(local.catalog))


def local_auth(host: str, token: str | None, generate_token: bool, users: Path | None) -> LocalAuth:
    """The local auth options, checked: a generated token is printed (stderr); no auth beyond loopback exits 2."""
    from kubedag.api.auth import check_bind, new_token

    if generate_token and not token:
        token = new_token()
        typer.echo(f"API token (send 'Authorization: Bearer <token>'): {token}", err=True)
    try:
        check_bind(host, bool(token or users))
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    return LocalAuth(token, users)


def api_server(services: Any, host: str, port: int, log_level: str = "warning") -> tuple[Any, Any]:
    """``(run, stop)`` of the API server on ``services`` (for ``kubedag standalone``'s services too), with the web
    UI (:func:`kubedag.ui.ui_router`) at ``/ui/`` on the same services."""
    from kubedag.api import create_app, serve
    from kubedag.ui import ui_router

    return serve(create_app(services, extra_routes=[ui_router(services)]), host, port, log_level=log_level)


def api_command(
    host: str = typer.Option("127.0.0.1", envvar="KUBEDAG_API_HOST",
                             help="Address to listen on (beyond loopback only with --token/--generate-token/--users)."),
    port: int = typer.Option(8080, envvar="KUBEDAG_API_PORT", help="Port to listen on."),
    dags_folder: Optional[Path] = typer.Option(None, "--dags-folder", envvar="KUBEDAG_DAGS_FOLDER",
                                               help="Local mode: the DAGs folder the scheduler runs."),
    database_url: Optional[str] = typer.Option(None, envvar="KUBEDAG_DATABASE_URL",
                                               help="Metadata DB URL; default: local SQLite (cluster: the history)."),
    token: Optional[str] = typer.Option(None, envvar="KUBEDAG_API_TOKEN", help="Local: the bearer token to require."),
    generate_token: bool = typer.Option(False, "--generate-token", help="Local: require a random token, printed now."),
    users: Optional[Path] = typer.Option(None, envvar="KUBEDAG_API_USERS",
                                         help="Local: basic-auth users file (username:bcrypt-hash lines)."),
    cluster: bool = typer.Option(False, "--cluster", help="Serve a Kubernetes cluster's kubedag (TokenReview/RBAC)."),
    namespace: Optional[str] = typer.Option(None, "--namespace", "-n", help="Cluster: the home namespace."),
    extra_namespace: list[str] = typer.Option([], "--extra-namespace", "--also-namespace",
                                              help="Cluster: more namespaces (their DAGs are '<namespace>.<name>'); "
                                                   "repeat for each."),
    kubeconfig: Optional[str] = typer.Option(None, help="Cluster: kubeconfig file."),
    context: Optional[str] = typer.Option(None, help="Cluster: kubeconfig context."),
    basic_auth_secret: Optional[str] = typer.Option(None, envvar="KUBEDAG_API_BASIC_AUTH_SECRET",
                                                    help="Cluster: Secret of basic-auth users (off by default)."),
    token_audience: list[str] = typer.Option([], "--token-audience",
                                             help="Cluster: an audience bearer tokens must be for; repeat for each."),
    leader_lease: Optional[str] = typer.Option(None, envvar="KUBEDAG_API_LEADER_LEASE",
                                               help="Cluster: the controller's leader-election Lease, "
                                                    "'<namespace>/<name>': the health document's scheduler."),
    kube_api_concurrency: int = typer.Option(16, envvar="KUBEDAG_KUBE_API_CONCURRENCY", min=1,
                                             help="Cluster: Kubernetes API requests in flight at most."),
    kube_api_queue: int = typer.Option(1000, envvar="KUBEDAG_KUBE_API_QUEUE", min=0,
                                       help="Cluster: Kubernetes API calls waiting at most; one more answers 503."),
    log_level: str = typer.Option("warning", help="uvicorn's log level."),
) -> None:
    """Serve Airflow 3's REST API (/api/v2) and the seeds' Airflow 2 calls, locally or for a cluster."""
    if cluster:
        from kubedag import __version__
        from kubedag.cli.api_cluster import serve_cluster  # start-up time: the API and the kubernetes client
        from kubedag.k8s.kubeapi import KubeError

        try:
            services = serve_cluster(kubeconfig, context, namespace, extra_namespaces=extra_namespace,
                                     database_url=database_url, basic_auth_secret=basic_auth_secret,
                                     audiences=token_audience, leader_lease=leader_lease, version=__version__,
                                     kube_api_limits=(kube_api_concurrency, kube_api_queue))
        except (KubeError, ValueError) as exc:
            raise fail(str(exc), 2) from None
    else:
        if dags_folder is None:
            raise fail("--dags-folder is required in local mode (or use --cluster)", 2)
        auth = local_auth(host, token, generate_token, users)
        services = local_services(dags_folder, database_url, auth)
    run, _ = api_server(services, host, port, log_level)
    typer.echo(f"kubedag api ({services.mode}) on http://{host}:{port}/api/v2 (docs: /docs; web UI: /ui/)", err=True)
    run()


def register_commands(app: typer.Typer) -> None:
    """Add ``kubedag api`` to the CLI."""
    app.command("api")(api_command)

"""``kubedag``: validate, inspect and run DAG manifests on this machine, read their history, and list, trigger,
pause and read the logs of DAGs, locally (the metadata DB) or deployed to a Kubernetes cluster.

Commands mirror Airflow's CLI where one exists (``dags test``, ``tasks test``, ``dags trigger``...), with
kubectl's ``-o json`` for scripts and kubectl's ``--kubeconfig``/``--context``/``-n``/``-A`` for the cluster
(see :mod:`kubedag.cli.common` for where each command acts). Exit codes: 0 success, 1 the thing checked or run
failed (or the cluster or metadata DB cannot be used), 2 bad usage.

This module is where the sub-commands are registered: each group lives in its own module
(:mod:`kubedag.cli.dags`, :mod:`kubedag.cli.backfill`, :mod:`kubedag.cli.tasks`, :mod:`kubedag.cli.runs`).
"""

from __future__ import annotations

from typing import Optional

import typer

from kubedag.cli import backfill as _backfill  # noqa: F401 - registers `dags backfill` on dags_app
from kubedag.cli.dags import dags_app
from kubedag.cli.output import fail
from kubedag.cli.runs import logs, runs_app
from kubedag.cli.tasks import tasks_app

app = typer.Typer(
    name="kubedag",
    help="kubedag: Airflow-style DAGs as Kubernetes custom resources. Run `kubedag dags test FILE` to try one locally.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(dags_app, name="dags")
app.add_typer(tasks_app, name="tasks")
app.add_typer(runs_app, name="runs")


@app.command()
def version() -> None:
    """Print kubedag's version."""
    from kubedag import __version__

    typer.echo(__version__)


def _duration_option(value: str, option: str):  # noqa: ANN202
    from kubedag.core.spec.durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


@app.command()
def controller(
    namespace: list[str] = typer.Option(
        [], "--namespace", "-n", envvar="KUBEDAG_NAMESPACES",
        help="Namespace to watch (repeat, or comma-separated in KUBEDAG_NAMESPACES); none: the whole cluster."),
    database_url: Optional[str] = typer.Option(
        None, envvar="KUBEDAG_DATABASE_URL", help="Metadata DB URL (postgresql://...); default: local SQLite."),
    kubeconfig: Optional[str] = typer.Option(None, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)."),
    context: Optional[str] = typer.Option(None, help="kubeconfig context (default: the current one)."),
    api_qps: float = typer.Option(50.0, envvar="KUBEDAG_API_QPS", help="API requests per second (client-side limit)."),
    api_burst: int = typer.Option(100, envvar="KUBEDAG_API_BURST", help="API requests allowed in a burst."),
    api_concurrency: int = typer.Option(16, envvar="KUBEDAG_API_CONCURRENCY", min=1,
                                        help="API requests in flight at most (the others wait)."),
    api_queue: int = typer.Option(1000, envvar="KUBEDAG_API_QUEUE", min=0,
                                  help="API calls waiting at most; one more fails at once and is retried later."),
    workers: int = typer.Option(8, envvar="KUBEDAG_WORKERS", min=1, help=(
        "DAGRuns reconciled at once (after a takeover, up to 32 while the first passes of warm runs last).")),
    pod_retention: str = typer.Option("10m", envvar="KUBEDAG_POD_RETENTION",
                                      help="Keep a finished try's pod this long (its log is archived first)."),
    run_history_limit: int = typer.Option(50, envvar="KUBEDAG_RUN_HISTORY_LIMIT", min=0,
                                          help="Finished DAGRun objects kept per DAG (0: all); history stays in the DB."),
    image_pull_timeout: str = typer.Option("5m", envvar="KUBEDAG_IMAGE_PULL_TIMEOUT",
                                           help="Fail a try whose image cannot be pulled for this long."),
    history_resync: str = typer.Option("5m", envvar="KUBEDAG_HISTORY_RESYNC",
                                       help="Compare finished runs' DB history with their status this often (and at start)."),
    liveness_port: int = typer.Option(8080, envvar="KUBEDAG_LIVENESS_PORT", help="Port of GET /healthz (0: off)."),
    metrics_port: int = typer.Option(9090, envvar="KUBEDAG_METRICS_PORT", min=0, max=65535,
                                     help="Port of GET /metrics, /healthz and /readyz (0: off)."),
    metrics_host: str = typer.Option("0.0.0.0", envvar="KUBEDAG_METRICS_HOST", help="Address /metrics binds."),
    sensor_image: Optional[str] = typer.Option(
        None, envvar="KUBEDAG_SENSOR_IMAGE",
        help="Image of built-in file/http sensor pods (default: kubedag/controller:<version>)."),
    log_level: str = typer.Option("INFO", envvar="KUBEDAG_LOG_LEVEL", help="DEBUG, INFO, WARNING or ERROR."),
    leader_elect: bool = typer.Option(
        False, "--leader-elect", envvar="KUBEDAG_LEADER_ELECT",
        help="Run as one of several replicas: only the holder of a coordination.k8s.io Lease reconciles; the others "
             "keep their caches warm and take over when it stops renewing."),
    leader_elect_lease_duration: str = typer.Option(
        "15s", envvar="KUBEDAG_LEADER_ELECT_LEASE_DURATION",
        help="How long followers wait after the leader's last renewal before taking over."),
    leader_elect_renew_deadline: str = typer.Option(
        "10s", envvar="KUBEDAG_LEADER_ELECT_RENEW_DEADLINE",
        help="How long the leader retries a failing renewal before it stops writing and exits."),
    leader_elect_retry_period: str = typer.Option(
        "2s", envvar="KUBEDAG_LEADER_ELECT_RETRY_PERIOD", help="Time between renewals and between followers' tries."),
    leader_elect_lease_name: str = typer.Option(
        "kubedag-controller", envvar="KUBEDAG_LEADER_ELECT_LEASE_NAME", help="Name of the Lease."),
    leader_elect_lease_namespace: Optional[str] = typer.Option(
        None, envvar="KUBEDAG_LEADER_ELECT_LEASE_NAMESPACE",
        help="Namespace of the Lease (default: POD_NAMESPACE, else the kubeconfig's namespace, else default)."),
) -> None:
    """Run the Kubernetes controller: schedule DAG custom resources and run each task instance as a pod."""
    from kubedag.cli.controller import main as run_controller
    from kubedag.http import webhook_sender
    from kubedag.k8s.manager import ControllerConfig
    from kubedag.k8s.kubeapi import KubeError

    namespaces = [ns.strip() for value in namespace for ns in value.split(",") if ns.strip()]
    config = ControllerConfig(
        namespaces=namespaces, database_url=database_url, api_qps=api_qps, api_burst=api_burst, workers=workers,
        api_concurrency=api_concurrency, api_queue=api_queue,
        pod_retention=_duration_option(pod_retention, "--pod-retention"), run_history_limit=run_history_limit,
        image_pull_timeout=_duration_option(image_pull_timeout, "--image-pull-timeout"),
        history_resync=_duration_option(history_resync, "--history-resync"),
        liveness_port=liveness_port or None, kubeconfig=kubeconfig, context=context,
        **({"sensor_image": sensor_image} if sensor_image else {}),
        leader_election=_leader_election(leader_elect, leader_elect_lease_duration, leader_elect_renew_deadline,
                                         leader_elect_retry_period, leader_elect_lease_name, leader_elect_lease_namespace,
                                         kubeconfig, context),
    )
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise typer.BadParameter(f"{log_level!r} is not one of DEBUG, INFO, WARNING, ERROR", param_hint="--log-level")
    try:
        run_controller(config, log_level, make_sender=webhook_sender,
                       metrics_address=(metrics_host, metrics_port) if metrics_port else None)
    except KubeError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        pass


def _leader_election(enabled: bool, duration: str, deadline: str, period: str, name: str, namespace: str | None,
                     kubeconfig: str | None, context: str | None):  # noqa: ANN202 - LeaderElection, loaded lazily
    """The ``--leader-elect*`` options as a :class:`kubedag.k8s.leader.LeaderElection` (None when disabled)."""
    if not enabled:
        return None
    import os

    from kubedag.k8s.leader import LeaderElection

    seconds = {option: _duration_option(value, option).total_seconds() for option, value in (
        ("--leader-elect-lease-duration", duration), ("--leader-elect-renew-deadline", deadline),
        ("--leader-elect-retry-period", period))}
    if not namespace:
        namespace = os.environ.get("POD_NAMESPACE")
    if not namespace:
        from kubedag.k8s.kubeapi import load_configuration

        namespace = load_configuration(kubeconfig, context)[1] or "default"
    try:
        return LeaderElection(namespace=namespace, name=name,
                              lease_duration=seconds["--leader-elect-lease-duration"],
                              renew_deadline=seconds["--leader-elect-renew-deadline"],
                              retry_period=seconds["--leader-elect-retry-period"])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--leader-elect") from None



app.command("logs")(logs)


__import__("kubedag.cli.standalone", fromlist=["register_commands"]).register_commands(app)  # scheduler, standalone
__import__("kubedag.cli.api", fromlist=["register_commands"]).register_commands(app)  # api (the REST API)


def main() -> None:
    """Console-script entry point. Metadata DB failures end with one clear line and exit 1, not a traceback."""
    import sys

    try:
        app()
    except Exception as exc:  # noqa: BLE001 - only cluster, DB and writer errors are turned into messages
        kubeapi = sys.modules.get("kubedag.k8s.kubeapi")  # not imported by local commands: they start faster
        if kubeapi is not None and isinstance(exc, kubeapi.KubeError):  # commands report these already
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        if type(exc).__module__.startswith("sqlalchemy") or "metadata DB writer failed" in str(exc):
            message = str(exc).split("\n(Background on this error")[0]
            print(f"error: cannot use the metadata DB: {message}", file=sys.stderr)
            raise SystemExit(1) from None
        raise


if __name__ == "__main__":  # pragma: no cover
    main()

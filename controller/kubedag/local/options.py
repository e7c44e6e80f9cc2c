"""A DAG's :class:`~kubedag.local.runner.RunOptions` from its DAG bag: pools, variables, connections, notifiers.

Shared by ``kubedag dags test`` (:func:`kubedag.cli.local.local_options`, the manifest's folder) and the
scheduler (:mod:`kubedag.local.scheduler`, its whole ``--dags-folder``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubedag.core.spec.dag import DAG
from kubedag.local.bag import DagBag
from kubedag.local.runner import RunOptions

log = logging.getLogger(__name__)


def _needs_secrets(dag: DAG) -> bool:
    """Whether a notifier of the DAG reads a Secret (``urlFrom``, ``webhookUrlFrom``)."""
    notifiers = [*dag.on_failure, *dag.on_success]
    for task in dag.tasks.values():
        notifiers += [*task.on_failure, *task.on_success, *task.on_retry]
    return any(n.slack is not None or (n.webhook is not None and n.webhook.url_from is not None) for n in notifiers)


def has_notifiers(dag: DAG) -> bool:
    """Whether the DAG or a task has an ``onFailure``/``onSuccess``/``onRetry`` notifier (SLA ones aside)."""
    return bool(dag.on_failure or dag.on_success) or any(
        t.on_failure or t.on_success or t.on_retry for t in dag.tasks.values()
    )


def dag_options(dag: DAG, bag: DagBag, *, workdir: Path, logs_dir: Path, database_url: str | None,
                make_sender: Callable[..., Any] | None = None, **kwargs: Any) -> RunOptions:
    """The runner's options for ``dag`` with the DAG bag ``bag`` (:class:`kubedag.local.bag.DagBag`):
    Pools always (a cheap scan: only files naming ``kind: Pool`` are parsed); ``variablesFrom`` /
    ``connectionsFrom`` and notifier Secrets only when the DAG uses them; a webhook sender only when it has
    notifiers; the DB URL only for ``externalTask`` sensors and ``trigger`` tasks. ``kwargs``: other
    :class:`~kubedag.local.runner.RunOptions` fields. ``make_sender(resolver, *, mask, retries, backoff)``: the
    webhook sender's class, given by the entry point (:class:`kubedag.http.notify.WebhookSender`); without it a
    DAG's notifiers are not sent (a warning says so).

    Raises:
        ValueError: a source of ``variablesFrom``/``connectionsFrom`` is missing from the folder (naming the
            field, the object and the files that did not parse).
    """
    options = RunOptions(workdir=workdir, logs_dir=logs_dir, pools=bag.pools, dag_folder=workdir, **kwargs)
    if dag.variables_from or dag.connections_from:
        from kubedag.core.secrets import load_sources

        sources = load_sources(dag.variables_from, dag.connections_from, bag.get)
        if sources.missing:
            skipped = "".join(f"; {name} was skipped: {why}" for name, why in bag.errors.items())
            raise ValueError(f"in {workdir}: " + "; ".join(sources.missing) + skipped)
        options.variables, options.connections, options.masker = sources.variables, sources.connections, sources.masker
    if has_notifiers(dag):
        from kubedag.core.notify import static_resolver

        secrets = bag.secret_values if _needs_secrets(dag) else {}
        mask = options.masker.mask if options.masker is not None and len(options.masker) else None
        if make_sender is None:
            log.warning("DAG %s has notifiers, but no webhook sender was given: they are not notified", dag.dag_id)
        else:
            options.sender = make_sender(static_resolver(secrets), mask=mask, retries=2, backoff=0.5)
    if any(t.runs_in_controller for t in dag.tasks.values()):
        options.database_url = database_url
    return options

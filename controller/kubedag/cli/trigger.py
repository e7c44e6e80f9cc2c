"""A ``trigger`` task run locally (Airflow's ``TriggerDagRunOperator``): ``python -m kubedag.cli.trigger ...``.

An entry point (it composes the local runner with the metadata DB, :mod:`kubedag.store.local_runs`, and gives the
triggered run's notifiers the webhook sender, :func:`kubedag.http.webhook_sender`, as ``kubedag dags test`` does).

The local runner starts this program as the task's try (its output goes to the try's log)::

    KUBEDAG_DATABASE_URL=URL python -m kubedag.cli.trigger --folder DIR --dag child \\
        --logical-date 2026-11-01T00:00:00+00:00 --conf '{"x": 1}' [--run-id ID] [--reset-dag-run] \\
        [--wait-for-completion] --allowed success --failed failed

It finds DAG ``--dag`` among the manifests of ``--folder`` (:class:`kubedag.local.bag.DagBag`) and runs one
manual run of it to completion in the same metadata DB with :func:`kubedag.cli.local.run_dag_locally`
(quietly; the run's tries have their own logs). ``--conf`` and ``--logical-date`` arrive rendered. The metadata
DB is ``$KUBEDAG_DATABASE_URL`` (the runner passes it in the environment, never in argv, so that its password
reaches neither the try's log nor ``ps``); ``--database-url`` overrides it.

Exit codes: without ``--reset-dag-run``, a run of that DAG at that logical date (or with that run id) already
in the DB fails the task at once, as Airflow's ``DagRunAlreadyExists`` (exit 1); with it the old run is replaced.
With ``--wait-for-completion``: 0 when the run's final state is in ``--allowed``, 1 when in ``--failed`` (or in
neither). Without it: 0 once the run was created. Locally the run is still carried to completion before this
program exits (a local run has no scheduler that would run it later), but its outcome does not matter.
The triggered run id is written as the try's XCom return value (``$KUBEDAG_XCOM_PATH``) when it succeeds.

Under ``kubedag scheduler`` (``--queue``) the program only creates the run, ``queued``, as Airflow's operator
does: the scheduler runs it like any other (within its parallelism, surviving restarts). The target DAG is read
from the metadata DB (the scheduler has recorded every DAG of its folder). With ``--wait-for-completion`` the
program then polls the run's state every ``--poke-interval`` seconds (the task's ``pokeInterval``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kubedag.http import webhook_sender

OK = 0
FAILED = 1


def _parse_date(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def main(argv: Sequence[str] | None = None, make_sender: Callable[..., Any] | None = webhook_sender) -> int:
    """Run the program (see the module docstring); returns its exit code. ``make_sender``: the webhook sender's
    class for the triggered run's notifiers (:func:`kubedag.http.webhook_sender`)."""
    parser = argparse.ArgumentParser(prog="python -m kubedag.cli.trigger", description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True, type=Path)
    parser.add_argument("--dag", required=True)
    parser.add_argument("--database-url", default=None, help="default: $KUBEDAG_DATABASE_URL")
    parser.add_argument("--logical-date", required=True)
    parser.add_argument("--conf", default="{}")
    parser.add_argument("--run-id")
    parser.add_argument("--reset-dag-run", action="store_true")
    parser.add_argument("--wait-for-completion", action="store_true")
    parser.add_argument("--allowed", action="append", default=[])
    parser.add_argument("--failed", action="append", default=[])
    parser.add_argument("--queue", action="store_true", help="only create the run, queued (under the scheduler)")
    parser.add_argument("--poke-interval", type=float, default=60.0, help="seconds between checks (--queue)")
    args = parser.parse_args(argv)

    from kubedag.cli.local import run_dag_locally  # the runner: not needed by --queue
    from kubedag.local.bag import DagBag, DagBagError

    try:
        logical_date = _parse_date(args.logical_date)
    except ValueError:
        print(f"trigger: --logical-date: {args.logical_date!r} is not an ISO 8601 date", file=sys.stderr)
        return FAILED
    conf = json.loads(args.conf)
    if args.queue:
        return _queued(args, logical_date, conf)
    try:
        dag = DagBag(args.folder).dag(args.dag)
    except DagBagError as exc:
        print(f"trigger: {exc}", file=sys.stderr)
        return FAILED
    run_id = _run_id(args, logical_date)
    if run_id is None:
        return FAILED
    print(f"triggering DAG {dag.dag_id!r}: run {run_id} at {logical_date.isoformat()} with conf {json.dumps(conf)}",
          flush=True)
    result = run_dag_locally(dag, workdir=args.folder, logical_date=logical_date, conf=conf, live=False,
                             database_url=args.database_url, run_id=run_id, make_sender=make_sender)
    print(f"triggered run {run_id} of {dag.dag_id!r} ended {result.state}", flush=True)
    return _outcome(args, dag.dag_id, run_id, result.state)


def _run_id(args: argparse.Namespace, logical_date: datetime) -> str | None:
    """The triggered run's id; None (after saying why) when such a run exists and ``--reset-dag-run`` is not
    given (Airflow's ``DagRunAlreadyExists``)."""
    from kubedag.core import timetable

    run_id = args.run_id or timetable.run_id("manual", logical_date)
    if not args.reset_dag_run:
        from kubedag.store.local_runs import existing_run  # SQLAlchemy: only when the DB is read

        found = existing_run(args.database_url, args.dag, run_id, logical_date)
        if found is not None:
            print(f"DagRunAlreadyExists: DAG {args.dag!r} already has run {found!r} at logical date "
                  f"{logical_date.isoformat()} (set trigger.resetDagRun to replace it)", file=sys.stderr, flush=True)
            return None
    return run_id


def _outcome(args: argparse.Namespace, dag_id: str, run_id: str, state: str | None) -> int:
    """Write the run id as XCom; the exit code for the run's final ``state`` (None: not waited for)."""
    xcom_path = os.environ.get("KUBEDAG_XCOM_PATH")
    if xcom_path:
        Path(xcom_path).write_text(json.dumps(run_id), encoding="utf-8")
    if not args.wait_for_completion or state is None:
        return OK
    allowed = args.allowed or ["success"]
    failed = args.failed or ["failed"]
    if state in allowed:
        return OK
    why = "in failedStates" if state in failed else f"not in allowedStates ({', '.join(allowed)})"
    print(f"trigger: run {run_id} of {dag_id!r} ended {state}, {why}", file=sys.stderr, flush=True)
    return FAILED


def _queued(args: argparse.Namespace, logical_date: datetime, conf: dict) -> int:
    """``--queue``: create the run for the scheduler, then wait for it if asked."""
    run_id = _run_id(args, logical_date)
    if run_id is None:
        return FAILED
    from kubedag.store.local_runs import queue_run, wait_for_run  # SQLAlchemy: only when the DB is read

    error = queue_run(args.database_url, args.dag, run_id, logical_date, conf, args.reset_dag_run)
    if error is not None:
        print(f"trigger: {error}", file=sys.stderr, flush=True)
        return FAILED
    print(f"queued run {run_id} of DAG {args.dag!r} at {logical_date.isoformat()} with conf {json.dumps(conf)}",
          flush=True)
    state = wait_for_run(args.database_url, args.dag, run_id, args.poke_interval) if args.wait_for_completion else None
    if state is not None:
        print(f"triggered run {run_id} of {args.dag!r} ended {state}", flush=True)
    return _outcome(args, args.dag, run_id, state)


if __name__ == "__main__":
    raise SystemExit(main(make_sender=webhook_sender))

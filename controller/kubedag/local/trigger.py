"""A ``trigger`` task run locally (Airflow's ``TriggerDagRunOperator``): ``python -m kubedag.cli.trigger ...``.

The local runner starts this program as the task's try (its output goes to the try's log)::

    python -m kubedag.cli.trigger --folder DIR --dag child --database-url URL \\
        --logical-date 2026-11-01T00:00:00+00:00 --conf '{"x": 1}' [--run-id ID] [--reset-dag-run] \\
        [--wait-for-completion] --allowed success --failed failed

It finds DAG ``--dag`` among the manifests of ``--folder`` (:class:`kubedag.local.bag.DagBag`) and runs one
manual run of it to completion in the same metadata DB with :func:`kubedag.local.session.run_dag_locally`
(quietly; the run's tries have their own logs). ``--conf`` and ``--logical-date`` arrive rendered.

Exit codes: without ``--reset-dag-run``, a run of that DAG at that logical date (or with that run id) already
in the DB fails the task at once, as Airflow's ``DagRunAlreadyExists`` (exit 1); with it the old run is replaced.
With ``--wait-for-completion``: 0 when the run's final state is in ``--allowed``, 1 when in ``--failed`` (or in
neither). Without it: 0 once the run was created. Locally the run is still carried to completion before this
program exits (a local run has no scheduler that would run it later), but its outcome does not matter.
The triggered run id is written as the try's XCom return value (``$KUBEDAG_XCOM_PATH``) when it succeeds.
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

OK = 0
FAILED = 1


def trigger_argv(
    *, python: str, folder: Path, dag: str, database_url: str, logical_date: datetime, conf: dict,
    run_id: str | None, reset_dag_run: bool, wait_for_completion: bool, allowed: Sequence[str], failed: Sequence[str],
) -> list[str]:
    """The command line of one trigger try (values already rendered; ``logical_date`` timezone-aware)."""
    argv = [python, "-m", "kubedag.cli.trigger", f"--folder={folder}", f"--dag={dag}",
            f"--database-url={database_url}", f"--logical-date={logical_date.isoformat()}",
            f"--conf={json.dumps(conf)}"]
    if run_id:
        argv.append(f"--run-id={run_id}")
    if reset_dag_run:
        argv.append("--reset-dag-run")
    if wait_for_completion:
        argv.append("--wait-for-completion")
    argv += [f"--allowed={s}" for s in allowed] + [f"--failed={s}" for s in failed]
    return argv


def _parse_date(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _existing(database_url: str, dag_id: str, run_id: str, logical_date: datetime) -> str | None:
    """The run id of a run of ``dag_id`` with ``run_id`` or at ``logical_date``, if there is one."""
    import sqlalchemy as sa

    from kubedag.store.db import open_store
    from kubedag.store.models import DagRunRow

    db, sessionmaker = open_store(database_url)
    try:
        with sessionmaker() as session:
            stmt = sa.select(DagRunRow.run_id).where(
                DagRunRow.dag_id == dag_id, sa.or_(DagRunRow.run_id == run_id, DagRunRow.logical_date == logical_date)
            )
            return session.scalars(stmt).first()
    finally:
        db.dispose()


def main(argv: Sequence[str] | None = None, make_sender: Callable[..., Any] | None = None) -> int:
    """Run the program (see the module docstring); returns its exit code. ``make_sender``: the webhook sender's
    class for the triggered run's notifiers, given by the entry point :mod:`kubedag.cli.trigger`."""
    parser = argparse.ArgumentParser(prog="python -m kubedag.cli.trigger", description=__doc__.splitlines()[0])
    parser.add_argument("--folder", required=True, type=Path)
    parser.add_argument("--dag", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--logical-date", required=True)
    parser.add_argument("--conf", default="{}")
    parser.add_argument("--run-id")
    parser.add_argument("--reset-dag-run", action="store_true")
    parser.add_argument("--wait-for-completion", action="store_true")
    parser.add_argument("--allowed", action="append", default=[])
    parser.add_argument("--failed", action="append", default=[])
    args = parser.parse_args(argv)

    from kubedag.core import timetable
    from kubedag.local.bag import DagBag, DagBagError
    from kubedag.local.session import run_dag_locally

    try:
        logical_date = _parse_date(args.logical_date)
    except ValueError:
        print(f"trigger: --logical-date: {args.logical_date!r} is not an ISO 8601 date", file=sys.stderr)
        return FAILED
    conf = json.loads(args.conf)
    try:
        dag = DagBag(args.folder).dag(args.dag)
    except DagBagError as exc:
        print(f"trigger: {exc}", file=sys.stderr)
        return FAILED
    run_id = args.run_id or timetable.run_id("manual", logical_date)
    if not args.reset_dag_run:
        found = _existing(args.database_url, dag.dag_id, run_id, logical_date)
        if found is not None:
            print(f"DagRunAlreadyExists: DAG {dag.dag_id!r} already has run {found!r} at logical date "
                  f"{logical_date.isoformat()} (set trigger.resetDagRun to replace it)", file=sys.stderr, flush=True)
            return FAILED
    print(f"triggering DAG {dag.dag_id!r}: run {run_id} at {logical_date.isoformat()} with conf {json.dumps(conf)}",
          flush=True)
    result = run_dag_locally(dag, workdir=args.folder, logical_date=logical_date, conf=conf, live=False,
                             database_url=args.database_url, run_id=run_id, make_sender=make_sender)
    print(f"triggered run {run_id} of {dag.dag_id!r} ended {result.state}", flush=True)
    xcom_path = os.environ.get("KUBEDAG_XCOM_PATH")
    if xcom_path:
        Path(xcom_path).write_text(json.dumps(run_id), encoding="utf-8")
    if not args.wait_for_completion:
        return OK
    allowed = args.allowed or ["success"]
    failed = args.failed or ["failed"]
    if result.state in allowed:
        return OK
    why = "in failedStates" if result.state in failed else f"not in allowedStates ({', '.join(allowed)})"
    print(f"trigger: run {run_id} of {dag.dag_id!r} ended {result.state}, {why}", file=sys.stderr, flush=True)
    return FAILED


if __name__ == "__main__":
    raise SystemExit(main())

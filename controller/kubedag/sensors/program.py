"""The sensor check program: ``python -m kubedag.sensors file|http|external ...`` (an entry point).

It parses the command line and runs one check once: ``file`` and ``http`` from :mod:`kubedag.http.checks`,
``external`` with the pure rules of :mod:`kubedag.core.sensors.external` over the metadata DB's states
(:func:`kubedag.store.external.external_states`). Exit codes are :mod:`kubedag.core.sensors.command`'s: 0 met,
75 not met yet, 1 error (for ``external``: failed), 2 usage, 99 skipped (``external`` only). It prints one line
saying what it found to stdout (0, 75, 99) or what is wrong to stderr (1, 2). kubedag runs it in its own image
(``python``), locally with ``sys.executable``; :func:`kubedag.core.sensors.poke_command` repeats it in poke mode.

``file`` (Airflow's ``FileSensor`` with ``recursive=True``, plus the ``_SUCCESS`` convention)::

    python -m kubedag.sensors file --path 'incoming/*/2026-11-01/data-*.csv' --marker _SUCCESS

``external`` (Airflow's ``ExternalTaskSensor``, for local runs: the Kubernetes controller evaluates it in its own
process) reads the metadata DB at ``--database-url`` and exits 0 met, 75 not met, 1 failed (a state in
``--failed``), 99 skipped (a state in ``--skipped``, or in ``--failed`` with ``--soft-fail``)::

    python -m kubedag.sensors external --database-url sqlite:///kubedag.db --dag load-data --task load \\
        --date 2026-11-01T00:00:00Z --allowed success --failed failed

``http`` (Airflow's ``HttpSensor``)::

    python -m kubedag.sensors http --url https://api/health --expected-status 200 --json-path '$.status' \\
        --expected-value '"ready"'

This module imports neither pydantic nor SQLAlchemy at import time, so a poke starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from kubedag.core.sensors.command import ERROR, HTTP_METHODS, MET, NOT_MET, SKIPPED, USAGE
from kubedag.http.checks import UNSET, file_check, http_check


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own exit code is 2 as well; say which program
        self.print_usage(sys.stderr)
        self.exit(USAGE, f"{self.prog}: error: {message}\n")


def _header(text: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON (quote a string: '\"ready\"')") from None


def _status(text: str) -> int:
    try:
        code = int(text)
    except ValueError:
        code = 0
    if not 100 <= code <= 599:
        raise argparse.ArgumentTypeError(f"{text!r} is not an HTTP status (100-599)")
    return code


def _method(text: str) -> str:
    if text.upper() not in HTTP_METHODS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(HTTP_METHODS)}")
    return text.upper()


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m kubedag.sensors`` command line (see the module docstring)."""
    parser = _Parser(
        prog="python -m kubedag.sensors",
        description="Run a kubedag built-in sensor check once: exit 0 met, 75 not met yet, 1 error, 2 usage.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="{file,http,external}", parser_class=_Parser)
    file = kinds.add_parser("file", help="files matching a glob exist (and hold a marker file)")
    file.add_argument("--path", required=True, help="a glob; ** matches any depth")
    file.add_argument("--marker", help="a file name (e.g. _SUCCESS) every folder of a match must hold")
    http = kinds.add_parser("http", help="a URL answers an expected status (and JSON value)")
    http.add_argument("--url", required=True)
    http.add_argument("--method", type=_method, default="GET")
    http.add_argument("--header", type=_header, action="append", default=[], metavar="NAME=VALUE")
    http.add_argument("--body")
    http.add_argument("--expected-status", type=_status, action="append", metavar="STATUS",
                      help="an accepted status; repeat for several (default 200)")
    http.add_argument("--json-path", help="a JSONPath that must match in the JSON body, e.g. $.status")
    http.add_argument("--expected-value", type=_json_value, default=UNSET, metavar="JSON",
                      help="the JSON value every match must equal, e.g. '\"ready\"' or true")
    http.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="per request (default 10)")
    ext = kinds.add_parser("external", help="task instances or runs of another DAG are in allowed states")
    ext.add_argument("--database-url", required=True, help="the metadata DB (SQLAlchemy URL)")
    ext.add_argument("--dag", required=True, help="the other DAG's id in the DB (a local DAG: its name)")
    ext.add_argument("--task", help="its task; without it, the whole run's state is checked")
    ext.add_argument("--date", action="append", required=True, metavar="ISO", help="a logical date; repeat for several")
    ext.add_argument("--allowed", action="append", default=[], metavar="STATE", help="default: success")
    ext.add_argument("--failed", action="append", default=[], metavar="STATE")
    ext.add_argument("--skipped", action="append", default=[], metavar="STATE")
    ext.add_argument("--soft-fail", action="store_true", help="a state in --failed skips (exit 99) instead")
    return parser


def external_main(args: argparse.Namespace) -> int:
    """Evaluate one ``external`` check (see the module docstring); prints one line saying what it saw."""
    # Imported here for start-up time: a file or http poke never loads pydantic or SQLAlchemy.
    from kubedag.core.sensors.external import external_outcome, external_summary, parse_logical_date
    from kubedag.core.spec.models import ExternalTaskCheck
    from kubedag.store.db import open_store
    from kubedag.store.external import external_states

    check = ExternalTaskCheck.model_validate({
        "dag": args.dag, "task": args.task, "allowedStates": args.allowed or ["success"],
        "failedStates": args.failed, "skippedStates": args.skipped,
    })
    dates = [parse_logical_date(d, f"--date[{i}]") for i, d in enumerate(args.date)]
    db, sessionmaker = open_store(args.database_url)
    try:
        with sessionmaker() as session:
            states = external_states(session, args.dag, args.task, dates)
    finally:
        db.dispose()
    outcome = external_outcome(check, states)
    message = external_summary(check, dates, states)
    if outcome == "failed" and args.soft_fail:
        print(f"{message}; softFail: skipping", flush=True)
        return SKIPPED
    print(message, file=sys.stderr if outcome == "failed" else sys.stdout, flush=True)
    return {"met": MET, "not_met": NOT_MET, "failed": ERROR, "skipped": SKIPPED}[outcome]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one check from the command line ``argv`` (default ``sys.argv[1:]``) and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on usage errors
    if args.kind == "http" and args.expected_value is not UNSET and args.json_path is None:
        parser.error("--expected-value needs --json-path")
    try:
        if args.kind == "external":
            return external_main(args)
        if args.kind == "file":
            result = file_check(args.path, args.marker)
        else:
            result = http_check(
                args.url,
                method=args.method,
                headers=dict(args.header),
                body=args.body,
                expected_status=args.expected_status or [200],
                json_path=args.json_path,
                expected_value=args.expected_value,
                timeout=args.timeout,
            )
    except Exception as exc:  # noqa: BLE001 - an unexpected error fails the poke, not "not yet"
        print(f"kubedag sensor {args.kind}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return ERROR
    print(result.message, file=sys.stderr if result.code == ERROR else sys.stdout, flush=True)
    return result.code

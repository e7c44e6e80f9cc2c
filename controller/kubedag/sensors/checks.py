"""The built-in ``file`` and ``http`` sensor checks, as a program: ``python -m kubedag.sensors file|http ...``.

A check runs once and exits 0 when its condition is met, 75 (``SENSOR_NOT_MET_EXIT_CODE``) when it is not met
yet, 2 when its command line is malformed (argparse's usage errors; :func:`check_argv` never builds one) and 1
when it cannot be evaluated in a way waiting will not fix: an invalid JSONPath, a URL that is not ``http://``
or ``https://``, an empty path, a marker that is not a plain file name, or an unexpected error. It prints one
line saying what it found to stdout (0 and 75) or what is wrong to stderr (1 and 2). kubedag runs it in its
own image (``python``), locally with ``sys.executable``; :mod:`kubedag.sensors.poke` repeats it in poke mode.

``file`` (Airflow's ``FileSensor`` with ``recursive=True``, plus the ``_SUCCESS`` convention of Hadoop, Spark
and kubedag's supermarket example)::

    python -m kubedag.sensors file --path 'incoming/*/2026-11-01/data-*.csv' --marker _SUCCESS

``external`` (Airflow's ``ExternalTaskSensor``, for local runs: the Kubernetes controller evaluates it in its own
process) reads the metadata DB at ``--database-url`` and exits 0 met, 75 not met, 1 failed (a state in
``--failed``), 99 skipped (a state in ``--skipped``, or in ``--failed`` with ``--soft-fail``)::

    python -m kubedag.sensors external --database-url sqlite:///kubedag.db --dag load-data --task load \
        --date 2026-11-01T00:00:00Z --allowed success --failed failed

``http`` (Airflow's ``HttpSensor``)::

    python -m kubedag.sensors http --url https://api/health --expected-status 200 --json-path '$.status' \\
        --expected-value '"ready"'

This module imports neither pydantic nor SQLAlchemy at import time, so a poke starts fast.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from typing import TYPE_CHECKING, Any

from kubedag.sensors.poke import NOT_MET

if TYPE_CHECKING:
    from kubedag.core.spec.models import SensorSpec

MET = 0
ERROR = 1
USAGE = 2
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_MAX_SHOWN = 5
"""How many found files a message lists before "... and N more"."""
_MAX_VALUE_CHARS = 200


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: ``code`` 0 (met), 75 (not met yet) or 1 (error); ``message`` one line."""

    code: int
    message: str

    @property
    def met(self) -> bool:
        return self.code == MET


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""No ``expected_value`` given (None is JSON ``null``, a value one may expect)."""


def _listing(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:_MAX_SHOWN])
    return shown + (f" and {len(paths) - _MAX_SHOWN} more" if len(paths) > _MAX_SHOWN else "")


def _holds_data(folder: str, marker: str | None) -> bool:
    """Whether ``folder`` holds a file, anywhere beneath it, that is not named ``marker`` (Airflow's os.walk)."""
    for _root, _dirs, files in os.walk(folder):
        if any(name != marker for name in files):
            return True
    return False


def file_check(path: str, marker: str | None = None) -> CheckResult:
    """Whether files matching the glob ``path`` exist (and are complete, with ``marker``).

    Airflow 2.10's ``FileSensor.poke`` with ``recursive=True``: ``glob.glob(path, recursive=True)`` (so ``**``
    matches any depth; ``*`` does not match names starting with a dot); a match counts if it is a file, or a
    directory holding at least one file anywhere beneath it. Relative paths are relative to the working
    directory. Met when something counts and, with ``marker`` (a file name such as ``_SUCCESS``), every
    "folder" of a counted match holds a file of that name: the parent directory of a matched file, the matched
    directory itself. A match that is itself named ``marker`` is not data, and neither are marker files under a
    matched directory.

    Returns:
        ``CheckResult`` 0 with the files (or directories) found, 75 with what is missing, 1 for an empty
        ``path`` or a ``marker`` that is empty or not a plain file name.
    """
    if not path:
        return CheckResult(ERROR, "--path: the glob is empty")
    if marker is not None and (not marker or "/" in marker or marker in (".", "..")):
        return CheckResult(ERROR, f"--marker: {marker!r} is not a file name (e.g. _SUCCESS)")
    found: list[str] = []
    folders: dict[str, None] = {}  # insertion-ordered set
    for match in sorted(glob.glob(path, recursive=True)):
        if os.path.isfile(match):
            if marker is not None and os.path.basename(match) == marker:
                continue
            found.append(match)
            folders[os.path.dirname(match) or "."] = None
        elif os.path.isdir(match) and _holds_data(match, marker):
            found.append(match)
            folders[match] = None
    if not found:
        return CheckResult(NOT_MET, f"no file matches {path}")
    if marker is not None:
        missing = [f for f in folders if not os.path.isfile(os.path.join(f, marker))]
        if missing:
            return CheckResult(
                NOT_MET,
                f"{len(found)} match(es) of {path}, but {marker} is missing in {len(missing)} of "
                f"{len(folders)} folder(s): {_listing(missing)}",
            )
        return CheckResult(MET, f"found {len(found)}: {_listing(found)} ({marker} in {len(folders)} folder(s))")
    return CheckResult(MET, f"found {len(found)}: {_listing(found)}")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value (``1 == 1.0``), but ``true`` is not ``1``; arrays in order; objects by key."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def http_check(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: str | None = None,
    expected_status: Sequence[int] = (200,),
    json_path: str | None = None,
    expected_value: Any = UNSET,
    timeout: float = 10.0,
) -> CheckResult:
    """Whether ``url`` answers as expected: one request with ``urllib`` (redirects followed and proxies taken
    from the environment, as ``requests`` does in Airflow's ``HttpHook``), at most ``timeout`` seconds per
    socket operation; ``body`` is sent UTF-8 encoded.

    Met when the status is in ``expected_status`` and, with ``json_path``, the body parses as JSON and the
    JSONPath (``jsonpath_ng.ext`` syntax, so filters such as ``$.items[?(@.ready == true)]`` work) has at
    least one match, and, with ``expected_value``, every match equals it (:func:`json_equal`; to wait for any
    one match to equal a value, filter for it instead).

    Not met yet (75), everything a service that is still starting may do: connection refused or reset, DNS
    failure, TLS errors, a timeout, a status not in ``expected_status``, a body that is not JSON, no match or a
    different value. This is wider than Airflow's ``HttpSensor``, which pokes again only on 404 (its
    ``response_error_codes_allowlist``) and fails the try on other errors, leaving it to ``retries``: kubedag's
    ``expectedStatus`` names what "ready" is, so anything else is "not yet", until the sensor's ``timeout``.

    Returns:
        ``CheckResult`` 0/75 with the status and the value found, or 1 for a URL that is not http(s), an
        invalid JSONPath or a ``timeout`` that is not positive.
    """
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return CheckResult(ERROR, f"--url: {url!r} is not an http:// or https:// URL")
    if not timeout > 0:
        return CheckResult(ERROR, f"--timeout: must be more than 0 seconds, got {timeout:g}")
    expr = None
    if json_path is not None:
        from jsonpath_ng.ext import parse as jsonpath_parse

        try:
            expr = jsonpath_parse(json_path)
        except Exception as exc:  # noqa: BLE001 - jsonpath-ng raises several unrelated exception types
            return CheckResult(ERROR, f"--json-path: {json_path!r} is not a valid JSONPath: {exc}")
    request = urllib.request.Request(
        url, data=None if body is None else body.encode(), headers=dict(headers or {}), method=method
    )
    what = f"{method} {url}"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
            payload = response.read()
    except urllib.error.HTTPError as exc:  # a 4xx/5xx answer (after redirects): a status like any other
        status = exc.code
        try:
            payload = exc.read()
        except (OSError, HTTPException):
            payload = b""
        finally:
            exc.close()
    except urllib.error.URLError as exc:
        return CheckResult(NOT_MET, f"not yet: {what}: {exc.reason}")
    except (OSError, HTTPException) as exc:  # timeouts, resets, malformed responses
        return CheckResult(NOT_MET, f"not yet: {what}: {type(exc).__name__}: {exc}")
    if status not in expected_status:
        wanted = " or ".join(str(s) for s in expected_status)
        return CheckResult(NOT_MET, f"not yet: {what}: HTTP {status} (want {wanted})")
    if expr is None:
        return CheckResult(MET, f"{what}: HTTP {status}")
    try:
        document = json.loads(payload)
    except ValueError:
        return CheckResult(NOT_MET, f"not yet: {what}: HTTP {status}, but the body is not JSON")
    values = [m.value for m in expr.find(document)]
    if not values:
        return CheckResult(NOT_MET, f"not yet: {what}: HTTP {status}, no match for {json_path}")
    shown = _short(values[0] if len(values) == 1 else values)
    if expected_value is UNSET:
        return CheckResult(MET, f"{what}: HTTP {status}, {json_path} = {shown}")
    if all(json_equal(v, expected_value) for v in values):
        return CheckResult(MET, f"{what}: HTTP {status}, {json_path} = {shown}")
    return CheckResult(
        NOT_MET, f"not yet: {what}: HTTP {status}, {json_path} = {shown} (want {_short(expected_value)})"
    )


# ---------------------------------------------------------------- the program


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
    ext.add_argument("--database-url", default=None, help="the metadata DB (SQLAlchemy URL; default: $KUBEDAG_DATABASE_URL)")
    ext.add_argument("--dag", required=True, help="the other DAG's id in the DB (a local DAG: its name)")
    ext.add_argument("--task", help="its task; without it, the whole run's state is checked")
    ext.add_argument("--date", action="append", required=True, metavar="ISO", help="a logical date; repeat for several")
    ext.add_argument("--allowed", action="append", default=[], metavar="STATE", help="default: success")
    ext.add_argument("--failed", action="append", default=[], metavar="STATE")
    ext.add_argument("--skipped", action="append", default=[], metavar="STATE")
    ext.add_argument("--soft-fail", action="store_true", help="a state in --failed skips (exit 99) instead")
    return parser


SKIPPED = 99
"""``external``: a state in ``--skipped`` (or ``--failed`` with ``--soft-fail``): the task is skipped."""


def external_main(args: argparse.Namespace) -> int:
    """Evaluate one ``external`` check (see the module docstring); prints one line saying what it saw."""
    from kubedag.sensors.external import _parse_date, external_outcome, external_states, external_summary
    from kubedag.core.spec.models import ExternalTaskCheck
    from kubedag.store.db import open_store

    check = ExternalTaskCheck.model_validate({
        "dag": args.dag, "task": args.task, "allowedStates": args.allowed or ["success"],
        "failedStates": args.failed, "skippedStates": args.skipped,
    })
    dates = [_parse_date(d, f"--date[{i}]") for i, d in enumerate(args.date)]
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


def check_argv(sensor: SensorSpec, render: Callable[[str, str], str], python: str) -> list[str]:
    """The command line of the sensor's built-in ``file`` or ``http`` check: ``[python, "-m", "kubedag.sensors",
    ...]``.

    Templated fields are rendered with ``render(template, field)``, ``field`` naming the manifest field for error
    messages: ``sensor.file.path``, ``sensor.file.marker``, ``sensor.http.url``, ``sensor.http.headers.<name>``,
    ``sensor.http.body``. Options are written ``--name=value``, so values starting with ``-`` are not taken for
    options. ``expectedValue`` is passed as JSON when it is not null (the manifest cannot tell ``null`` from
    unset); ``requestTimeout`` in seconds. ``python`` is ``sys.executable`` locally, ``"python"`` in kubedag's
    image. Wrap the result in :func:`kubedag.sensors.poke.poke_command` for ``mode: poke``.

    Raises:
        ValueError: the sensor has no ``file`` or ``http`` check (a command sensor, or ``externalTask``, which
            the controller evaluates itself).
        kubedag.core.templating.TemplateError: a field failed to render (raised by ``render``).
    """
    argv = [python, "-m", "kubedag.sensors"]
    if sensor.file is not None:
        argv += ["file", f"--path={render(sensor.file.path, 'sensor.file.path')}"]
        if sensor.file.marker is not None:
            argv.append(f"--marker={render(sensor.file.marker, 'sensor.file.marker')}")
        return argv
    if sensor.http is not None:
        http = sensor.http
        argv += ["http", f"--url={render(http.url, 'sensor.http.url')}", f"--method={http.method}"]
        for name, value in http.headers.items():
            argv.append(f"--header={name}={render(value, f'sensor.http.headers.{name}')}")
        if http.body is not None:
            argv.append(f"--body={render(http.body, 'sensor.http.body')}")
        argv += [f"--expected-status={status}" for status in http.expected_status]
        if http.json_path is not None:
            argv.append(f"--json-path={http.json_path}")
            if http.expected_value is not None:
                argv.append(f"--expected-value={json.dumps(http.expected_value)}")
        argv.append(f"--timeout={http.request_timeout.total_seconds():g}")
        return argv
    kind = sensor.builtin or "command"
    raise ValueError(f"sensor: a {kind} sensor has no built-in file or http check to run")

"""The built-in ``file`` and ``http`` sensor checks: one poke each, returning a :class:`CheckResult`.

``python -m kubedag.sensors file|http ...`` (:mod:`kubedag.sensors.program`) runs them in a task's pod, in kubedag's
own image (``python``), or locally with ``sys.executable``; :func:`kubedag.core.sensors.check_argv` builds that
command line and :func:`kubedag.core.sensors.poke_command` repeats it in poke mode. A check exits 0 when met,
75 (``SENSOR_NOT_MET_EXIT_CODE``) when not met yet, 1 when it cannot be evaluated in a way waiting will not fix.

``file`` (Airflow's ``FileSensor`` with ``recursive=True``, plus the ``_SUCCESS`` convention of Hadoop, Spark
and kubedag's supermarket example) reads the local file system; ``http`` (Airflow's ``HttpSensor``) makes one
request with ``urllib``. Both sit in this one adapter module, the I/O of the sensor checks: the file check runs
in the same check program as the http one (in a pod or a local process alike, so it is not the local executor's),
and neither imports pydantic nor SQLAlchemy, so a poke starts fast.
"""

from __future__ import annotations

import glob
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any

from kubedag.core.sensors.command import ERROR, MET, NOT_MET

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

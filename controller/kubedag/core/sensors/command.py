"""The command line of a built-in sensor check and the exit codes it answers with.

A check (``python -m kubedag.sensors file|http|external ...``, see :mod:`kubedag.sensors.program`) runs once and
exits :data:`MET` (0) when its condition is met, :data:`NOT_MET` (75, ``SENSOR_NOT_MET_EXIT_CODE``) when it is not
met yet, :data:`USAGE` (2) for a malformed command line, :data:`ERROR` (1) when it cannot be evaluated in a way
waiting will not fix, and for ``external`` :data:`SKIPPED` (99) when the task is to be skipped.
:func:`check_argv` builds the ``file``/``http`` command line from a sensor's spec; it is pure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from kubedag.core.sensors.poke import NOT_MET

if TYPE_CHECKING:  # the check program (python -m kubedag.sensors) never imports pydantic for this module
    from kubedag.core.spec.models import SensorSpec

__all__ = ["ERROR", "HTTP_METHODS", "MET", "NOT_MET", "SKIPPED", "USAGE", "check_argv"]

MET = 0
ERROR = 1
USAGE = 2
SKIPPED = 99
"""``external``: a state in ``--skipped`` (or ``--failed`` with ``--soft-fail``): the task is skipped."""
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
"""The methods an ``http`` check may use."""


def check_argv(sensor: SensorSpec, render: Callable[[str, str], str], python: str) -> list[str]:
    """The command line of the sensor's built-in ``file`` or ``http`` check: ``[python, "-m", "kubedag.sensors",
    ...]``.

    Templated fields are rendered with ``render(template, field)``, ``field`` naming the manifest field for error
    messages: ``sensor.file.path``, ``sensor.file.marker``, ``sensor.http.url``, ``sensor.http.headers.<name>``,
    ``sensor.http.body``. Options are written ``--name=value``, so values starting with ``-`` are not taken for
    options. ``expectedValue`` is passed as JSON when it is not null (the manifest cannot tell ``null`` from
    unset); ``requestTimeout`` in seconds. ``python`` is ``sys.executable`` locally, ``"python"`` in kubedag's
    image. Wrap the result in :func:`kubedag.core.sensors.poke.poke_command` for ``mode: poke``.

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

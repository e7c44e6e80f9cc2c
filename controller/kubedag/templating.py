"""Jinja2 templating of task fields, with Airflow 2.10's template context.

Templates are rendered in a :class:`jinja2.sandbox.SandboxedEnvironment` with
:class:`jinja2.StrictUndefined` (Airflow's default ``template_undefined``), so a misspelt variable is an
error rather than an empty string. Templated fields are a task's ``command``, ``args`` and ``env`` values.

The context mirrors Airflow 2.10's ``TaskInstance.get_template_context``: ``ds``, ``ds_nodash``, ``ts``,
``ts_nodash``, ``ts_nodash_with_tz``, ``logical_date``, ``data_interval_start``, ``data_interval_end``,
``run_id``, ``dag`` (``dag.dag_id``), ``task`` (``task.task_id``), ``ti`` (``ti.try_number``),
``params``, ``dag_run`` (``dag_run.conf``, ``dag_run.run_id``, ``dag_run.run_type``) and ``macros``
(``macros.ds_add``, ``macros.ds_format``, ``macros.datetime``, ``macros.timedelta``). As in Airflow,
date strings (``ds``, ``ts``) are formatted from the logical date in UTC, whatever the DAG's timezone.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

# Jinja2 is imported on first use: a DAG without templates never pays for it.


class TemplateError(ValueError):
    """A template could not be parsed or rendered. ``field`` names the task field, e.g. ``args[2]``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _DateTime(datetime):
    """A datetime that renders as ISO 8601 (``2026-11-01T00:00:00+00:00``), as pendulum's does in Airflow."""

    def __str__(self) -> str:  # pragma: no cover - exercised through templates
        return self.isoformat()


def _as_template_datetime(value: datetime) -> _DateTime:
    value = value.astimezone(timezone.utc)
    return _DateTime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, value.tzinfo
    )


def ds_add(ds: str, days: int) -> str:
    """Add ``days`` (may be negative) to a ``YYYY-MM-DD`` date string, as Airflow's ``macros.ds_add``.

    >>> ds_add("2015-01-01", 5)
    '2015-01-06'
    """
    if not days:
        return str(ds)
    return (datetime.strptime(str(ds), "%Y-%m-%d") + timedelta(days=days)).strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """Reformat a date string, as Airflow's ``macros.ds_format``.

    >>> ds_format("2015-01-01", "%Y-%m-%d", "%m-%d-%y")
    '01-01-15'
    """
    return datetime.strptime(str(ds), input_format).strftime(output_format)


MACROS = SimpleNamespace(
    ds_add=ds_add, ds_format=ds_format, datetime=datetime, timedelta=timedelta, json=SimpleNamespace(dumps=json.dumps)
)


@functools.lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    """The one sandboxed Jinja environment used for parsing and rendering (strict undefined, no autoescape)."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


def check_syntax(template: str) -> None:
    """Parse ``template`` without rendering it.

    Raises:
        ValueError: with Jinja's message and line, e.g. ``template syntax error at line 1: unexpected '}'``.
    """
    if "{" not in template:
        return
    import jinja2

    try:
        environment().parse(template)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"template syntax error at line {exc.lineno}: {exc.message}") from None


@dataclass(frozen=True)
class RunContext:
    """The facts about one task instance try that templates may read.

    Datetimes are timezone-aware; they are converted to UTC for ``ds``/``ts`` as Airflow does.
    ``try_number`` starts at 1 for the first try (Airflow 2.10's value while a task runs).
    """

    dag_id: str
    task_id: str
    run_id: str
    run_type: str
    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    try_number: int = 1
    params: Mapping[str, Any] | None = None
    conf: Mapping[str, Any] | None = None


def template_context(ctx: RunContext) -> dict[str, Any]:
    """Build Airflow 2.10's template context for one try (see the module docstring for the keys).

    ``params`` is the DAG's params updated with ``dag_run.conf``, as Airflow does with its default
    ``dag_run_conf_overrides_params = True``.
    """
    logical_date = _as_template_datetime(ctx.logical_date)
    ds = logical_date.strftime("%Y-%m-%d")
    ts = logical_date.isoformat()
    conf = dict(ctx.conf or {})
    params = {**dict(ctx.params or {}), **conf}
    dag_run = SimpleNamespace(
        run_id=ctx.run_id, run_type=ctx.run_type, conf=conf, logical_date=logical_date, dag_id=ctx.dag_id
    )
    return {
        "ds": ds,
        "ds_nodash": ds.replace("-", ""),
        "ts": ts,
        "ts_nodash": logical_date.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": ts.replace("-", "").replace(":", ""),
        "logical_date": logical_date,
        "execution_date": logical_date,
        "data_interval_start": _as_template_datetime(ctx.data_interval_start),
        "data_interval_end": _as_template_datetime(ctx.data_interval_end),
        "run_id": ctx.run_id,
        "dag": SimpleNamespace(dag_id=ctx.dag_id),
        "task": SimpleNamespace(task_id=ctx.task_id),
        "task_instance_key_str": f"{ctx.dag_id}__{ctx.task_id}__{ds.replace('-', '')}",
        "ti": SimpleNamespace(
            try_number=ctx.try_number, task_id=ctx.task_id, dag_id=ctx.dag_id, run_id=ctx.run_id
        ),
        "params": params,
        "dag_run": dag_run,
        "macros": MACROS,
    }


def render(template: str, context: Mapping[str, Any], field: str = "template") -> str:
    """Render one templated string.

    Raises:
        TemplateError: naming ``field`` for a syntax error, an undefined variable or any error raised
            while rendering (including sandbox security errors).
    """
    if "{" not in template:
        return template
    import jinja2

    try:
        return environment().from_string(template).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(field, f"template syntax error at line {exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(field, f"undefined template variable: {exc.message}") from None
    except Exception as exc:  # noqa: BLE001 - any rendering failure fails only this task instance
        raise TemplateError(field, f"{type(exc).__name__}: {exc}") from None


@dataclass(frozen=True)
class RenderedFields:
    """A task's templated fields after rendering: ``command`` and ``args`` lists, ``env`` name -> value."""

    command: list[str]
    args: list[str]
    env: dict[str, str]


def render_fields(
    command: list[str], args: list[str], env: Mapping[str, str], context: Mapping[str, Any]
) -> RenderedFields:
    """Render a task's command, args and env values.

    Raises:
        TemplateError: for the first field that fails, named like ``command[1]``, ``args[0]`` or ``env.OUT``.
    """
    return RenderedFields(
        command=[render(v, context, f"command[{i}]") for i, v in enumerate(command)],
        args=[render(v, context, f"args[{i}]") for i, v in enumerate(args)],
        env={k: render(v, context, f"env.{k}") for k, v in env.items()},
    )

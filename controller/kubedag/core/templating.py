"""Jinja2 templating of task fields, with Airflow 2.10's template context.

Templates are rendered in a :class:`jinja2.sandbox.SandboxedEnvironment` with
:class:`jinja2.StrictUndefined` (Airflow's default ``template_undefined``), so a misspelt variable is an
error rather than an empty string. Templated fields are a task's ``command``, ``args`` and ``env`` values.

The context mirrors Airflow 2.10's ``TaskInstance.get_template_context``: ``ds``, ``ds_nodash``, ``ts``,
``ts_nodash``, ``ts_nodash_with_tz``, ``logical_date``, ``data_interval_start``, ``data_interval_end``,
``run_id``, ``dag`` (``dag.dag_id``), ``task`` (``task.task_id``), ``ti`` (``ti.try_number``),
``params``, ``dag_run`` (``dag_run.conf``, ``dag_run.run_id``, ``dag_run.run_type``) and ``macros``
(``macros.ds_add``, ``macros.ds_format``, ``macros.datetime``, ``macros.timedelta``); Airflow 2.10's
deprecated ``next_ds``, ``prev_ds``, ``yesterday_ds``, ``tomorrow_ds`` (each with ``_nodash``) and
``next_execution_date``/``prev_execution_date``; ``prev_data_interval_start_success``,
``prev_data_interval_end_success``, ``prev_start_date_success``, ``prev_end_date_success`` (from
:attr:`RunContext.prev_success`, None without a previous successful run); ``inlets``/``outlets`` (empty: kubedag
has no datasets); and the filters ``ds``, ``ds_nodash``, ``ts``, ``ts_nodash``, ``ts_nodash_with_tz``
(:data:`kubedag.core.template_filters.FILTERS`). As in Airflow, date strings (``ds``, ``ts``) are formatted
from the logical date in UTC, whatever the DAG's timezone.

With the providers of :class:`RunContext` it also has Airflow's

* ``ti.xcom_pull(task_ids='extract', key='return_value', default=None)`` (``task_instance`` too): the XCom
  of another task of the same run; a list of task ids gives the list of the values found, in that order;
* ``var.value.NAME``, ``var.value.get('NAME', 'default')``, ``var.json.NAME`` (the value parsed as JSON);
* ``conn.my_db.host`` (and ``login``, ``password``, ``port``, ``schema``, ``conn_type``, ``extra_dejson``,
  ``get_uri()``; ``conn['my-db']`` for an id that is not a Jinja name), parsed as Airflow 2.10 does
  (see :class:`kubedag.core.connections.Connection`).

XCom values and ``var.json`` values that are JSON objects or arrays render as JSON (Airflow renders
Python's repr), so ``{{ ti.xcom_pull('extract') }}`` hands valid JSON to a command while
``{{ ti.xcom_pull('extract')['n'] }}`` still reads a field. Strings and numbers render as themselves, a
missing XCom as ``None`` (Airflow's default). A missing task, variable or connection is an error naming it
and where it should come from. Nothing is looked up or parsed until a template asks for it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType, SimpleNamespace
from typing import TYPE_CHECKING, Any

from kubedag.core import template_limits
from kubedag.core.connections import ConnectionURIError, parse_connection
from kubedag.core.template_filters import FILTERS, ds_filter, ds_nodash_filter
from kubedag.core.timetable import DataInterval, Timetable, next_logical_date, previous_logical_date
from kubedag.core.xcom import NO_XCOM, RETURN_KEY

if TYPE_CHECKING:
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

# Jinja2 is imported on first use: a DAG without templates never pays for it.


class TemplateError(ValueError):
    """A template could not be parsed or rendered. ``field`` names the task field, e.g. ``args[2]``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ContextError(Exception):
    """Raised while rendering when a template asks for something that is not there (a task, a variable, a
    connection) or asks wrongly. The message says what and where it should come from; :func:`render`
    reports it as a :class:`TemplateError` of the field. Providers (see :class:`RunContext`) raise it too."""


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
    """The one sandboxed Jinja environment used for parsing and rendering (strict undefined, no autoescape), with
    every growth of a string or list bounded (:mod:`kubedag.core.template_limits`)."""
    import jinja2

    env = template_limits.environment_class()(undefined=jinja2.StrictUndefined, autoescape=False,
                                              keep_trailing_newline=True)
    env.filters.update(FILTERS)
    return env


@functools.lru_cache(maxsize=1024)
def _compiled(template: str) -> jinja2.Template:
    """``template`` compiled once: every try of a task renders the same strings (compiling is most of the
    cost of rendering). Raises ``jinja2.TemplateSyntaxError``; failures are not cached."""
    return environment().from_string(template)


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
class PreviousRun:
    """The previous successful DAG run of the same DAG, for the ``prev_*_success`` values of the context: as Airflow
    2.10's ``TaskInstance.get_previous_dagrun(state=SUCCESS)``, the ``success`` run with the latest logical date
    before this run's. Datetimes are timezone-aware; ``start_date``/``end_date`` are when it started and ended."""

    logical_date: datetime
    data_interval_start: datetime
    data_interval_end: datetime
    start_date: datetime | None = None
    end_date: datetime | None = None

    @classmethod
    def of(cls, run: Any) -> PreviousRun | None:
        """From any run record with ``logical_date``, ``data_interval_start``/``_end``, ``start_date`` and
        ``end_date`` (a ``kubedag.store.models.DagRunRow``, an engine ``DagRun``); None stays None. A missing data
        interval reads as the logical date."""
        if run is None:
            return None
        return cls(logical_date=run.logical_date, data_interval_start=run.data_interval_start or run.logical_date,
                   data_interval_end=run.data_interval_end or run.logical_date, start_date=run.start_date,
                   end_date=run.end_date)


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
    xcom_pull: Callable[[str, str], Any] | None = field(default=None, compare=False)
    """``(task_id, key) -> value``: the XCom the task pushed under ``key`` in this run (a JSON value), or
    :data:`kubedag.core.xcom.NO_XCOM` if none; may raise :class:`ContextError` (e.g. for a task not in the DAG).
    None: no task has pushed anything (``xcom_pull`` returns its ``default``)."""
    variables: Mapping[str, str] | None = None
    """Airflow Variables, name -> value (``var.value.NAME``); None: no variables."""
    connections: Mapping[str, str] | None = None
    """Connections, conn id -> Airflow connection URI (or JSON form) (``conn.ID``); None: no connections."""
    prev_success: PreviousRun | None = None
    """The DAG's previous successful run (``prev_data_interval_start_success``, ...); None: there is none."""
    timetable: Timetable | None = field(default=None, compare=False)
    """The DAG's timetable, for ``next_ds`` and ``prev_ds`` of a scheduled or backfill run; None: those are None
    (a manual run's are its own logical date whatever this says)."""


class _JsonDict(dict):  # type: ignore[type-arg]
    """A JSON object from an XCom or ``var.json``: renders as JSON in a template."""

    __slots__ = ()

    def __str__(self) -> str:
        return json.dumps(self, ensure_ascii=False)


class _JsonList(list):  # type: ignore[type-arg]
    """A JSON array from an XCom or ``var.json``: renders as JSON in a template."""

    __slots__ = ()

    def __str__(self) -> str:
        return json.dumps(self, ensure_ascii=False)


def _json_value(value: Any) -> Any:
    """``value`` (decoded JSON) with every object and array made to render as JSON."""
    if isinstance(value, dict):
        return _JsonDict({k: _json_value(v) for k, v in value.items()})
    if isinstance(value, list):
        return _JsonList(_json_value(v) for v in value)
    return value


_NOTSET: Any = object()


class _TaskInstance:
    """``ti`` / ``task_instance``: the try's ids and ``xcom_pull``."""

    __slots__ = ("try_number", "task_id", "dag_id", "run_id", "map_index", "_pull")

    def __init__(self, ctx: RunContext) -> None:
        self.try_number = ctx.try_number
        self.task_id = ctx.task_id
        self.dag_id = ctx.dag_id
        self.run_id = ctx.run_id
        self.map_index = -1
        self._pull = ctx.xcom_pull

    def __repr__(self) -> str:
        return f"<TaskInstance: {self.dag_id}.{self.task_id} {self.run_id} [running]>"

    def xcom_pull(
        self,
        task_ids: str | list[str] | tuple[str, ...] | None = None,
        dag_id: str | None = None,
        key: str = RETURN_KEY,
        include_prior_dates: bool = False,
        *,
        map_indexes: Any = None,
        default: Any = None,
        run_id: str | None = None,
    ) -> Any:
        """Airflow 2.10's ``TaskInstance.xcom_pull`` within this run: the XCom ``key`` of ``task_ids``.

        A single task id gives its value, or ``default`` if it pushed none; a list (or tuple) of task ids
        gives the list of the values found, in the order given, skipping tasks that pushed none (Airflow
        returns a sequence of the XComs that exist). Only this DAG and run can be read: another ``dag_id``
        or ``run_id``, ``include_prior_dates`` or ``map_indexes`` raise :class:`ContextError`, and so does
        ``task_ids=None`` (Airflow then searches every task; kubedag needs the task named).
        """
        if task_ids is None:
            raise ContextError("ti.xcom_pull: task_ids is required, e.g. ti.xcom_pull(task_ids='extract')")
        if dag_id is not None and dag_id != self.dag_id:
            raise ContextError(f"ti.xcom_pull: dag_id={dag_id!r}: only this DAG's XComs can be pulled")
        if run_id is not None and run_id != self.run_id:
            raise ContextError(f"ti.xcom_pull: run_id={run_id!r}: only this run's XComs can be pulled")
        if include_prior_dates:
            raise ContextError("ti.xcom_pull: include_prior_dates is not supported: XComs are read from this run")
        if map_indexes is not None:
            raise ContextError("ti.xcom_pull: map_indexes is not supported: kubedag has no mapped tasks")
        if not isinstance(key, str) or not key:
            raise ContextError(f"ti.xcom_pull: key must be a non-empty string, got {key!r}")
        if isinstance(task_ids, str):
            value = self._one(task_ids, key)
            return default if value is NO_XCOM else _json_value(value)
        if not isinstance(task_ids, (list, tuple)) or not all(isinstance(t, str) for t in task_ids):
            raise ContextError(f"ti.xcom_pull: task_ids must be a task id or a list of them, got {task_ids!r}")
        values = (self._one(t, key) for t in task_ids)
        return _JsonList(_json_value(v) for v in values if v is not NO_XCOM)

    def _one(self, task_id: str, key: str) -> Any:
        return NO_XCOM if self._pull is None else self._pull(task_id, key)


class _VariableAccessor:
    """``var.value`` / ``var.json``: Airflow's ``VariableAccessor`` over a name -> value mapping."""

    __slots__ = ("_variables", "_json")

    def __init__(self, variables: Mapping[str, str], deserialize_json: bool) -> None:
        self._variables = variables
        self._json = deserialize_json

    def __repr__(self) -> str:
        return "<VariableAccessor (dynamic access)>"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._get(name)

    def __getitem__(self, name: str) -> Any:
        return self._get(name)

    def get(self, name: str, default: Any = _NOTSET) -> Any:
        """The variable's value (parsed for ``var.json``), or ``default`` (as given) if there is none."""
        if default is not _NOTSET and name not in self._variables:
            return default
        return self._get(name)

    def _get(self, name: str) -> Any:
        where = f"var.{'json' if self._json else 'value'}.{name}"
        try:
            value = self._variables[name]
        except KeyError:
            raise ContextError(
                f"{where}: no variable {name!r}; variables come from the keys of the ConfigMaps and Secrets "
                f"listed in the DAG's spec.variablesFrom"
            ) from None
        if not self._json:
            return value
        try:
            return _json_value(json.loads(value))
        except json.JSONDecodeError as exc:  # the value may be secret: say where, not what
            raise ContextError(
                f"{where}: variable {name!r} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None


class _ConnectionAccessor:
    """``conn``: Airflow's ``ConnectionAccessor`` over a conn id -> URI mapping; each connection is parsed
    on first use."""

    __slots__ = ("_uris", "_parsed")

    def __init__(self, uris: Mapping[str, str]) -> None:
        self._uris = uris
        self._parsed: dict[str, Any] = {}

    def __repr__(self) -> str:
        return "<ConnectionAccessor (dynamic access)>"

    def __getattr__(self, conn_id: str) -> Any:
        if conn_id.startswith("_"):
            raise AttributeError(conn_id)
        return self._get(conn_id)

    def __getitem__(self, conn_id: str) -> Any:
        return self._get(conn_id)

    def get(self, conn_id: str, default_conn: Any = None) -> Any:
        """The connection, or ``default_conn`` if there is none (Airflow's ``conn.get``)."""
        if conn_id not in self._uris:
            return default_conn
        return self._get(conn_id)

    def _get(self, conn_id: str) -> Any:
        conn = self._parsed.get(conn_id)
        if conn is not None:
            return conn
        try:
            uri = self._uris[conn_id]
        except KeyError:
            raise ContextError(
                f"conn.{conn_id}: no connection {conn_id!r}; connections come from the keys of the Secrets "
                f"listed in the DAG's spec.connectionsFrom (key: connection id, value: connection URI)"
            ) from None
        try:
            conn = parse_connection(uri, conn_id)
        except ConnectionURIError as exc:
            raise ContextError(f"conn.{conn_id}: {exc}") from None
        self._parsed[conn_id] = conn
        return conn


_EMPTY: Mapping[str, str] = MappingProxyType({})


def template_context(ctx: RunContext) -> dict[str, Any]:
    """Build Airflow 2.10's template context for one try (see the module docstring for the keys).

    ``params`` is the DAG's params updated with ``dag_run.conf``, as Airflow does with its default
    ``dag_run_conf_overrides_params = True``. ``ti``/``task_instance``, ``var`` and ``conn`` read the
    providers of ``ctx`` only when a template uses them.
    """
    logical_date = _as_template_datetime(ctx.logical_date)
    ds = logical_date.strftime("%Y-%m-%d")
    ts = logical_date.isoformat()
    conf = dict(ctx.conf or {})
    params = {**dict(ctx.params or {}), **conf}
    dag_run = SimpleNamespace(
        run_id=ctx.run_id, run_type=ctx.run_type, conf=conf, logical_date=logical_date, dag_id=ctx.dag_id
    )
    ti = _TaskInstance(ctx)
    variables = ctx.variables if ctx.variables is not None else _EMPTY
    next_date, prev_date = _next_and_prev(ctx)
    prev = ctx.prev_success
    return {
        **_dates(logical_date, next_date, prev_date),
        "prev_data_interval_start_success": _optional_datetime(prev and prev.data_interval_start),
        "prev_data_interval_end_success": _optional_datetime(prev and prev.data_interval_end),
        "prev_start_date_success": _optional_datetime(prev and prev.start_date),
        "prev_end_date_success": _optional_datetime(prev and prev.end_date),
        "prev_execution_date_success": _optional_datetime(prev and prev.logical_date),
        "inlets": [],
        "outlets": [],
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
        "ti": ti,
        "task_instance": ti,
        "params": params,
        "dag_run": dag_run,
        "macros": MACROS,
        "var": SimpleNamespace(value=_VariableAccessor(variables, False), json=_VariableAccessor(variables, True)),
        "conn": _ConnectionAccessor(ctx.connections if ctx.connections is not None else _EMPTY),
    }


def _optional_datetime(value: datetime | None) -> _DateTime | None:
    return None if value is None else _as_template_datetime(value)


def _next_and_prev(ctx: RunContext) -> tuple[datetime | None, datetime | None]:
    """The next and previous logical dates, as Airflow 2.10's ``get_next_execution_date`` and
    ``get_prev_execution_date``: a manual run's (``dag_run.external_trigger``) are its own logical date; a
    scheduled or backfill run's come from the timetable (:func:`~kubedag.core.timetable.next_logical_date` over
    the run's data interval, :func:`~kubedag.core.timetable.previous_logical_date` of its logical date)."""
    if ctx.run_type == "manual":
        return ctx.logical_date, ctx.logical_date
    if ctx.timetable is None:
        return None, None
    interval = DataInterval(ctx.data_interval_start, ctx.data_interval_end)
    return next_logical_date(ctx.timetable, interval), previous_logical_date(ctx.timetable, ctx.logical_date)


def _dates(logical_date: datetime, next_date: datetime | None, prev_date: datetime | None) -> dict[str, Any]:
    """Airflow 2.10's deprecated date strings: ``next_ds``/``prev_ds`` (None without a next/previous date),
    ``yesterday_ds``/``tomorrow_ds`` (the logical date -/+ one day), each with ``_nodash``, and the
    ``next_execution_date``/``prev_execution_date`` datetimes. Formatted in UTC as ``ds``."""
    yesterday, tomorrow = logical_date - timedelta(days=1), logical_date + timedelta(days=1)
    return {
        "next_ds": ds_filter(next_date and next_date.astimezone(timezone.utc)),
        "next_ds_nodash": ds_nodash_filter(next_date and next_date.astimezone(timezone.utc)),
        "prev_ds": ds_filter(prev_date and prev_date.astimezone(timezone.utc)),
        "prev_ds_nodash": ds_nodash_filter(prev_date and prev_date.astimezone(timezone.utc)),
        "next_execution_date": _optional_datetime(next_date),
        "prev_execution_date": _optional_datetime(prev_date),
        "yesterday_ds": ds_filter(yesterday),
        "yesterday_ds_nodash": ds_nodash_filter(yesterday),
        "tomorrow_ds": ds_filter(tomorrow),
        "tomorrow_ds_nodash": ds_nodash_filter(tomorrow),
    }


def render(template: str, context: Mapping[str, Any], field: str = "template") -> str:
    """Render one templated string.

    Raises:
        TemplateError: naming ``field`` for a syntax error, an undefined variable, a missing task, variable
            or connection (:class:`ContextError`) or any error raised while rendering (including sandbox
            security errors).
    """
    if "{" not in template:
        return template
    import jinja2

    try:
        return template_limits.render_bounded(_compiled(template), context)
    except template_limits.RenderTooLarge as exc:
        raise TemplateError(field, str(exc)) from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(field, f"template syntax error at line {exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(field, f"undefined template variable: {exc.message}") from None
    except ContextError as exc:
        raise TemplateError(field, str(exc)) from None
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
        TemplateError: for the first field that fails, named like ``command[1]``, ``args[0]`` or ``env.OUT``;
            also a field rendered larger than :data:`kubedag.core.template_limits.MAX_FIELD_BYTES` (256 KiB), or
            all of them together larger than :data:`~kubedag.core.template_limits.MAX_TASK_BYTES` (1 MiB).
    """
    fields = RenderedFields(
        command=[render(v, context, f"command[{i}]") for i, v in enumerate(command)],
        args=[render(v, context, f"args[{i}]") for i, v in enumerate(args)],
        env={k: render(v, context, f"env.{k}") for k, v in env.items()},
    )
    try:
        template_limits.check_sizes({**{f"command[{i}]": v for i, v in enumerate(fields.command)},
                                     **{f"args[{i}]": v for i, v in enumerate(fields.args)},
                                     **{f"env.{k}": v for k, v in fields.env.items()}})
    except template_limits.RenderTooLarge as exc:
        raise TemplateError(exc.field or "command, args and env", str(exc)) from None
    return fields

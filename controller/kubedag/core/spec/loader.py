"""Load and validate DAG manifests, reporting every problem with its field path.

:func:`parse_dag` validates one manifest object and returns a :class:`~kubedag.core.spec.dag.DAG` or raises
:class:`DAGValidationError` listing *all* problems found: field errors from the pydantic models and
the checks across fields done here (duplicate task names, ``dependsOn`` naming an unknown task, a
task depending on itself, a cycle shown as ``a -> b -> c -> a``, a task with no ``command`` that is not
``kind: empty``, ``endDate`` before ``startDate``, a scheduled DAG without ``startDate``). Paths read as in
the manifest: ``spec.tasks[2].dependsOn[0]``.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pydantic
from pydantic.alias_generators import to_camel
import yaml

from kubedag.core.spec.dag import DAG, build_dag
from kubedag.core.spec.external import external_check_problems
from kubedag.core.spec.models import DAGManifest, parse_datetime


@dataclass(frozen=True, order=True)
class FieldError:
    """One problem: ``path`` like ``spec.tasks[1].retryDelay`` and a human ``message``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class DAGValidationError(ValueError):
    """A manifest is invalid. ``errors`` lists every problem; ``source`` names the file (or None)."""

    def __init__(self, errors: list[FieldError], source: str | None = None) -> None:
        self.errors = errors
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "; ".join(str(e) for e in errors))


def format_loc(loc: tuple[Any, ...]) -> str:
    """Turn a pydantic error location into a manifest path: ``('spec', 'tasks', 2, 'name')`` -> ``spec.tasks[2].name``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and ("[" in part or "(" in part):
            continue  # a union member or validator tag, not a field
        else:
            out += f".{part}" if out else str(part)
    return out


_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}


AIRFLOW_NAMES: dict[str, str] = {
    "schedule_interval": "schedule",
    "scheduleInterval": "schedule",
    "timetable": "schedule",
    "default_args": "defaults",
    "defaultArgs": "defaults",
    "concurrency": "maxActiveTasks",
    "max_active_tis_per_dag": "maxActiveTasks",
    "is_paused_upon_creation": "paused",
    "doc_md": "description",
    "on_failure_callback": "onFailure",
    "on_success_callback": "onSuccess",
    "on_retry_callback": "onRetry",
    "sla_miss_callback": "onSlaMiss",
    "task_id": "name",
    "taskId": "name",
    "bash_command": "command",
    "cmds": "command",
    "arguments": "args",
    "upstream": "dependsOn",
    "depends_on": "dependsOn",
    "env_vars": "env",
    "executor_config": "podTemplate",
    "container_resources": "resources",
}
"""Airflow's names (``DAG``, ``BaseOperator`` and common operator arguments) -> the manifest field that plays
their part, for "did you mean" hints. A hint is given only when the field exists where the name was written."""


def _unwrap_model(annotation: Any) -> type[pydantic.BaseModel] | None:
    """The pydantic model inside an annotation (``X | None``, ``list[X]``, ``Annotated[X, ...]``), or None."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _unwrap_model(arg)
        if found is not None:
            return found
    return None


def _model_at(root: type[pydantic.BaseModel], loc: tuple[Any, ...]) -> type[pydantic.BaseModel] | None:
    """The model holding the field at ``loc`` (a pydantic error location, aliases), or None when it is not a model."""
    model: type[pydantic.BaseModel] | None = root
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue  # an item of a list: the list's model was already taken
        by_alias = {(f.alias or n): f for n, f in model.model_fields.items()}
        field = by_alias.get(part)
        if field is None:
            return None if "[" not in str(part) else model  # a union member tag keeps the model
        model = _unwrap_model(field.annotation)
    return model


def field_suggestion(root: type[pydantic.BaseModel], loc: tuple[Any, ...]) -> str | None:
    """The field the unknown field at ``loc`` was meant to be, among the names that exist there: Airflow's name
    mapped by :data:`AIRFLOW_NAMES`, the camelCase form of a snake_case name, or a close spelling. None if no
    existing field is a likely match (``schedule_interval`` -> ``schedule``; ``retires`` -> ``retries``)."""
    name = loc[-1] if loc else None
    model = _model_at(root, tuple(loc[:-1]))
    if not isinstance(name, str) or model is None or model.model_config.get("extra") != "forbid":
        return None
    fields = [f.alias or n for n, f in model.model_fields.items()]
    for candidate in (AIRFLOW_NAMES.get(name), to_camel(name)):
        if candidate in fields:
            return candidate
    close = difflib.get_close_matches(name, fields, n=1, cutoff=0.75)
    return close[0] if close else None


def _pydantic_errors(exc: pydantic.ValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors(include_url=False):
        message = _MESSAGES.get(err["type"])
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden" and loc == ("spec", "defaults", "podTemplate"):
            message += " (the pod template of every task is spec.podTemplate)"
        elif err["type"] == "extra_forbidden" and (hint := field_suggestion(DAGManifest, loc)) is not None:
            name = str(loc[-1])
            camel = "fields are camelCase: " if "_" in name and hint == to_camel(name) else ""
            message += f" ({camel}did you mean {hint!r}?)"
        if message is None:
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] in ("literal_error",):
                message = f"{message}, got {err.get('input')!r}"
            elif err["type"] == "model_type":  # not "... or instance of SecretReference": class names mean nothing here
                message = "Input should be a valid dictionary"
        errors.append(FieldError(format_loc(tuple(err["loc"])), message))
    return errors


def find_cycle(upstream: Mapping[str, list[str]]) -> list[str] | None:
    """Return one cycle as a list of task names in flow order, first repeated last, or None.

    ``upstream`` maps each task to the names it depends on; unknown names are ignored.
    E.g. ``{"a": ["c"], "b": ["a"], "c": ["b"]}`` -> ``["a", "b", "c", "a"]``.
    """
    down: dict[str, list[str]] = {t: [] for t in upstream}
    for t, ups in upstream.items():
        for u in ups:
            if u in down and u != t:
                down[u].append(t)
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(upstream, white)
    for root in upstream:
        if color[root] != white:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(down[root]))]
        path = [root]
        color[root] = grey
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                color[node] = black
            elif color[child] == grey:
                return path[path.index(child):] + [child]
            elif color[child] == white:
                color[child] = grey
                stack.append((child, iter(down[child])))
                path.append(child)
    return None


def _graph_errors(raw: Any) -> list[FieldError]:
    """Checks across tasks, done on the raw object so they run even when other fields are invalid."""
    spec = raw.get("spec") if isinstance(raw, dict) else None
    tasks = spec.get("tasks") if isinstance(spec, dict) else None
    if not isinstance(tasks, list):
        return []
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    upstream: dict[str, list[str]] = {}
    for i, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("name"), str):
            continue
        name = task["name"]
        if name in seen:
            errors.append(FieldError(f"spec.tasks[{i}].name", f"duplicate task name {name!r} (first at spec.tasks[{seen[name]}])"))
            continue
        seen[name] = i
        deps = task.get("dependsOn") or []
        upstream[name] = [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []
    for i, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("dependsOn"), list):
            continue
        for j, dep in enumerate(task["dependsOn"]):
            if not isinstance(dep, str):
                continue
            if dep == task.get("name"):
                errors.append(FieldError(f"spec.tasks[{i}].dependsOn[{j}]", f"task {dep!r} depends on itself"))
            elif dep not in seen:
                errors.append(FieldError(f"spec.tasks[{i}].dependsOn[{j}]", f"unknown task {dep!r}"))
    cycle = find_cycle(upstream)
    if cycle:
        errors.append(FieldError("spec.tasks", "dependency cycle: " + " -> ".join(cycle)))
    return errors


def _command_errors(raw: Any) -> list[FieldError]:
    """A task with no ``command`` that is not ``kind: empty``, a trigger or a built-in sensor (``file``, ``http``,
    ``externalTask``: they run kubedag's own check). Done on the raw object, beside any other problem."""
    spec = raw.get("spec") if isinstance(raw, dict) else None
    tasks = spec.get("tasks") if isinstance(spec, dict) else None
    errors = []
    for i, task in enumerate(tasks if isinstance(tasks, list) else ()):
        if not isinstance(task, dict) or task.get("command") or task.get("kind") is not None or "trigger" in task:
            continue
        sensor = task.get("sensor")
        if isinstance(sensor, dict) and any(sensor.get(k) is not None for k in ("file", "http", "externalTask")):
            continue
        errors.append(FieldError(f"spec.tasks[{i}].command", "required: the command the task runs (or kind: empty "
                                 "for a task that does nothing, as Airflow's EmptyOperator)"))
    return errors


def _date_errors(raw: Any) -> list[FieldError]:
    spec = raw.get("spec") if isinstance(raw, dict) else None
    if not isinstance(spec, dict):
        return []
    errors = []
    start, end = spec.get("startDate"), spec.get("endDate")
    if spec.get("schedule") not in (None, "") and start is None:
        errors.append(FieldError("spec.startDate", "required when spec.schedule is set (as Airflow requires start_date)"))
    try:
        tz = ZoneInfo(spec.get("timezone") or "UTC")
        s, e = (parse_datetime(v) if v is not None else None for v in (start, end))
    except Exception:  # noqa: BLE001 - the field validators report these
        return errors
    if s is not None and e is not None:
        s, e = (v if v.tzinfo else v.replace(tzinfo=tz) for v in (s, e))
        if e < s:
            errors.append(FieldError("spec.endDate", f"endDate {e.isoformat()} is before startDate {s.isoformat()}"))
    return errors


def _task_errors(manifest: DAGManifest) -> list[FieldError]:
    """Checks of a valid manifest's tasks that need more than one field: an ``externalTask`` sensor's state
    lists (Airflow's ``ExternalTaskSensor.__init__`` checks) and ``expectedValue`` without ``jsonPath``."""
    errors: list[FieldError] = []
    for i, task in enumerate(manifest.spec.tasks):
        where = f"spec.tasks[{i}]"
        sensor = task.sensor
        if sensor is not None and sensor.external_task is not None:
            for problem in external_check_problems(sensor.external_task):
                field, _, message = problem.partition(": ")
                errors.append(FieldError(f"{where}.{field}", message))
        if sensor is not None and sensor.http is not None and sensor.http.expected_value is not None and not sensor.http.json_path:
            errors.append(FieldError(f"{where}.sensor.http.expectedValue", "needs sensor.http.jsonPath: the value is compared with its matches"))
    return errors


def parse_dag(obj: Any, source: str | None = None) -> DAG:
    """Validate one manifest object (a dict from YAML or from the Kubernetes API) into a :class:`DAG`.

    Raises:
        DAGValidationError: listing every problem found, each with its field path.
    """
    errors: list[FieldError] = []
    manifest = None
    if not isinstance(obj, dict):
        raise DAGValidationError([FieldError("", f"a manifest must be a mapping, got {type(obj).__name__}")], source)
    try:
        manifest = DAGManifest.model_validate(obj)
    except pydantic.ValidationError as exc:
        errors.extend(_pydantic_errors(exc))
    errors.extend(_graph_errors(obj))
    errors.extend(_command_errors(obj))
    errors.extend(_date_errors(obj))
    if manifest is not None:
        errors.extend(_task_errors(manifest))
    if errors or manifest is None:
        raise DAGValidationError(sorted(set(errors), key=errors.index), source)
    return build_dag(manifest)


def read_documents(path: str | Path) -> list[Any]:
    """Read every YAML document of a file (``---`` separated), skipping empty ones.

    Raises:
        OSError: if the file cannot be read.
        DAGValidationError: if the YAML is malformed (the message gives line and column).
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DAGValidationError([FieldError("", f"invalid YAML at {where}{problem}")], str(path)) from None


def load_dags(path: str | Path) -> list[DAG]:
    """Load every ``kind: DAG`` document of a file; documents of other kinds are ignored.

    Raises:
        DAGValidationError: for malformed YAML, no DAG document, or the first invalid DAG (with all its errors).
    """
    docs = read_documents(path)
    return [parse_dag(doc, f"{path}" if len(docs) == 1 else f"{path} (document {i + 1})")
            for i, doc in dag_documents(docs, path)]


NO_DAG = "no DAG manifest (kind: DAG) in file"


def dag_documents(docs: list[Any], path: str | Path) -> list[tuple[int, Any]]:
    """The documents of a file that are DAG manifests, as ``(index, document)``: ``kind: DAG``, or no ``kind``
    at all (the DAG's own validation then says ``kind`` is missing). Other kinds (ConfigMaps, Pools, ...) are
    left out.

    Raises:
        DAGValidationError: "no DAG manifest (kind: DAG) in file" when none is left (e.g. only ``kind: Workflow``).
    """
    found = [(i, d) for i, d in enumerate(docs) if not (isinstance(d, dict) and d.get("kind") not in (None, "DAG"))]
    if not found:
        raise DAGValidationError([FieldError("", NO_DAG)], str(path))
    return found


def load_dag(path: str | Path, name: str | None = None) -> DAG:
    """Load the one DAG of a file, or the one called ``name`` when the file holds several.

    Raises:
        DAGValidationError: as :func:`load_dags`, or when ``name`` is missing or ambiguous.
    """
    dags = load_dags(path)
    if name is not None:
        for dag in dags:
            if dag.dag_id == name:
                return dag
        raise DAGValidationError([FieldError("", f"no DAG named {name!r} in file")], str(path))
    if len(dags) > 1:
        names = ", ".join(d.dag_id for d in dags)
        raise DAGValidationError([FieldError("", f"file holds several DAGs ({names}); name one")], str(path))
    return dags[0]


def validate_file(path: str | Path) -> list[FieldError]:
    """Every problem of every DAG document in a file, or ``[]`` when all are valid. Never raises for bad content."""
    try:
        docs = read_documents(path)
    except DAGValidationError as exc:
        return exc.errors
    except OSError as exc:
        return [FieldError("", f"cannot read file: {exc.strerror or exc}")]
    errors: list[FieldError] = []
    try:
        found = dag_documents(docs, path)
    except DAGValidationError as exc:
        return exc.errors
    for i, doc in found:
        try:
            parse_dag(doc)
        except DAGValidationError as exc:
            prefix = f"document {i + 1}: " if len(docs) > 1 else ""
            errors.extend(FieldError(prefix + e.path if prefix else e.path, e.message) for e in exc.errors)
    return errors


def utcnow() -> datetime:  # pragma: no cover - thin clock adapter for the CLI
    """The current time, UTC-aware. Only adapters call this; the core takes ``now`` as an argument."""
    from datetime import timezone

    return datetime.now(timezone.utc)

"""The DAG manifest (``apiVersion: kubedag.io/v1alpha1``, ``kind: DAG``) as pydantic v2 models.

Numbers and booleans are strict (``"3"`` is not 3, ``"yes"`` is not true), as the Kubernetes API server
checks JSON types, so ``kubedag dags validate`` and ``kubectl apply`` agree. Field names are camelCase in YAML (Kubernetes convention) and snake_case in Python. Unknown fields are
rejected everywhere except in ``metadata`` and ``status``, which Kubernetes owns. These models check
each field on its own (types, names, cron, timezone, durations, dates, Jinja syntax); checks across
fields (duplicate names, unknown ``dependsOn``, cycles, ``endDate`` before ``startDate``) live in
:mod:`kubedag.spec.loader`, which reports every problem of a manifest at once.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, StrictBool, StrictInt
from pydantic.alias_generators import to_camel

from kubedag import templating, timetable
from kubedag.spec.durations import format_duration, parse_duration
from kubedag.states import TriggerRule

API_VERSION = "kubedag.io/v1alpha1"

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
TASK_NAME = re.compile(r"^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
MAX_NAME = 63


def _dns1123_label(value: str) -> str:
    if len(value) > MAX_NAME or not DNS1123_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a valid DNS-1123 label: at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def _task_name(value: str) -> str:
    if len(value) > MAX_NAME or not TASK_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid task name: at most 63 letters, digits, '-', '_' or '.', starting and "
            "ending with a letter or digit (it becomes a Kubernetes label value)"
        )
    return value


def _env_name(value: str) -> str:
    if not ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not a valid environment variable name")
    return value


def _template(value: str) -> str:
    templating.check_syntax(value)
    return value


def _schedule(value: str | None) -> str | None:
    if value is not None:
        timetable.validate_schedule(value)
    return value


def _timezone(value: str) -> str:
    timetable.validate_timezone(value)
    return value


def parse_datetime(value: object) -> datetime:
    """Parse a manifest date: ISO 8601 date or date-time, ``Z`` allowed; naive values stay naive.

    A date alone means midnight. Naive results are localised to the DAG's ``timezone`` later.

    Raises:
        ValueError: quoting the value, for anything that is not an ISO 8601 date or date-time.
    """
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"invalid date {value!r}: expected ISO 8601 such as '2026-11-01' or '2026-11-01T16:00:00Z'")


Duration = Annotated[
    timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, when_used="json")
]
"""A duration such as ``30s``, ``5m``, ``1h30m``, ``2d`` (see :mod:`kubedag.spec.durations`)."""
DateTimeField = Annotated[datetime, BeforeValidator(parse_datetime)]
TemplatedStr = Annotated[str, AfterValidator(_template)]
DAGName = Annotated[str, AfterValidator(_dns1123_label)]
TaskName = Annotated[str, AfterValidator(_task_name)]
EnvName = Annotated[str, AfterValidator(_env_name)]
Quantity = str | int | float


class StrictModel(BaseModel):
    """Base of manifest models: camelCase aliases, unknown fields rejected, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False, alias_generator=to_camel)


class EnvVar(StrictModel):
    """One environment variable; ``value`` is a Jinja template."""

    name: EnvName
    value: TemplatedStr = ""


def _env_list(value: Any) -> Any:
    """Accept ``env`` as a mapping ``{NAME: value}`` or as Kubernetes' list ``[{name, value}]``."""
    if isinstance(value, dict):
        return [{"name": k, "value": "" if v is None else str(v) if not isinstance(v, str) else v} for k, v in value.items()]
    return value


EnvList = Annotated[list[EnvVar], BeforeValidator(_env_list)]


class Resources(StrictModel):
    """Container resources, as Kubernetes' ``ResourceRequirements`` (``cpu: 500m``, ``memory: 1Gi``)."""

    requests: dict[str, Quantity] = Field(default_factory=dict)
    limits: dict[str, Quantity] = Field(default_factory=dict)


class TaskDefaults(StrictModel):
    """Airflow's ``default_args``: values every task inherits unless it sets its own.

    ``None`` means "not set here". Effective defaults when nobody sets them are Airflow 2.10's:
    ``retries`` 0, ``retryDelay`` 300 s, no exponential backoff, no ``maxRetryDelay``, no timeout.
    """

    image: str | None = None
    env: EnvList = Field(default_factory=list)
    resources: Resources | None = None
    retries: Annotated[StrictInt, Field(ge=0)] | None = None
    retry_delay: Duration | None = None
    retry_exponential_backoff: StrictBool | None = None
    max_retry_delay: Duration | None = None
    execution_timeout: Duration | None = None


class TaskSpec(TaskDefaults):
    """One task: a command run in its own process or pod. ``command``/``args``/``env`` are templated."""

    name: TaskName
    command: list[TemplatedStr] = Field(default_factory=list)
    args: list[TemplatedStr] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    trigger_rule: TriggerRule = TriggerRule.ALL_SUCCESS


class DAGSpec(StrictModel):
    """The ``spec`` of a DAG; fields and defaults as Airflow 2.10's ``DAG`` arguments.

    ``schedule`` null (the default) means manual runs only (Airflow's ``schedule=None``);
    ``catchup`` defaults to true (Airflow 2's ``catchup_by_default``); ``maxActiveRuns`` and
    ``maxActiveTasks`` default to 16 (Airflow's ``max_active_runs_per_dag`` / ``max_active_tasks_per_dag``).
    Naive ``startDate``/``endDate`` are read in ``timezone``.
    """

    description: str | None = None
    schedule: Annotated[str | None, AfterValidator(_schedule)] = None
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"
    start_date: DateTimeField | None = None
    end_date: DateTimeField | None = None
    catchup: StrictBool = True
    paused: StrictBool = False
    max_active_runs: Annotated[StrictInt, Field(ge=1)] = 16
    max_active_tasks: Annotated[StrictInt, Field(ge=1)] = 16
    tags: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    defaults: TaskDefaults = Field(default_factory=TaskDefaults)
    tasks: Annotated[list[TaskSpec], Field(min_length=1)]


class KubeMeta(BaseModel):
    """The part of Kubernetes' ``ObjectMeta`` kubedag reads; other metadata fields are kept, not checked.

    ``name`` may be absent (an object created with ``generateName``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class ObjectMeta(KubeMeta):
    """A DAG's metadata: its ``name`` is required and is a DNS-1123 label (it names runs and pods)."""

    name: DAGName


class DAGManifest(StrictModel):
    """A whole DAG manifest as ``kubectl apply`` takes it."""

    api_version: Literal["kubedag.io/v1alpha1"]
    kind: Literal["DAG"]
    metadata: ObjectMeta
    spec: DAGSpec
    status: dict[str, Any] | None = None

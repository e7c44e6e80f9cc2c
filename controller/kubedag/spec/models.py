"""The DAG manifest (``apiVersion: kubedag.io/v1alpha1``, ``kind: DAG``) as pydantic v2 models.

Numbers and booleans are strict (``"3"`` is not 3, ``"yes"`` is not true), as the Kubernetes API server
checks JSON types, so ``kubedag dags validate`` and ``kubectl apply`` agree. Field names are camelCase in
YAML (Kubernetes convention) and snake_case in Python. Unknown fields are rejected everywhere except in
``metadata`` and ``status``, which Kubernetes owns, and in the Kubernetes objects passed through to pods
(``affinity``, ``tolerations``, ``podTemplate.spec``, and ``volumes``/``volumeMounts`` items beyond the
``name``/``mountPath`` checked here), which the API server validates when it creates a pod. These models
check each field on its own (types, names, cron, timezone, durations, dates, Jinja syntax, label keys and
values); checks across fields (duplicate names, unknown ``dependsOn``, cycles, ``endDate`` before
``startDate``) live in
:mod:`kubedag.spec.loader`, which reports every problem of a manifest at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_SUBDOMAIN = 253
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
"""A label key's name part (after the optional ``prefix/``) and a non-empty label value."""


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


def _dns1123_subdomain(value: str) -> str:
    if len(value) > MAX_SUBDOMAIN or not DNS1123_SUBDOMAIN.match(value):
        raise ValueError(
            f"{value!r} is not a valid DNS-1123 subdomain: at most 253 lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return value


def _qualified_name_problem(key: str) -> str | None:
    """Why ``key`` is not a Kubernetes label or annotation key (``[prefix/]name``), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > MAX_SUBDOMAIN or not DNS1123_SUBDOMAIN.match(prefix)):
        return f"key {key!r}: the prefix before '/' must be a DNS-1123 subdomain"
    if len(name) > MAX_NAME or not LABEL_NAME.match(name):
        return (
            f"key {key!r} is not a valid label or annotation key: [prefix/]name, the name at most 63 letters, "
            "digits, '-', '_' or '.', starting and ending with a letter or digit"
        )
    return None


def _labels(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        if problem := _qualified_name_problem(key):
            raise ValueError(problem)
        if val and (len(val) > MAX_NAME or not LABEL_NAME.match(val)):
            raise ValueError(
                f"value {val!r} of {key!r} is not a valid label value: at most 63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit, or empty"
            )
    return value


def _annotations(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if problem := _qualified_name_problem(key):
            raise ValueError(problem)
    return value


def _unique_by(key: str, what: str) -> Callable[[list[Any] | None], list[Any] | None]:
    """An after-validator rejecting two items of a list with the same ``key`` (Kubernetes rejects them too)."""

    def check(items: list[Any] | None) -> list[Any] | None:
        seen: dict[Any, int] = {}
        for i, item in enumerate(items or []):
            value = getattr(item, key)
            if value in seen:
                raise ValueError(f"duplicate {what} {value!r} at [{i}] (first at [{seen[value]}])")
            seen[value] = i
        return items

    return check


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
DNS1123Label = Annotated[str, AfterValidator(_dns1123_label)]
DNS1123Subdomain = Annotated[str, AfterValidator(_dns1123_subdomain)]
Labels = Annotated[dict[str, str], AfterValidator(_labels)]
Annotations = Annotated[dict[str, str], AfterValidator(_annotations)]
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


class KubeObject(BaseModel):
    """A Kubernetes sub-object kubedag passes through to the pod: the fields kubedag reads are checked,
    the others are kept as written (the API server validates them when it creates the pod)."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=False, alias_generator=to_camel)


class Volume(KubeObject):
    """A pod volume, as Kubernetes' ``Volume``: a ``name`` and one volume source (``hostPath``,
    ``emptyDir``, ``persistentVolumeClaim``, ``configMap``, ``secret``, ...)."""

    name: DNS1123Label = Field(description="The volume's name, which `volumeMounts` refer to: a DNS-1123 label.")


class VolumeMount(KubeObject):
    """A volume mounted into the task's container, as Kubernetes' ``VolumeMount`` (``readOnly``,
    ``subPath``, ... are kept as written)."""

    name: DNS1123Label = Field(description="The `name` of one of the pod's volumes.")
    mount_path: Annotated[str, Field(min_length=1)] = Field(description="Where the volume appears in the container.")


class SecretReference(StrictModel):
    """A Secret of the DAG's namespace, as Kubernetes' ``LocalObjectReference``."""

    name: DNS1123Subdomain


ImagePullPolicy = Literal["Always", "IfNotPresent", "Never"]


class PodTemplateMeta(StrictModel):
    """Labels and annotations added to the pod's (kubedag's own ``kubedag.io/*`` keys win)."""

    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)


class PodTemplate(StrictModel):
    """A partial pod merged over the one kubedag generates (see :func:`kubedag.k8s.podspec.merge_pod_template`):
    maps merge, lists of named things merge by name (a container named ``base`` is the task's own, others
    are added as sidecars), other lists and scalars replace. ``spec`` is a Kubernetes ``PodSpec``, checked
    by the API server when it creates the pod."""

    metadata: PodTemplateMeta = Field(default_factory=PodTemplateMeta)
    spec: dict[str, Any] = Field(default_factory=dict)


class TaskDefaults(StrictModel):
    """Airflow's ``default_args``: values every task inherits unless it sets its own.

    ``None`` means "not set here". Effective defaults when nobody sets them are Airflow 2.10's:
    ``retries`` 0, ``retryDelay`` 300 s, no exponential backoff, no ``maxRetryDelay``, no timeout.
    A task's own value replaces the default's whole (an empty ``volumes: []`` drops the default's
    volumes), except ``env``, which merges by name. The Kubernetes fields (``nodeSelector`` to
    ``imagePullPolicy``) are ignored by local runs.
    """

    image: str | None = None
    env: EnvList = Field(default_factory=list)
    resources: Resources | None = None
    retries: Annotated[StrictInt, Field(ge=0)] | None = None
    retry_delay: Duration | None = None
    retry_exponential_backoff: StrictBool | None = None
    max_retry_delay: Duration | None = None
    execution_timeout: Duration | None = None
    node_selector: Labels | None = Field(None, description="Node labels the pod must run on (the pod's `nodeSelector`).")
    tolerations: list[dict[str, Any]] | None = Field(None, description="The pod's `tolerations` (Kubernetes' `Toleration`s).")
    affinity: dict[str, Any] | None = Field(None, description="The pod's `affinity` (Kubernetes' `Affinity`).")
    service_account_name: DNS1123Subdomain | None = Field(None, description="The ServiceAccount the pod runs as.")
    volumes: Annotated[list[Volume], AfterValidator(_unique_by("name", "volume name"))] | None = Field(
        None, description="The pod's `volumes`."
    )
    volume_mounts: Annotated[list[VolumeMount], AfterValidator(_unique_by("mount_path", "mountPath"))] | None = Field(
        None, description="Volumes mounted into the task's container; each `name` is one of the pod's volumes."
    )
    image_pull_secrets: list[SecretReference] | None = Field(
        None, description="Secrets holding registry credentials for the image (`[{name: regcred}]`)."
    )
    image_pull_policy: ImagePullPolicy | None = Field(
        None, description="`Always`, `IfNotPresent` or `Never`. Default: Kubernetes' (`Always` for `:latest`)."
    )


class TaskSpec(TaskDefaults):
    """One task: a command run in its own process or pod. ``command``/``args``/``env`` are templated."""

    name: TaskName
    command: list[TemplatedStr] = Field(default_factory=list)
    args: list[TemplatedStr] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    trigger_rule: TriggerRule = TriggerRule.ALL_SUCCESS
    pod_template: PodTemplate | None = Field(
        None, description="Merged over the task's pod after `spec.podTemplate` (`{metadata: {labels, annotations}, spec}`)."
    )


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
    pod_template: PodTemplate | None = Field(
        None, description="Merged over every task's pod, before the task's own `podTemplate` "
        "(`{metadata: {labels, annotations}, spec}`)."
    )
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

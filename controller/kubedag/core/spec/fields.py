"""The building blocks of manifest models: Kubernetes names and labels, durations, dates, templated strings, the
strict base model, and the Kubernetes sub-objects passed through to pods (``env``, ``resources``, ``volumes``,
``volumeMounts``, ``imagePullSecrets``, ``podTemplate``). Each checks one field on its own; see
:mod:`kubedag.core.spec.models` for the DAG manifest they make up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

from kubedag.core import templating, timetable
from kubedag.core.durations import format_duration, parse_duration

API_VERSION = "kubedag.io/v1alpha1"

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
TASK_NAME = re.compile(r"^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
MAX_NAME = 63
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_SUBDOMAIN = 253
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
"""A label key's name part (after the optional ``prefix/``) and a non-empty label value."""


def _name_check(pattern: re.Pattern[str], max_len: int, what: str) -> Callable[[str], str]:
    """An after-validator: ``value`` unchanged if it is at most ``max_len`` long and matches ``pattern``, else
    ``ValueError("'<value>' is not a valid <what>")``."""

    def check(value: str) -> str:
        if len(value) > max_len or not pattern.match(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        return value

    return check


_dns1123_label = _name_check(DNS1123_LABEL, MAX_NAME, "DNS-1123 label: at most 63 lowercase letters, digits and "
                             "'-', starting and ending with a letter or digit")
_task_name = _name_check(TASK_NAME, MAX_NAME, "task name: at most 63 letters, digits, '-', '_' or '.', starting and "
                         "ending with a letter or digit (it becomes a Kubernetes label value)")
_dns1123_subdomain = _name_check(DNS1123_SUBDOMAIN, MAX_SUBDOMAIN, "DNS-1123 subdomain: at most 253 lowercase "
                                 "letters, digits, '-' and '.', starting and ending with a letter or digit")


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
"""A duration such as ``30s``, ``5m``, ``1h30m``, ``2d`` (see :mod:`kubedag.core.durations`)."""
DateTimeField = Annotated[datetime, BeforeValidator(parse_datetime)]
TemplatedStr = Annotated[str, AfterValidator(_template)]
DAGName = Annotated[str, AfterValidator(_dns1123_label)]
DNS1123Label = Annotated[str, AfterValidator(_dns1123_label)]
DNS1123Subdomain = Annotated[str, AfterValidator(_dns1123_subdomain)]
Labels = Annotated[dict[str, str], AfterValidator(_labels)]
Annotations = Annotated[dict[str, str], AfterValidator(_annotations)]
TaskName = Annotated[str, AfterValidator(_task_name)]
EnvName = Annotated[str, AfterValidator(_env_name)]
QUANTITY = re.compile(
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
"""Kubernetes' quantity grammar (``resource.Quantity``'s OpenAPI pattern in k8s.io/apimachinery): a number with an
optional binary (``Ki`` ... ``Ei``), decimal (``n u m k M G T P E``) or exponent suffix."""


def _quantity(value: str | int | float) -> str | int | float:
    """A resource quantity (``500m``, ``2``, ``1.5Gi``, ``1e3``) as Kubernetes reads it, not negative."""
    if isinstance(value, str) and not QUANTITY.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 1.5, 512Mi, 1Gi)")
    if (isinstance(value, str) and value.startswith("-")) or (not isinstance(value, str) and value < 0):
        raise ValueError(f"{value!r} is negative; a resource quantity must be 0 or more")
    return value


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 1.5, 512Mi, 1Gi)")
    return value


Quantity = Annotated[str | int | float, BeforeValidator(_not_bool), AfterValidator(_quantity)]
Owner = Annotated[str, Field(min_length=1)]
Emails = Annotated[str, Field(min_length=1)] | list[Annotated[str, Field(min_length=1)]]
"""An address or a list of them, as Airflow's ``email`` (``str | Iterable[str]``)."""
TAG_MAX_LEN = 100
"""Airflow 2.10's ``TAG_MAX_LEN``: a tag is at most 100 characters."""


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




def _one_of(model: BaseModel, names: tuple[str, ...], *, required: bool = True) -> None:
    """Raise ValueError unless exactly one (at most one when not ``required``) of ``names`` is set."""
    given = [n for n in names if getattr(model, n) is not None]
    aliases = [to_camel(n) for n in names]
    if len(given) > 1:
        raise ValueError(f"set only one of {', '.join(aliases)} (got {', '.join(to_camel(n) for n in given)})")
    if required and not given:
        raise ValueError(f"set one of {', '.join(aliases)}")

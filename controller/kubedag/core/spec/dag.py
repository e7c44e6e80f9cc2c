"""The resolved DAG the engine, the timetable and the executors work on.

:func:`build_dag` turns a validated :class:`~kubedag.core.spec.models.DAGManifest` into an immutable
:class:`DAG`: ``defaults`` merged into each task (Airflow's ``default_args``), dates localised to the
DAG's timezone and converted to UTC, tasks in a topological order, and both edge directions indexed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from kubedag.core import timetable
from kubedag.core.spec.models import DAGManifest, Notifier, Resources, SensorSpec, TriggerSpec
from kubedag.core.states import TriggerRule

DEFAULT_RETRY_DELAY = timedelta(seconds=300)
"""Airflow 2.10's ``[core] default_task_retry_delay``."""
DEFAULT_POOL = "default-pool"
"""The pool of tasks that name none: Airflow's ``default_pool`` (a DNS-1123 name here, as a Pool object's)."""
DEFAULT_POOL_SLOTS = 128
"""Slots of ``default-pool`` while no Pool object of that name exists (Airflow's ``[core] default_pool_task_slot_count``)."""


@dataclass(frozen=True)
class Task:
    """A task with the DAG's defaults applied. Durations are timedeltas; ``env`` maps name -> template.

    The Kubernetes fields are JSON data in the manifest's camelCase (``tolerations``, ``affinity``,
    ``volumes``, ``volume_mounts`` items and ``pod_template`` as written, Kubernetes' own shapes);
    only :mod:`kubedag.k8s.podspec` reads them. Treat nested values as read-only.
    """

    task_id: str
    command: tuple[str, ...]
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None
    resources: Resources | None = None
    upstream: tuple[str, ...] = ()
    trigger_rule: TriggerRule = TriggerRule.ALL_SUCCESS
    retries: int = 0
    retry_delay: timedelta = DEFAULT_RETRY_DELAY
    retry_exponential_backoff: bool = False
    max_retry_delay: timedelta | None = None
    execution_timeout: timedelta | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    affinity: Mapping[str, Any] | None = None
    service_account_name: str | None = None
    volumes: tuple[Mapping[str, Any], ...] = ()
    volume_mounts: tuple[Mapping[str, Any], ...] = ()
    image_pull_secrets: tuple[str, ...] = ()
    """Names of Secrets of the DAG's namespace."""
    image_pull_policy: str | None = None
    pod_template: Mapping[str, Any] | None = None
    """The task's own ``podTemplate`` (``{metadata: {labels, annotations}, spec}``), merged after the DAG's."""
    pool: str = DEFAULT_POOL
    pool_slots: int = 1
    priority_weight: int = 1
    weight_rule: str = "downstream"
    sla: timedelta | None = None
    on_failure: tuple[Notifier, ...] = ()
    on_success: tuple[Notifier, ...] = ()
    on_retry: tuple[Notifier, ...] = ()
    sensor: SensorSpec | None = None
    """Set for a sensor: its mode, poke interval, timeout and, for a built-in, the check."""
    trigger: TriggerSpec | None = None
    """Set for a task that triggers a run of another DAG (no command, no pod)."""
    branch: bool = False
    multiple_outputs: bool = False
    empty: bool = False
    """``kind: empty`` (Airflow's ``EmptyOperator``): the engine sets it ``success`` when its trigger rule passes,
    with no process, pod, pool slot or log (see :func:`kubedag.core.engine.plan`)."""
    owner: str | None = None
    """Airflow's ``owner``: the task's own, else ``defaults.owner``, else ``spec.owner``; None when nobody set one."""
    email: tuple[str, ...] = ()
    """Airflow's ``email``, as a tuple of addresses (the task's own, else the defaults', else the DAG's)."""

    @property
    def runs_in_controller(self) -> bool:
        """True for tasks the controller (locally, the runner) carries out itself, with no pod or process:
        triggers and ``externalTask`` sensors (as Airflow's triggerer does for deferred operators)."""
        return self.trigger is not None or (self.sensor is not None and self.sensor.external_task is not None)

    @property
    def max_tries(self) -> int:
        """Tries allowed in total: ``retries + 1`` (Airflow's ``max_tries`` counts retries only)."""
        return self.retries + 1


@dataclass(frozen=True)
class DAG:
    """A DAG ready to schedule and run. Datetimes are UTC-aware; ``tasks`` is in topological order."""

    dag_id: str
    tasks: Mapping[str, Task]
    namespace: str | None = None
    description: str | None = None
    schedule: str | None = None
    timezone: str = "UTC"
    start_date: datetime | None = None
    end_date: datetime | None = None
    catchup: bool = True
    paused: bool = False
    max_active_runs: int = 16
    max_active_tasks: int = 16
    params: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    """``spec.tags`` (Airflow's ``tags``), in the manifest's order."""
    owner: str | None = None
    """Airflow's ``DAG.owner``: the distinct owners of its tasks joined by ``", "`` (in task order); None when no
    task has one (Airflow would say its ``default_owner``, ``airflow``)."""
    email: tuple[str, ...] = ()
    """``spec.email`` (else ``spec.defaults.email``) as a tuple of addresses: kept as metadata, kubedag sends no mail."""
    pod_template: Mapping[str, Any] | None = None
    """``spec.podTemplate``: merged over every task's pod, before the task's own."""
    dagrun_timeout: timedelta | None = None
    on_failure: tuple[Notifier, ...] = ()
    on_success: tuple[Notifier, ...] = ()
    on_sla_miss: tuple[Notifier, ...] = ()
    variables_from: tuple[Mapping[str, Any], ...] = ()
    """``spec.variablesFrom`` as written: ``{configMapRef: {name}}`` or ``{secretRef: {name}}`` items."""
    connections_from: tuple[Mapping[str, Any], ...] = ()
    """``spec.connectionsFrom`` as written: ``{secretRef: {name}}`` items."""
    spec: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The manifest's ``spec`` as JSON-ready camelCase data, kept for the metadata DB."""

    @cached_property
    def priority_weights(self) -> Mapping[str, int]:
        """task_id -> effective priority weight, as Airflow 2.10's ``priority_weight_total``: ``downstream``
        (default) adds the weights of every task downstream, ``upstream`` of every task upstream,
        ``absolute`` is the task's own. Ready tries start in decreasing order of it."""
        out: dict[str, int] = {}
        for task_id, task in self.tasks.items():
            if task.weight_rule == "absolute":
                out[task_id] = task.priority_weight
                continue
            edges = self.downstream if task.weight_rule == "downstream" else {t: v.upstream for t, v in self.tasks.items()}
            seen: set[str] = set()
            stack = list(edges[task_id])
            while stack:
                t = stack.pop()
                if t not in seen:
                    seen.add(t)
                    stack.extend(edges[t])
            out[task_id] = task.priority_weight + sum(self.tasks[t].priority_weight for t in seen)
        return MappingProxyType(out)

    @cached_property
    def downstream(self) -> Mapping[str, tuple[str, ...]]:
        """task_id -> the tasks that list it in ``dependsOn``, in topological order."""
        down: dict[str, list[str]] = {t: [] for t in self.tasks}
        for task in self.tasks.values():
            for up in task.upstream:
                down[up].append(task.task_id)
        return MappingProxyType({k: tuple(v) for k, v in down.items()})

    @cached_property
    def leaves(self) -> tuple[str, ...]:
        """Tasks with no downstream task: they decide the run's final state (Airflow's ``DagRun.update_state``)."""
        return tuple(t for t, d in self.downstream.items() if not d)

    @cached_property
    def timetable(self) -> timetable.Timetable:
        """The timetable for ``schedule`` in ``timezone`` (see :func:`kubedag.core.timetable.timetable_for`)."""
        return timetable.timetable_for(self.schedule, self.timezone)

    @property
    def restriction(self) -> timetable.TimeRestriction:
        """Airflow's ``TimeRestriction(start_date, end_date, catchup)`` for the scheduler."""
        return timetable.TimeRestriction(earliest=self.start_date, latest=self.end_date, catchup=self.catchup)


def to_utc(value: datetime | None, tz: str) -> datetime | None:
    """``value`` in UTC, a naive one read in the IANA timezone ``tz`` (as manifest dates are); None stays None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    return value.astimezone(timezone.utc)


def topological_order(upstream: Mapping[str, list[str] | tuple[str, ...]]) -> list[str]:
    """Kahn's algorithm, stable in declaration order.

    ``upstream`` maps each task to the tasks it depends on (all keys). Raises ValueError on a cycle.
    """
    remaining = {t: set(u) for t, u in upstream.items()}
    order: list[str] = []
    ready = [t for t, u in remaining.items() if not u]
    down: dict[str, list[str]] = {t: [] for t in upstream}
    for t, ups in upstream.items():
        for u in ups:
            down[u].append(t)
    while ready:
        t = ready.pop(0)
        order.append(t)
        for d in down[t]:
            remaining[d].discard(t)
            if not remaining[d]:
                ready.append(d)
    if len(order) != len(upstream):
        raise ValueError("the task graph has a cycle")
    return order


def _first(*values: Any) -> Any:
    """The first value that is not None (a task's own value, then the default's), or None."""
    return next((v for v in values if v is not None), None)


def _json(model: BaseModel | None) -> dict[str, Any] | None:
    return None if model is None else model.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _emails(value: str | list[str] | None) -> tuple[str, ...]:
    """Airflow's ``email`` (an address or a list of them) as a tuple."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def build_dag(manifest: DAGManifest) -> DAG:
    """Resolve a validated manifest (see :func:`kubedag.core.spec.loader.parse_dag`) into a :class:`DAG`.

    A task's own value replaces the default's (Airflow's ``default_args``), even an empty one;
    ``env`` merges by name instead, the task's value winning.

    Raises:
        ValueError: if the graph has a cycle or unknown dependencies (the loader reports these first).
    """
    spec = manifest.spec
    d = spec.defaults
    default_env = {e.name: e.value for e in d.env}
    tasks: dict[str, Task] = {}
    for t in spec.tasks:
        tasks[t.name] = Task(
            task_id=t.name,
            command=tuple(t.command),
            args=tuple(t.args),
            env=MappingProxyType({**default_env, **{e.name: e.value for e in t.env}}),
            image=t.image or d.image,
            resources=t.resources or d.resources,
            upstream=tuple(dict.fromkeys(t.depends_on)),
            trigger_rule=t.trigger_rule,
            retries=next(v for v in (t.retries, d.retries, 0) if v is not None),
            retry_delay=next(v for v in (t.retry_delay, d.retry_delay, DEFAULT_RETRY_DELAY) if v is not None),
            retry_exponential_backoff=bool(
                next(v for v in (t.retry_exponential_backoff, d.retry_exponential_backoff, False) if v is not None)
            ),
            max_retry_delay=t.max_retry_delay if t.max_retry_delay is not None else d.max_retry_delay,
            execution_timeout=t.execution_timeout if t.execution_timeout is not None else d.execution_timeout,
            node_selector=MappingProxyType(dict(_first(t.node_selector, d.node_selector) or {})),
            tolerations=tuple(copy.deepcopy(_first(t.tolerations, d.tolerations) or [])),
            affinity=copy.deepcopy(_first(t.affinity, d.affinity)),
            service_account_name=_first(t.service_account_name, d.service_account_name),
            volumes=tuple(_json(v) for v in _first(t.volumes, d.volumes) or ()),
            volume_mounts=tuple(_json(m) for m in _first(t.volume_mounts, d.volume_mounts) or ()),
            image_pull_secrets=tuple(s.name for s in _first(t.image_pull_secrets, d.image_pull_secrets) or ()),
            image_pull_policy=_first(t.image_pull_policy, d.image_pull_policy),
            pod_template=_json(t.pod_template),
            pool=_first(t.pool, d.pool, DEFAULT_POOL),
            pool_slots=_first(t.pool_slots, d.pool_slots, 1),
            priority_weight=_first(t.priority_weight, d.priority_weight, 1),
            weight_rule=_first(t.weight_rule, d.weight_rule, "downstream"),
            sla=_first(t.sla, d.sla),
            on_failure=tuple(_first(t.on_failure, d.on_failure) or ()),
            on_success=tuple(_first(t.on_success, d.on_success) or ()),
            on_retry=tuple(_first(t.on_retry, d.on_retry) or ()),
            sensor=t.sensor,
            trigger=t.trigger,
            branch=t.branch,
            multiple_outputs=t.multiple_outputs,
            empty=t.kind == "empty",
            owner=_first(t.owner, d.owner, spec.owner),
            email=_emails(_first(t.email, d.email, spec.email)),
        )
    order = topological_order({name: task.upstream for name, task in tasks.items()})
    return DAG(
        dag_id=manifest.metadata.name,
        namespace=manifest.metadata.namespace,
        tasks=MappingProxyType({name: tasks[name] for name in order}),
        description=spec.description,
        schedule=spec.schedule,
        timezone=spec.timezone,
        start_date=to_utc(spec.start_date, spec.timezone),
        end_date=to_utc(spec.end_date, spec.timezone),
        catchup=spec.catchup,
        paused=spec.paused,
        max_active_runs=spec.max_active_runs,
        max_active_tasks=spec.max_active_tasks,
        params=MappingProxyType(dict(spec.params)),
        tags=tuple(spec.tags),
        owner=", ".join(dict.fromkeys(tasks[n].owner for n in order if tasks[n].owner)) or None,
        email=_emails(_first(spec.email, d.email)),
        pod_template=_json(spec.pod_template),
        dagrun_timeout=spec.dagrun_timeout,
        on_failure=tuple(spec.on_failure),
        on_success=tuple(spec.on_success),
        on_sla_miss=tuple(spec.on_sla_miss),
        variables_from=tuple(_json(v) for v in spec.variables_from),
        connections_from=tuple(_json(c) for c in spec.connections_from),
        spec=spec.model_dump(mode="json", by_alias=True, exclude_defaults=True),
    )

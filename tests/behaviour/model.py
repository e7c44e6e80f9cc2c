"""The behaviour suite's vocabulary: a scenario (manifests, conf, actions) and the outcome expected of it, the same
for every executor; and the outcome an executor driver observed, in the same shape.

A scenario's manifests are built by a function of :class:`Ctx` (absolute paths and the URLs of the suite's
servers), because both executors' tasks must reach the same files and servers: local processes run in the
manifest's folder, pods of the fake kubelet in its own work directory, so tasks use absolute paths only.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

API_VERSION = 'kubedag.io/v1alpha1'
IMAGE = 'busybox:1.36'  # required on Kubernetes, unused locally (the fake kubelet ignores it too)
LOGICAL_DATE = '2026-11-01T00:00:00+00:00'
"""Every scenario's run has this logical date (UTC), so templates render the same text on both executors."""
RUN_ID = f'manual__{LOGICAL_DATE}'
"""The run id both `kubedag dags test` and `kubedag dags trigger` give a manual run at LOGICAL_DATE."""


@dataclass(frozen=True)
class Ctx:
    """What a scenario's manifests may refer to, fixed per test.

    ``data``: an absolute directory every task can read and write (the trace file lives there).
    ``hook_url``: ``http://127.0.0.1:<port>`` of a webhook receiver (POSTs are recorded), '' unless the scenario
    sets ``hook``. ``web_url``: ``http://127.0.0.1:<port>`` of a static file server over ``data`` ('' unless
    ``web``).
    """

    data: Path
    hook_url: str = ''
    web_url: str = ''

    @property
    def trace(self) -> Path:
        """The file traced tasks append ``start-<task>`` / ``end-<task>`` lines to."""
        return self.data / 'trace'


@dataclass(frozen=True)
class TI:
    """The expected task instance: final ``state`` (Airflow's state name; 'none' if never scheduled), ``tries``
    (its try number; 0 = never tried; None = not checked), ``xcom`` (key -> JSON value pushed by its latest try;
    {} = nothing pushed; None = not checked), ``log`` (substrings of its latest try's log), ``logs`` (try number
    -> substrings of that try's log)."""

    state: str
    tries: int | None = None
    xcom: Mapping[str, Any] | None = None
    log: tuple[str, ...] = ()
    logs: Mapping[int, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Hook:
    """One expected webhook POST: its ``path`` on the receiver, the ``event`` (kubedag.notify's names), the task
    and try it is about (None for a run's event), and substrings of its JSON body (``contains``)."""

    path: str
    event: str
    task_id: str | None = None
    try_number: int | None = None
    contains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Expected:
    """The expected outcome of one DAG run (after the scenario's run, or after an action).

    ``state``: the run's state. ``tasks``: every task of the DAG (a task left out is expected in state 'none').
    ``run_type``/``conf``: the run's, when checked. ``trace``: the exact sequence of the trace file's events, when
    checked. ``before``: pairs (a, b): ``end-a`` comes before ``start-b`` in the trace. ``max_concurrent``: at most
    this many traced tasks between their start and end at once. ``min_gap``: (event a, event b, seconds): b was
    traced at least that long after a (a lower bound a semantic rule guarantees: retry delays, poke intervals).
    ``hooks``: every webhook POST expected (in any order), when checked. ``others``: the expected run of each other
    DAG of the scenario that has a run (triggered ones).
    """

    state: str
    tasks: Mapping[str, TI]
    run_type: str | None = None
    conf: Mapping[str, Any] | None = None
    trace: tuple[str, ...] | None = None
    before: tuple[tuple[str, str], ...] = ()
    max_concurrent: int | None = None
    min_gap: tuple[tuple[str, str, float], ...] = ()
    hooks: tuple[Hook, ...] | None = None
    others: Mapping[str, Expected] = field(default_factory=dict)


@dataclass(frozen=True)
class Action:
    """An operation on the run once it finished, as `kubedag tasks clear` / `kubedag tasks mark` do it: ``kind``
    'clear' (``tasks``, ``downstream``, ``upstream``, ``only_failed``) or 'mark' (``tasks`` set to ``state``).
    ``expect``: the run's outcome once the action is applied and the run finished again."""

    kind: Literal['clear', 'mark']
    tasks: tuple[str, ...]
    expect: Expected
    state: str | None = None
    downstream: bool = False
    upstream: bool = False
    only_failed: bool = False


@dataclass(frozen=True)
class Prior:
    """A run of another DAG of the scenario, run to completion before the scenario's run (at ``logical_date``,
    ISO 8601 UTC), e.g. what an ExternalTaskSensor waits for."""

    dag: str
    logical_date: str


@dataclass(frozen=True)
class Scenario:
    """One behaviour, run on every executor.

    ``id``: names the test (and the DAG that is run: the first DAG ``manifests`` returns). ``manifests(ctx)``:
    every object the scenario needs: DAGs, ConfigMaps, Secrets, Pools (without namespace; a DAG's tasks need no
    image). ``conf``: the run's ``dag_run.conf``. ``before``: other DAGs' runs made first. ``expect``: the run's
    outcome. ``actions``: clear/mark operations applied one after the other, each with its expected outcome.
    ``secrets``: strings that must appear in no log, webhook body or failure reason. ``hook``/``web``: the
    scenario needs the webhook receiver / the static file server (see :class:`Ctx`). ``doc``: what the scenario
    shows, with the Airflow rule it follows.
    """

    id: str
    doc: str
    manifests: Callable[[Ctx], list[dict[str, Any]]]
    expect: Expected
    conf: Mapping[str, Any] | None = None
    before: tuple[Prior, ...] = ()
    actions: tuple[Action, ...] = ()
    secrets: tuple[str, ...] = ()
    hook: bool = False
    web: bool = False

    def dags(self, ctx: Ctx) -> list[dict[str, Any]]:
        """The scenario's DAG manifests, the one that is run first."""
        return [m for m in self.manifests(ctx) if m['kind'] == 'DAG']

    def log_keys(self) -> set[tuple[str, str, int | None]]:
        """(dag, task, try or None = latest) of every log some expectation reads."""
        keys: set[tuple[str, str, int | None]] = set()
        runs = [(self.id, self.expect), *((self.id, a.expect) for a in self.actions)]
        for dag, expected in runs:
            runs.extend(expected.others.items())
            for task, ti in expected.tasks.items():
                if ti.log:
                    keys.add((dag, task, None))
                keys.update((dag, task, n) for n in ti.logs)
        return keys


@dataclass
class RunOutcome:
    """What an executor left for one DAG run: its ``run_id``, ``state``, ``run_type`` and ``conf``; ``tis``: task ->
    (state, try number) ('none', 0 for a task never scheduled); ``xcoms``: task -> key -> value of the XComs its
    latest try pushed; ``logs``: (task, try or None = latest) -> log text as `kubedag logs` prints it; ``reasons``:
    the tries' failure reasons ('<task> try <n>: <reason>'); ``archived``: the try logs the DB holds (the
    controller archives pod logs there); ``status``: the DAGRun's status as JSON (on a cluster)."""

    run_id: str
    state: str | None
    run_type: str | None
    conf: dict[str, Any]
    tis: dict[str, tuple[str, int]]
    xcoms: dict[str, dict[str, Any]]
    logs: dict[tuple[str, int | None], str] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    status: str = ''


@dataclass
class Outcome:
    """One observation after the run (or after an action): ``runs``: DAG name -> its run (one run per DAG and
    scenario); ``trace``: the trace file's lines; ``hooks``: the webhook POSTs received so far (JSON bodies with
    their ``path`` added as ``_path``); ``outputs``: what the CLI commands printed."""

    runs: dict[str, RunOutcome]
    trace: list[str]
    hooks: list[dict[str, Any]]
    outputs: list[str] = field(default_factory=list)


Executor = Callable[[Scenario, Ctx, Path, Any], list[Outcome]]
"""A driver, ``driver(scenario, ctx, tmp_path, receiver)`` (``receiver``: the WebhookReceiver behind
``ctx.hook_url``, or None): runs the scenario and returns one Outcome after the run and one after each action."""


# -- helpers for writing scenarios ---------------------------------------------------------------------------------

def dag(name: str, tasks: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A DAG manifest named ``name``; ``spec`` fields in their manifest spelling (``maxActiveTasks=2``)."""
    defaults = {'image': IMAGE, **spec.pop('defaults', {})}
    return {'apiVersion': API_VERSION, 'kind': 'DAG', 'metadata': {'name': name},
            'spec': {'defaults': defaults, 'tasks': tasks, **spec}}


def pool(name: str, slots: int) -> dict[str, Any]:
    """A Pool manifest (Airflow's pool)."""
    return {'apiVersion': API_VERSION, 'kind': 'Pool', 'metadata': {'name': name}, 'spec': {'slots': slots}}


def config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': name}, 'data': data}


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    """A Secret with plain ``stringData`` (as `kubectl create secret generic --from-literal` makes it)."""
    return {'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': name}, 'stringData': data}


def sh(script: str) -> list[str]:
    return ['sh', '-c', script]


def traced(ctx: Ctx, seconds: float = 0.3, script: str = 'true') -> list[str]:
    """A command that appends ``start-<task>``, runs ``script``, sleeps, then appends ``end-<task>`` to the trace
    (each line followed by the time in seconds since the epoch)."""
    line = f'"$KUBEDAG_TASK_ID $(date +%s.%N)" >> {ctx.trace}'
    return sh(f'echo start-{line}; {script}; sleep {seconds}; echo end-{line}')


def xcom(value_json: str, then: str = 'true') -> list[str]:
    """A command that pushes ``value_json`` (JSON text) as its return value, then runs ``then``."""
    return sh(f"printf '%s' '{value_json}' > \"$KUBEDAG_XCOM_PATH\"; {then}")

"""The chaos suite's corpus of malformed and extreme objects (issue 13: every bad-input case it lists, and more).

Each :class:`Case` is one or more objects applied as ``kubectl create`` does (``fieldValidation=Strict``), and what
a user must see afterwards: ``expect`` — words of which one must appear (case-insensitive) in a message naming the
problem: the API server's refusal, a status condition, an Event about the object, or the reason of one of its
task instances. ``expect=()`` marks an extreme but valid case: it must be accepted and work (the DAG ``Ready``,
its runs finished). ``needs`` names the part of issue 13 (another helper's branch) a case depends on; cases with
``needs=None`` are what main already guarantees (the CI version asserts only those).

:func:`corpus` builds the cases; ``full=False`` gives the short version's subset (one per kind of problem).
"""
from __future__ import annotations

import json

from dataclasses import dataclass, field
from typing import Any

NS = 'chaos'
API = 'kubedag.io/v1alpha1'
IMAGE = 'busybox:1.36'


@dataclass(frozen=True)
class Case:
    """One corpus entry: ``objects`` applied in order (``pause`` seconds apart); ``subject`` (kind, name): the object
    whose outcome is judged; ``expect``: words naming the problem (any one); ``needs``: the issue-13 part it needs."""

    name: str
    objects: tuple[dict[str, Any], ...]
    subject: tuple[str, str]
    expect: tuple[str, ...] = ()
    needs: str | None = None
    pause: float = 0.0
    note: str = ''
    extra: dict[str, Any] = field(default_factory=dict)


def dag(name: str, tasks: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A DAG object in the chaos namespace (image defaulted)."""
    return {'apiVersion': API, 'kind': 'DAG', 'metadata': {'name': name, 'namespace': NS},
            'spec': {'defaults': {'image': IMAGE, **spec.pop('defaults', {})}, 'tasks': tasks, **spec}}


def run(name: str, dag_name: str, **spec: Any) -> dict[str, Any]:
    """A manual DAGRun object (as ``kubectl create``)."""
    return {'apiVersion': API, 'kind': 'DAGRun', 'metadata': {'name': name, 'namespace': NS},
            'spec': {'dagName': dag_name, **spec}}


def pool(name: str, slots: Any) -> dict[str, Any]:
    """A Pool object."""
    return {'apiVersion': API, 'kind': 'Pool', 'metadata': {'name': name, 'namespace': NS}, 'spec': {'slots': slots}}


def task(name: str, script: str = 'true', **fields: Any) -> dict[str, Any]:
    """A task running ``sh -c script``."""
    return {'name': name, 'command': ['sh', '-c', script], **fields}


def _bad_dag(key: str, tasks: list[dict[str, Any]], expect: tuple[str, ...], needs: str | None = None,
             note: str = '', **spec: Any) -> Case:
    name = f'c-{key}'
    obj = dag(name, tasks, **spec)
    # as `kubectl apply` sends it: what the user wrote kept in the last-applied annotation (the API server prunes
    # unknown fields from the object itself, so that annotation is where a typo can still be found)
    obj.setdefault('metadata', {}).setdefault('annotations', {})[
        'kubectl.kubernetes.io/last-applied-configuration'] = json.dumps(obj, sort_keys=True)
    return Case(key, (obj,), ('DAG', name), expect, needs, note=note)


def _bad_run(key: str, dag_obj: dict[str, Any] | None, run_spec: dict[str, Any], expect: tuple[str, ...],
             needs: str | None = None, note: str = '', extra_objects: tuple[dict[str, Any], ...] = ()) -> Case:
    name = f'c-{key}'
    dag_name = dag_obj['metadata']['name'] if dag_obj else f'c-{key}-absent'
    objects = (*extra_objects, *((dag_obj,) if dag_obj else ()), run(name, dag_name, **run_spec))
    return Case(key, objects, ('DAGRun', name), expect, needs, pause=1.0 if dag_obj else 0.0, note=note)


def corpus(full: bool = True, big_tasks: int | None = None) -> list[Case]:
    """The corpus: ~100 objects (``full``) or one case per kind of problem. ``big_tasks``: tasks of the huge DAG
    (default 2,000 full, 200 short)."""
    big = big_tasks or (2000 if full else 200)
    cases: list[Case] = [
        # issue 13 item 7: typos a strict API server rejects
        _bad_dag('typo-schedul', [task('a')], ('schedul',), 'identity', schedul='@daily'),
        _bad_dag('typo-dependson', [task('a'), {**task('b'), 'dependson': ['a']}], ('dependson',), 'identity'),
        # issue 13 item 7: resource quantities
        _bad_dag('cpu-lots', [task('a', resources={'limits': {'cpu': 'lots'}})], ('cpu', 'lots', 'quantity'), 'identity'),
        # issue 13 item 6: a render past any limit
        _bad_run('huge-render', dag('c-huge-render-dag', [task('a', "echo {{ 'x' * 100000000 }}")]), {},
                 ('render', 'large', 'too long', 'limit', '413', 'size', 'over the cap'), 'identity'),
        _bad_run('missing-pool', dag('c-missing-pool-dag', [task('a', pool='nope')]), {}, ('nope',), 'identity'),
        _bad_run('pool-slots-over', dag('c-pool-slots-dag', [task('a', pool='small', poolSlots=3)]), {},
                 ('poolslots', 'slots'), 'identity', extra_objects=(pool('small', 1),)),
        # issue 13 item 3: a run's identity
        Case('reused-runid', (dag('c-reuse-dag', [task('a')]), run('c-reuse-1', 'c-reuse-dag', runId='same-id'),
                              run('c-reuse-2', 'c-reuse-dag', runId='same-id')), ('DAGRun', 'c-reuse-2'),
             ('same-id', 'c-reuse-1', 'runid', 'run id'), 'identity', pause=1.0,
             note='the run id goes to the object reconciled first: the other one is refused naming it',
             extra={'either_refused': True}),
        Case('same-second', (dag('c-second-dag', [task('a')]), run('c-second-1', 'c-second-dag'),
                             run('c-second-2', 'c-second-dag')), ('DAGRun', 'c-second-2'),
             ('logical date', 'c-second-1'), 'identity', pause=0.0,
             note='two creates in one second: both must run as distinct runs, or the second be refused by name',
             extra={'both_ok': True}),
        # issue 13 item 7: the DAG of manual runs deleted
        Case('dag-deleted', (dag('c-deleted-dag', [task('a', 'sleep 60')]), run('c-deleted-run', 'c-deleted-dag')),
             ('DAGRun', 'c-deleted-run'), ('c-deleted-dag', 'deleted'), 'identity', pause=1.0,
             extra={'delete_dag_after': 3.0}),
        # extreme but valid
        _bad_dag('huge-dag', [task('t0')] + [task(f't{i}', dependsOn=[f't{i - 1}'] if i % 50 else []) for i in range(1, big)],
                 (), note=f'{big}-task DAG: must validate and become Ready'),
        # validation the controller already does
        _bad_dag('cycle', [task('a', dependsOn=['b']), task('b', dependsOn=['a'])], ('cycle',)),
        _bad_dag('ghost-dep', [task('a', dependsOn=['ghost'])], ('ghost',)),
        _bad_dag('dup-task', [task('a'), task('a')], ('duplicate',)),
        _bad_dag('bad-cron', [task('a')], ('schedule', 'cron'), schedule='not a cron'),
        _bad_dag('bad-timezone', [task('a')], ('timezone', 'mars'), schedule='@daily', timezone='Mars/Olympus'),
        _bad_dag('no-image', [task('a')], ('image',), defaults={'image': None}),
        _bad_dag('bad-retry-delay', [task('a', retryDelay='soon')], ('retrydelay', 'soon', 'duration')),
        _bad_dag('bad-trigger-rule', [task('a'), task('b', dependsOn=['a'], triggerRule='sometimes')],
                 ('triggerrule', 'sometimes')),
        _bad_dag('negative-retries', [task('a', retries=-1)], ('retries',)),
        _bad_dag('bad-dagrun-timeout', [task('a')], ('dagruntimeout', 'forever', 'duration'), dagrunTimeout='forever'),
        _bad_run('missing-dag', None, {}, ('c-missing-dag-absent',)),
        _bad_run('bad-run-id', dag('c-bad-run-id-dag', [task('a')]), {'runId': 'bad id!'}, ('runid', 'run id', 'bad id')),
        _bad_run('template-error', dag('c-template-dag', [task('a', 'echo {{ nothing.here }}')]), {},
                 ('nothing', 'undefined', 'template')),
        Case('pool-negative', (pool('c-pool-negative', -1),), ('Pool', 'c-pool-negative'), ('slots',)),
    ]
    if not full:
        keep = {'typo-schedul', 'cpu-lots', 'huge-render', 'missing-pool', 'pool-slots-over', 'reused-runid',
                'same-second', 'huge-dag', 'cycle', 'ghost-dep', 'bad-cron', 'missing-dag', 'template-error',
                'bad-run-id', 'pool-negative'}
        return [c for c in cases if c.name in keep]
    # the full version: variants of each kind of problem, to ~100 objects
    for i, field_name in enumerate(('schedulle', 'catchUp', 'maxActiveRun', 'start_date', 'task', 'tags_')):
        cases.append(_bad_dag(f'typo-{i}', [task('a')], (field_name.lower(),), 'identity', **{field_name: 1}))
    for i, field_name in enumerate(('depends_on', 'retry', 'comand', 'poolslots', 'imagen')):
        cases.append(_bad_dag(f'task-typo-{i}', [{**task('a'), field_name: 1}], (field_name.lower(),), 'identity'))
    for i, cpu in enumerate(('lots', '-1', '1.5.5', 'a lot', '1Zi')):
        cases.append(_bad_dag(f'cpu-{i}', [task('a', resources={'requests': {'cpu': cpu}})], ('cpu', 'quantity'), 'identity'))
    for i, memory in enumerate(('plenty', '12XB', '-5Gi')):
        cases.append(_bad_dag(f'memory-{i}', [task('a', resources={'limits': {'memory': memory}})], ('memory', 'quantity'),
                              'identity'))
    for i, cron in enumerate(('* * *', '61 * * * *', '@fortnightly', 'every day', '*/0 * * * *')):
        cases.append(_bad_dag(f'cron-{i}', [task('a')], ('schedule', 'cron'), schedule=cron))
    for i, tz in enumerate(('Nowhere/City', 'UTC+25', 'Europe/Atlantis')):
        cases.append(_bad_dag(f'tz-{i}', [task('a')], ('timezone',), schedule='@daily', timezone=tz))
    for i, delay in enumerate(('soon', '-5s', '5 parsecs', '1x')):
        cases.append(_bad_dag(f'delay-{i}', [task('a', retries=1, retryDelay=delay)], ('retrydelay', 'duration')))
    for i, timeout in enumerate(('forever', '-1m', 'ten minutes')):
        cases.append(_bad_dag(f'exec-timeout-{i}', [task('a', executionTimeout=timeout)], ('executiontimeout', 'duration')))
    for i in range(4):
        cases.append(_bad_dag(f'cycle-{i}', [task(f't{j}', dependsOn=[f't{(j + 1) % (i + 2)}']) for j in range(i + 2)],
                              ('cycle',)))
    for i in range(3):
        cases.append(_bad_dag(f'ghost-{i}', [task('a', dependsOn=[f'ghost{i}'])], (f'ghost{i}',)))
    for i, expr in enumerate(("{{ 'y' * 50000000 }}", "{{ range(10**9) | list }}", "{{ 'z' * 10**8 }}")):
        cases.append(_bad_run(f'render-{i}', dag(f'c-render-{i}-dag', [task('a', f'echo {expr}')]), {},
                              ('render', 'large', 'too long', 'too big', 'limit', '413', 'size', 'over the cap'), 'identity'))
    for i in range(3):
        cases.append(_bad_run(f'pool-missing-{i}', dag(f'c-pool-missing-{i}-dag', [task('a', pool=f'absent{i}')]), {},
                              (f'absent{i}',), 'identity'))
    for i in range(3):
        cases.append(_bad_run(f'template-{i}', dag(f'c-template-{i}-dag', [task('a', 'echo {{ undefined_%d.x }}' % i)]), {},
                              (f'undefined_{i}', 'undefined', 'template')))
    for i, run_id in enumerate(('has space', 'slash/inside', 'x' * 300)):
        cases.append(_bad_run(f'run-id-{i}', dag(f'c-run-id-{i}-dag', [task('a')]), {'runId': run_id},
                              ('runid', 'run id', 'runId'.lower())))
    for i in range(3):
        cases.append(_bad_run(f'absent-dag-{i}', None, {}, (f'c-absent-dag-{i}-absent',)))
    for i, slots in enumerate((-5, 'many')):
        cases.append(Case(f'pool-slots-{i}', (pool(f'c-pool-bad-{i}', slots),), ('Pool', f'c-pool-bad-{i}'), ('slots',)))
    cases.append(_bad_dag('chain-500', [task('t0')] + [task(f't{i}', dependsOn=[f't{i - 1}']) for i in range(1, 500)], (),
                          note='a 500-task chain: must validate and become Ready'))
    return cases


def object_count(cases: list[Case]) -> int:
    """How many objects the cases apply."""
    return sum(len(c.objects) for c in cases)


__all__ = ['Case', 'NS', 'corpus', 'dag', 'object_count', 'pool', 'run', 'task']

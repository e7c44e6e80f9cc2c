"""An executor's Outcome set side by side with a scenario's Expected: two dicts of the same shape, so a failing
test shows pytest's diff of exactly the fields that differ."""
from __future__ import annotations

import json
from typing import Any

from tests.behaviour.model import TI, Expected, Hook, Outcome, RunOutcome


def _events(trace: list[str]) -> list[tuple[str, float]]:
    """Trace lines ``start-<task> <epoch seconds>`` as (event, time)."""
    events = []
    for line in trace:
        event, _, at = line.partition(' ')
        events.append((event, float(at or 0)))
    return events


def _max_concurrent(events: list[tuple[str, float]]) -> int:
    running = peak = 0
    for event, _ in events:
        running += 1 if event.startswith('start-') else -1 if event.startswith('end-') else 0
        peak = max(peak, running)
    return peak


def _hook_key(h: Hook | dict[str, Any]) -> tuple[Any, ...]:
    if isinstance(h, Hook):
        return h.path, h.event, h.task_id, h.try_number
    return h.get('_path'), h.get('event'), h.get('task_id'), h.get('try_number')


def _run_views(expected: Expected, run: RunOutcome | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(want, got) for one run: state, run type, conf, task instances, XComs and log substrings."""
    want: dict[str, Any] = {'state': expected.state}
    got: dict[str, Any] = {'state': run.state if run else 'no run'}
    if run is None:
        return want, got
    if expected.run_type is not None:
        want['run_type'], got['run_type'] = expected.run_type, run.run_type
    if expected.conf is not None:
        want['conf'], got['conf'] = dict(expected.conf), run.conf
    want['tis'], got['tis'] = {}, {}
    for task in sorted({*expected.tasks, *run.tis}):
        ti = expected.tasks.get(task, TI('none', 0))  # a task left out was never scheduled
        state, tries = run.tis.get(task, ('none', 0))
        if ti.tries is None:
            want['tis'][task], got['tis'][task] = ti.state, state
        else:
            want['tis'][task], got['tis'][task] = (ti.state, ti.tries), (state, tries)
        if ti.xcom is not None:
            want.setdefault('xcom', {})[task] = dict(ti.xcom)
            got.setdefault('xcom', {})[task] = run.xcoms.get(task, {})
        for try_number, parts in [(None, ti.log), *ti.logs.items()]:
            if parts:
                text = run.logs.get((task, try_number), '<log not read>')
                label = f'{task} try {try_number or "latest"}'
                want.setdefault('log', {})[label] = {p: True for p in parts}
                got.setdefault('log', {})[label] = {p: p in text for p in parts}
                if not all(p in text for p in parts):
                    got['log'][label]['<the log>'] = text
    return want, got


def views(expected: Expected, outcome: Outcome, dag: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(want, got) of the whole step: the run of ``dag``, every other run expected, the trace and the webhooks."""
    want, got = _run_views(expected, outcome.runs.get(dag))
    for other, other_expected in expected.others.items():
        want[other], got[other] = _run_views(other_expected, outcome.runs.get(other))
    events = _events(outcome.trace)
    names = [e for e, _ in events]
    if expected.trace is not None:
        want['trace'], got['trace'] = list(expected.trace), names
    for a, b in expected.before:
        key = f'end-{a} before start-{b}'
        want[key] = True
        got[key] = f'end-{a}' in names and f'start-{b}' in names and names.index(f'end-{a}') < names.index(f'start-{b}')
    if expected.max_concurrent is not None:
        want['max concurrent'] = f'<= {expected.max_concurrent}'
        peak = _max_concurrent(events)
        got['max concurrent'] = want['max concurrent'] if peak <= expected.max_concurrent else peak
    for a, b, seconds in expected.min_gap:
        at = {e: t for e, t in reversed(events)}  # the first occurrence of each event
        key = f'{b} at least {seconds}s after {a}'
        want[key] = True
        got[key] = a in at and b in at and at[b] - at[a] >= seconds
    if expected.hooks is not None:
        want['hooks'] = sorted((_hook_key(h) for h in expected.hooks), key=str)
        got['hooks'] = sorted((_hook_key(h) for h in outcome.hooks), key=str)
        for h in expected.hooks:
            body = next((json.dumps(r) for r in outcome.hooks if _hook_key(r) == _hook_key(h)), '')
            for part in h.contains:
                want[f'{h.path} contains {part!r}'], got[f'{h.path} contains {part!r}'] = True, part in body
    return want, got


def leaked(secrets: tuple[str, ...], outcome: Outcome) -> list[str]:
    """Where any of ``secrets`` appears: logs, failure reasons, DAGRun status, archived logs, webhook bodies, CLI
    output."""
    places = [(f'log of {dag}/{task} try {n or "latest"}', text)
              for dag, run in outcome.runs.items() for (task, n), text in run.logs.items()]
    places += [(f'failure reason in {dag}', text) for dag, run in outcome.runs.items() for text in run.reasons]
    places += [(f'DAGRun status of {dag}', run.status) for dag, run in outcome.runs.items()]
    places += [(f'a log archived in the DB for {dag}', text)
               for dag, run in outcome.runs.items() for text in run.archived]
    places += [(f'webhook {h.get("_path")}', json.dumps(h)) for h in outcome.hooks]
    places += [('CLI output', text) for text in outcome.outputs]
    return [f'{secret!r} in {where}' for secret in secrets for where, text in places if secret in text]


def reasons(outcome: Outcome) -> str:
    """Every try's failure reason, per run: shown when a step differs."""
    return '\n'.join(f'  {dag}: {reason}' for dag, run in outcome.runs.items() for reason in run.reasons)

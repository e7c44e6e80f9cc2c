"""Test helpers for kubedag.core.engine: DAG builders and a driver that runs a whole DAG run in simulated time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType

from kubedag.core.engine import DagRun, Plan, TaskInstance, apply_outcome, mark_running, plan
from kubedag.core.spec.dag import DAG, Task, topological_order
from kubedag.core.states import RunType

T0 = datetime(2026, 1, 1, 0, 0, tzinfo=timezone.utc)
LOGICAL = datetime(2025, 12, 31, tzinfo=timezone.utc)


def task(task_id: str, *upstream: str, **kw) -> Task:
    """A Task with a dummy command; ``upstream`` are its dependsOn."""
    return Task(task_id=task_id, command=("true",), upstream=tuple(upstream), **kw)


def make_dag(*tasks: Task, dag_id: str = "d", **kw) -> DAG:
    """A DAG with ``tasks`` put in topological order (as spec.build_dag does)."""
    by_id = {t.task_id: t for t in tasks}
    order = topological_order({t.task_id: t.upstream for t in tasks})
    return DAG(dag_id=dag_id, tasks=MappingProxyType({t: by_id[t] for t in order}), **kw)


def make_run(dag: DAG, **kw) -> DagRun:
    """A queued manual run of ``dag`` for LOGICAL."""
    return DagRun(
        dag_id=dag.dag_id,
        run_id="manual__2025-12-31T00:00:00+00:00",
        run_type=RunType.MANUAL,
        logical_date=LOGICAL,
        data_interval_start=LOGICAL,
        data_interval_end=LOGICAL,
        **kw,
    )


def applied(tis: Mapping[str, TaskInstance], p: Plan) -> dict[str, TaskInstance]:
    """``tis`` with the plan's updates applied."""
    return {**tis, **p.updates}


def states(tis: Mapping[str, TaskInstance]) -> dict[str, str]:
    return {k: str(v.state) for k, v in tis.items()}


Outcome = bool | str  # True = success, False = failure, "hang" = never ends on its own


@dataclass
class Result:
    run: DagRun
    tis: dict[str, TaskInstance]
    starts: list[tuple[datetime, str, int]] = field(default_factory=list)  # (when, task_id, try_number)
    kills: list[tuple[datetime, str, int, str]] = field(default_factory=list)
    plans: int = 0


def drive(
    dag: DAG,
    outcomes: Mapping[str, list[Outcome]] | None = None,
    *,
    duration: timedelta = timedelta(seconds=10),
    free_slots: int | None = None,
    run: DagRun | None = None,
    tis: Mapping[str, TaskInstance] | None = None,
    start: datetime = T0,
    max_plans: int = 500,
    on_plan: Callable[[datetime, Plan], None] | None = None,
) -> Result:
    """Run ``dag`` to the end in simulated time.

    Each started try runs for ``duration`` and ends as ``outcomes[task_id][try_number - 1]``
    (success when not listed). ``free_slots`` is the executor's parallelism. After every plan it
    re-plans at the same instant and asserts the fixed point, then jumps to the next event.
    """
    outcomes = outcomes or {}
    run = run or make_run(dag)
    cur: dict[str, TaskInstance] = dict(tis or {})
    res = Result(run, cur)
    events: list[tuple[datetime, str, int]] = []  # (ends_at, task_id, try_number)
    now = start
    while res.plans < max_plans:
        slots = None if free_slots is None else max(free_slots - len(events), 0)
        p = plan(dag, run, cur, now, free_slots=slots)
        res.plans += 1
        if on_plan:
            on_plan(now, p)
        cur.update(p.updates)
        run = p.run
        for k in p.kills:
            res.kills.append((now, k.task_id, k.try_number, k.reason))
            events = [e for e in events if (e[1], e[2]) != (k.task_id, k.try_number)]
        for s in p.starts:
            res.starts.append((now, s.task_id, s.try_number))
            cur[s.task_id] = mark_running(cur[s.task_id], now)
            tries = outcomes.get(s.task_id, [])
            outcome = tries[s.try_number - 1] if s.try_number <= len(tries) else True
            if outcome == "hang":
                events.append((datetime.max.replace(tzinfo=timezone.utc), s.task_id, s.try_number))
            else:
                events.append((now + duration, s.task_id, s.try_number))
        # the fixed point: applying the plan and planning again at the same instant changes nothing
        slots = None if free_slots is None else max(free_slots - len(events), 0)
        again = plan(dag, run, cur, now, free_slots=slots)
        assert again.idle and again.run == run, (now, again)
        if run.finished:
            res.run, res.tis = run, cur
            return res
        finite = [e[0] for e in events if e[0].year < 9999]
        nxt = min([*finite, *([again.wake_at] if again.wake_at else [])], default=None)
        assert nxt is not None and nxt > now, f"stuck at {now}: {states(cur)}"
        now = nxt
        for e in sorted(x for x in events if x[0] == now):
            events.remove(e)
            _, tid, try_number = e
            tries = outcomes.get(tid, [])
            ok = tries[try_number - 1] if try_number <= len(tries) else True
            cur[tid] = apply_outcome(dag, run, cur[tid], succeeded=bool(ok), now=now, exit_code=0 if ok else 1)
    raise AssertionError(f"run did not finish in {max_plans} plans: {states(cur)}")

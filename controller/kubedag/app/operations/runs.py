"""The operations on one DAG run, written once for both executors against the ports of
:mod:`kubedag.app.operations.ports`: trigger (a manual run), clear, mark, delete, and pause/unpause.

Each function validates the request, computes the change with the pure engine
(:func:`kubedag.core.engine.clear`, :func:`kubedag.core.engine.mark`) and hands it to the repository, which
writes it (the local metadata DB) or forwards it to the one writer of the run (a DAGRun's ``spec.actions``,
applied by the controller).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from kubedag.app.operations.ports import (
    InvalidRequest, LoadedRun, PauseFlags, RunChange, RunsRepository,
)
from kubedag.core import engine, timetable
from kubedag.core.spec.dag import DAG
from kubedag.core.spec.dagrun import RUN_ID_PATTERN
from kubedag.core.states import DagRunState, RunType, TaskInstanceState

RUN_ID_MAX = 250
"""Airflow's ``ID_LEN``: the longest run id."""


def check_run_id(run_id: str) -> None:
    """Raise :class:`InvalidRequest` (naming ``--run-id``) unless ``run_id`` is at most 250 of ``A-Z a-z 0-9 _ . ~ :
    + -`` (the characters a DAGRun's ``spec.runId`` allows)."""
    if len(run_id) > RUN_ID_MAX or not re.fullmatch(RUN_ID_PATTERN, run_id):
        raise InvalidRequest(f"--run-id: {run_id!r} is not a valid run id (at most 250 of A-Z a-z 0-9 _ . ~ : + -)")


def manual_run(dag: DAG | str, logical_date: datetime, conf: Mapping[str, Any] | None = None,
               run_id: str | None = None,
               data_interval: tuple[datetime, datetime] | None = None) -> engine.DagRun:
    """A manual run (queued) at ``logical_date`` (UTC-aware), as ``airflow dags trigger`` and ``dag.test`` make
    it (Airflow 2.10): run id ``manual__<logical date ISO 8601>`` unless given, data interval from the DAG's
    timetable (``infer_manual_data_interval(run_after=logical_date)``) unless ``data_interval`` (start, end;
    UTC-aware) is given, as the REST API's ``data_interval_start``/``data_interval_end``.

    ``dag`` may be only a DAG's name (a cluster's DAG the controller validates): the data interval is then
    left empty at the logical date, and the controller infers it from the DAG it has.

    Raises:
        InvalidRequest: an invalid ``run_id``, or a ``data_interval`` ending before it starts.
    """
    if run_id is not None:
        check_run_id(run_id)
    if data_interval is not None:
        if data_interval[1] < data_interval[0]:
            raise InvalidRequest("data_interval_end is before data_interval_start")
        dag_id = dag.dag_id if isinstance(dag, DAG) else dag
        start, end = data_interval
    elif isinstance(dag, DAG):
        interval = dag.timetable.infer_manual_data_interval(run_after=logical_date)
        dag_id, start, end = dag.dag_id, interval.start, interval.end
    else:
        dag_id, start, end = dag, logical_date, logical_date
    return engine.DagRun(
        dag_id=dag_id, run_id=run_id or timetable.run_id("manual", logical_date), run_type=RunType.MANUAL,
        logical_date=logical_date, data_interval_start=start, data_interval_end=end, conf=dict(conf or {}),
    )


def trigger(runs: RunsRepository, dag: DAG | str, *, logical_date: datetime, conf: Mapping[str, Any] | None = None,
            run_id: str | None = None, data_interval: tuple[datetime, datetime] | None = None) -> engine.DagRun:
    """Create a queued manual run of ``dag`` (:func:`manual_run`), as ``airflow dags trigger``: a scheduler
    (locally ``kubedag scheduler``; in a cluster the controller) picks it up and runs it. Returns the run.

    ``logical_date``: UTC-aware; Airflow's default is now (the caller's clock, at microsecond precision).
    ``data_interval``: see :func:`manual_run`.

    Raises:
        InvalidRequest: an invalid run id or data interval.
        AlreadyExists: a run with that run id, or at that logical date, exists (as Airflow's
            ``DagRunAlreadyExists``).
    """
    run = manual_run(dag, logical_date, conf, run_id, data_interval)
    runs.create_run(dag, run)
    return run


@dataclass(frozen=True)
class ClearPreview:
    """What a clear does: the run as loaded, and the engine's :class:`~kubedag.core.engine.ClearResult`
    (``result.task_ids``: the tasks it resets, in topological order)."""

    loaded: LoadedRun
    result: engine.ClearResult

    def rows(self) -> list[tuple[str, str, int]]:
        """``(task_id, state before, try number)`` of every task instance the clear resets."""
        out = []
        for task_id in self.result.task_ids:
            ti = self.loaded.tis.get(task_id) or engine.TaskInstance(task_id)
            out.append((task_id, str(ti.state), ti.try_number))
        return out


def preview_clear(dag: DAG, runs: RunsRepository, run_id: str, task_ids: Iterable[str], *, upstream: bool = False,
                  downstream: bool = False, only_failed: bool = False, now: datetime) -> ClearPreview:
    """What :func:`clear` would reset, changing nothing.

    Raises:
        NotFound: no such run.
        InvalidRequest: naming tasks not in the DAG.
    """
    loaded = runs.load_run(dag, run_id)
    try:
        result = engine.clear(dag, loaded.run, loaded.tis, list(task_ids), upstream=upstream, downstream=downstream,
                              only_failed=only_failed, now=now)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    return ClearPreview(loaded, result)


def clear(dag: DAG, runs: RunsRepository, run_id: str, task_ids: Iterable[str], *, upstream: bool = False,
          downstream: bool = False, only_failed: bool = False, now: datetime) -> ClearPreview:
    """Clear task instances of run ``run_id`` so that they run again with the next try number, as ``airflow
    tasks clear`` (Airflow 2.10's ``clear_task_instances``): the tasks named (every task when none is), with
    their upstream and/or downstream tasks, only the ``failed``/``upstream_failed`` ones with ``only_failed``;
    their XComs go, a running try is stopped, and a finished run is reopened (``queued``). Returns the preview
    of what was cleared (``result.run`` and ``result.updates``: the run and task instances after it).

    Raises:
        NotFound: no such run.
        InvalidRequest: naming tasks not in the DAG.
    """
    ids = tuple(task_ids)
    preview = preview_clear(dag, runs, run_id, ids, upstream=upstream, downstream=downstream,
                            only_failed=only_failed, now=now)
    result = preview.result
    runs.apply(dag, RunChange("clear", ids, result.run, result.updates, result.task_ids, upstream=upstream,
                              downstream=downstream, only_failed=only_failed))
    return preview


def mark(dag: DAG, runs: RunsRepository, run_id: str, task_ids: Iterable[str], state: str, *,
         now: datetime) -> tuple[engine.DagRun, tuple[str, ...]]:
    """Set task instances of run ``run_id`` to ``state`` (``success``, ``failed`` or ``skipped``), as Airflow's
    mark success/failed (:func:`kubedag.core.engine.mark`), then re-evaluate the run with one engine pass that
    starts nothing, so that downstream tasks may become ``upstream_failed``/``skipped`` and the run finish.
    Returns the run (its new state) and the tasks whose state changed.

    Raises:
        NotFound: no such run.
        InvalidRequest: an unknown task or state.
    """
    ids = tuple(task_ids)
    loaded = runs.load_run(dag, run_id)
    try:
        result = engine.mark(dag, loaded.run, loaded.tis, list(ids), TaskInstanceState(state), now=now)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    tis = {**loaded.tis, **result.updates}
    run = result.run
    if run.state == DagRunState.QUEUED:
        run = replace(run, state=DagRunState.RUNNING, start_date=run.start_date or now)
    plan = engine.plan(dag, run, tis, now, free_slots=0)
    settled = {t: ti for t, ti in plan.updates.items()
               if ti.state not in (TaskInstanceState.SCHEDULED, TaskInstanceState.QUEUED)}
    runs.apply(dag, RunChange("mark", ids, plan.run, {**result.updates, **settled}, result.task_ids,
                              state=str(TaskInstanceState(state))))
    return plan.run, result.task_ids


def delete(runs: RunsRepository, dag_id: str, run_id: str) -> None:
    """Delete run ``run_id`` of ``dag_id`` with its task instances (as Airflow's "delete DAG run").

    Raises:
        NotFound: no such run.
    """
    runs.delete_run(dag_id, run_id)


def set_paused(flags: PauseFlags, dag: DAG | str, paused: bool) -> bool:
    """Pause or unpause ``dag``, as ``airflow dags pause``/``unpause``; returns the stored flag.

    Raises:
        NotFound: the DAG is not known where the flag is kept.
    """
    return flags.set_paused(dag, paused)

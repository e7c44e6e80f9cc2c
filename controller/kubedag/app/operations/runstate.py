"""Set a whole run's state, as Airflow's ``set_dag_run_state_to_success`` / ``set_dag_run_state_to_failed``
(``PATCH /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}`` with ``state``), built on :func:`~kubedag.app.operations.mark`
so that the run's state follows from its task instances as everywhere else (one implementation of "mark").
"""

from __future__ import annotations

from datetime import datetime

from kubedag.app.operations.ports import InvalidRequest, RunsRepository
from kubedag.app.operations.runs import mark
from kubedag.core import engine
from kubedag.core.spec.dag import DAG
from kubedag.core.states import TaskInstanceState as S

FINISHED = frozenset({S.SUCCESS, S.FAILED, S.SKIPPED, S.UPSTREAM_FAILED})
"""Task instance states a run-state change leaves alone when failing a run (Airflow's ``State.finished``)."""

RUNNING = frozenset({S.RUNNING, S.UP_FOR_RESCHEDULE})
"""What ``set_dag_run_state_to_failed`` marks ``failed`` (Airflow 2.10's ``running_states``; kubedag has no
``deferred``)."""


def set_run_state(dag: DAG, runs: RunsRepository, run_id: str, state: str, *, now: datetime) -> engine.DagRun:
    """Set run ``run_id`` of ``dag`` to ``state`` (``success`` or ``failed``); returns the run after it.

    * ``success`` (Airflow's ``set_dag_run_state_to_success``): every task instance that is not ``success``
      is marked ``success``, so the run succeeds.
    * ``failed`` (``set_dag_run_state_to_failed``): the running task instances (running, up for reschedule)
      are marked ``failed`` (their tries stopped; tasks downstream become ``upstream_failed``),
      then the other unfinished ones ``skipped``. Where nothing is running, the unfinished task instances are
      marked ``failed`` instead of ``skipped``: kubedag's run state follows from its task instances (Airflow
      writes the run's state directly), and a run of only skipped tasks would succeed.

    A run already in ``state`` is returned as it is. ``now``: UTC-aware.

    Raises:
        NotFound: no such run.
        InvalidRequest: another ``state`` (Airflow's ``queued`` is not supported: clear the run instead).
    """
    if state not in ("success", "failed"):
        raise InvalidRequest(f"state: {state!r} is not supported (success or failed; to run it again, clear it)")
    loaded = runs.load_run(dag, run_id)
    if str(loaded.run.state) == state:
        return loaded.run

    def current(task_id: str) -> S | None:
        ti = loaded.tis.get(task_id)
        return ti.state if ti is not None else None

    task_ids = list(dag.tasks)
    if state == "success":
        return mark(dag, runs, run_id, [t for t in task_ids if current(t) != S.SUCCESS], "success", now=now)[0]
    running = [t for t in task_ids if current(t) in RUNNING]
    if not running:
        pending = [t for t in task_ids if current(t) not in FINISHED]
        return mark(dag, runs, run_id, pending, "failed", now=now)[0] if pending else loaded.run
    run, _ = mark(dag, runs, run_id, running, "failed", now=now)
    after = runs.load_run(dag, run_id)
    pending = [t for t in task_ids
               if (after.tis[t].state if t in after.tis else None) not in FINISHED]
    return mark(dag, runs, run_id, pending, "skipped", now=now)[0] if pending else run

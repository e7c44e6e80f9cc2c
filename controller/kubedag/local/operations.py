"""The operations on this machine: the DAG folder port of :mod:`kubedag.app.operations`, and the local runs that
``dags backfill -f`` and ``tasks clear -f`` carry to completion.

* :class:`FolderDags`: :class:`~kubedag.app.operations.DagSource` on a DAG folder (:class:`kubedag.local.bag.DagBag`).
* :func:`run_backfill`: the ``create`` and ``reset`` runs of :func:`kubedag.app.operations.plan_backfill` run
  to completion with :class:`kubedag.local.runner.LocalRunner`, at most ``max_active_runs`` at once, each in
  its own thread; :func:`resume_run`: a reopened run (after a clear) run to completion.

Runs are created, loaded and recorded through ``runs`` (a :class:`RecordingRuns`: the metadata DB's
:class:`kubedag.store.operations.DbRuns` in practice, composed by the CLI). The runner's options
(:class:`~kubedag.local.runner.RunOptions`) come from the caller, built by :func:`kubedag.cli.local.local_options`,
so the DAG's ``variablesFrom``/``connectionsFrom``, Pools, notifiers and the DB URL of trigger and
``externalTask`` tasks apply as in ``dags test``.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kubedag.app import operations as ops
from kubedag.core import engine
from kubedag.core.spec.dag import DAG
from kubedag.core.states import DagRunState, RunType
from kubedag.local.runner import LocalRunner, Recorder, RunOptions, utcnow


_KIND_DAG = re.compile(r"^\s*kind:\s*[\"']?DAG\b", re.MULTILINE)


class RecordingRuns(ops.RunsRepository, Protocol):
    """The runs a local backfill or clear works on: a :class:`~kubedag.app.operations.RunsRepository` that also
    gives the :class:`~kubedag.local.runner.Recorder` of each run it carries to completion."""

    def recorder(self, dag: DAG) -> Recorder:
        """Where the passes of a run of ``dag`` are recorded (writes serialised with the repository's own)."""


class FolderDags:
    """The DAGs of a folder's YAML manifests (:class:`kubedag.local.bag.DagBag`), as Airflow's DAG bag."""

    def __init__(self, folder: Path) -> None:
        from kubedag.local.bag import DagBag

        self.folder = Path(folder)
        self.bag = DagBag(self.folder)
        self.errors: dict[str, str] = {}
        """File name -> why it was skipped by :meth:`dags`."""

    def dag(self, name: str) -> DAG:
        """The DAG ``name``. Raises :class:`~kubedag.app.operations.NotFound` (or
        :class:`~kubedag.app.operations.OperationError` when its manifest is invalid)."""
        from kubedag.local.bag import DagBagError

        try:
            return self.bag.dag(name)
        except DagBagError as exc:
            if "is invalid" in str(exc):
                raise ops.OperationError(str(exc)) from None
            raise ops.NotFound(str(exc)) from None

    def dags(self) -> list[DAG]:
        """Every valid DAG of the folder's ``*.yaml``/``*.yml`` files (not recursive), by name; a file that
        does not parse or holds an invalid DAG is skipped and recorded in :attr:`errors`."""
        from kubedag.core.spec import DAGValidationError
        from kubedag.core.spec.loader import load_dags

        found: dict[str, DAG] = {}
        self.errors = {}
        try:
            files = sorted(p for p in self.folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        except OSError as exc:
            raise ops.NotFound(f"DAG folder {self.folder}: {exc.strerror or exc}") from None
        for path in files:
            try:
                if not _KIND_DAG.search(path.read_text(encoding="utf-8", errors="replace")):
                    continue
                for dag in load_dags(path):
                    found.setdefault(dag.dag_id, dag)
            except DAGValidationError as exc:
                self.errors[path.name] = "; ".join(str(e) for e in exc.errors)
            except OSError as exc:
                self.errors[path.name] = str(exc.strerror or exc)
        return [found[name] for name in sorted(found)]


# --- running runs on this machine ----------------------------------------------------------------------


@dataclass
class BackfillResult:
    """A finished backfill: run id -> final state of each run it ran (created or reset)."""

    states: dict[str, str]

    @property
    def failed(self) -> list[str]:
        """Run ids that failed."""
        return [run_id for run_id, state in self.states.items() if state != DagRunState.SUCCESS]


def _prepare(runs: RecordingRuns, dag: DAG, planned: ops.PlannedRun, conf: Mapping[str, Any]) -> ops.LoadedRun:
    """Create a backfill run (queued), or clear every task of an existing run; the run and its task instances."""
    if planned.action == "create":
        run = engine.DagRun(dag_id=dag.dag_id, run_id=planned.run_id, run_type=RunType.BACKFILL,
                            logical_date=planned.logical_date, data_interval_start=planned.data_interval_start,
                            data_interval_end=planned.data_interval_end, conf=dict(conf))
        runs.create_run(dag, run)
    else:
        ops.clear(dag, runs, planned.run_id, [], now=utcnow())
    return runs.load_run(dag, planned.run_id)


def run_backfill(
    dag: DAG,
    planned: Iterable[ops.PlannedRun],
    *,
    runs: RecordingRuns,
    options: RunOptions,
    max_active_runs: int,
    conf: Mapping[str, Any] | None = None,
    on_start: Callable[[str], None] | None = None,
    on_finish: Callable[[str, str], None] | None = None,
) -> BackfillResult:
    """Run the ``create`` and ``reset`` runs of ``planned`` to completion, oldest first, at most
    ``max_active_runs`` (>= 1) at once, each with a :class:`~kubedag.local.runner.LocalRunner` in its own
    thread (with ``options``). ``on_start(run_id)`` and ``on_finish(run_id, state)`` are called from those
    threads. Ctrl-C kills every running try and re-raises.
    """
    todo = [p for p in planned if p.action in ("create", "reset")]
    pending: queue.Queue[ops.PlannedRun] = queue.Queue()
    for p in todo:
        pending.put(p)
    results: queue.Queue[tuple[str, str | BaseException]] = queue.Queue()
    active: dict[str, LocalRunner] = {}

    def worker() -> None:
        while True:
            try:
                item = pending.get_nowait()
            except queue.Empty:
                return
            try:
                loaded = _prepare(runs, dag, item, conf or {})
                runner = LocalRunner(dag, loaded.run, runs.recorder(dag), options,
                                     tis=loaded.tis)
                active[item.run_id] = runner
                if on_start is not None:
                    on_start(item.run_id)
                final = runner.run()
                active.pop(item.run_id, None)
                if on_finish is not None:
                    on_finish(item.run_id, str(final.state))
                results.put((item.run_id, str(final.state)))
            except BaseException as exc:  # noqa: BLE001 - reported to the main thread
                results.put((item.run_id, exc))

    threads = [threading.Thread(target=worker, name=f"kubedag-backfill-{i}", daemon=True)
               for i in range(min(max_active_runs, len(todo)))]
    for thread in threads:
        thread.start()
    states: dict[str, str] = {}
    try:
        while len(states) < len(todo):
            try:
                run_id, outcome = results.get(timeout=0.5)  # a timeout, so that Ctrl-C is seen
            except queue.Empty:
                continue
            if isinstance(outcome, BaseException):
                raise outcome
            states[run_id] = outcome
    except BaseException:
        while not pending.empty():
            try:
                pending.get_nowait()
            except queue.Empty:
                break
        for runner in list(active.values()):
            runner.launcher.kill_all("backfill interrupted")
        raise
    for thread in threads:
        thread.join()
    return BackfillResult({p.run_id: states[p.run_id] for p in todo})


def resume_run(dag: DAG, run: engine.DagRun, tis: Mapping[str, engine.TaskInstance], *, runs: RecordingRuns,
               options: RunOptions,
               on_update: Callable[[engine.DagRun, Mapping[str, engine.TaskInstance]], None] | None = None
               ) -> tuple[engine.DagRun, dict[str, engine.TaskInstance]]:
    """Run a reopened run to completion on this machine with ``options``; returns the finished run and its task
    instances. Task instances already finished are left as they are."""
    runner = LocalRunner(dag, run, runs.recorder(dag), options, tis=tis,
                         on_update=on_update)
    final = runner.run()
    return final, dict(runner.tis)


__all__ = ["BackfillResult", "FolderDags", "RecordingRuns", "resume_run", "run_backfill"]

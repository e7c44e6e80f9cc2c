"""The live Rich view of ``kubedag dags test``: one row per task instance, redrawn as states change,
then a summary. On a terminal the table updates in place; elsewhere (a pipe, a CI log) one line is printed per
task instance state change (``HH:MM:SS task state try n/m [reason]``), as it happens. All output goes to stderr,
so ``-o json`` on stdout stays machine-readable."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from kubedag.core import engine
from kubedag.core.spec.dag import DAG

STATE_STYLES = {
    "success": "green",
    "failed": "bold red",
    "upstream_failed": "red",
    "running": "cyan",
    "queued": "blue",
    "scheduled": "blue",
    "up_for_retry": "yellow",
    "up_for_reschedule": "yellow",
    "skipped": "magenta",
    "removed": "dim",
    "none": "dim",
}


def styled_state(state: str) -> str:
    """A state name with Rich markup in Airflow's UI colours."""
    style = STATE_STYLES.get(state, "")
    return f"[{style}]{state}[/]" if style else state


def _duration(start: datetime | None, end: datetime | None, now: datetime | None = None) -> str:
    if start is None:
        return ""
    end = end or now
    return f"{(end - start).total_seconds():.2f}s" if end else ""


class LiveView:
    """A context manager showing task instance states while a run progresses.

    ``enabled=False`` prints nothing at all (for ``-o json``).
    """

    def __init__(self, dag: DAG, run: engine.DagRun, *, enabled: bool = True) -> None:
        self.dag = dag
        self.run = run
        self.enabled = enabled
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.tis: Mapping[str, engine.TaskInstance] = {}
        self._live: Live | None = None
        self._lines = False
        self._shown: dict[str, tuple[str, int]] = {}

    def note(self, message: str) -> None:
        """Print one dim informational line."""
        if self.enabled:
            self.console.print(f"[dim]{message}[/]")

    def table(self) -> Table:
        """The task table for the current states."""
        table = Table(title=f"{self.dag.dag_id}  {self.run.run_id}  {styled_state(str(self.run.state))}", title_justify="left")
        for column in ("task", "state", "try", "duration", "note"):
            table.add_column(column)
        for task_id, task in self.dag.tasks.items():
            ti = self.tis.get(task_id) or engine.TaskInstance(task_id=task_id)
            note = ti.reason or ""
            if ti.state == "up_for_retry" and ti.next_retry_at:
                note = f"{note}; retry at {ti.next_retry_at:%H:%M:%S}"
            table.add_row(
                task_id, styled_state(str(ti.state)), f"{ti.try_number}/{task.max_tries}",
                _duration(ti.start_date, ti.end_date), note,
            )
        return table

    def update(self, run: engine.DagRun, tis: Mapping[str, engine.TaskInstance]) -> None:
        """Called by the runner after every pass."""
        self.run, self.tis = run, tis
        if self._live is not None:
            self._live.update(self.table())
        elif self._lines:
            self.print_changes(tis)

    def print_changes(self, tis: Mapping[str, engine.TaskInstance]) -> None:
        """Print one line per task instance whose state or try changed since the last call."""
        for task_id, ti in tis.items():
            seen = (str(ti.state), ti.try_number)
            if self._shown.get(task_id) == seen or ti.state == "none":
                continue
            self._shown[task_id] = seen
            task = self.dag.tasks.get(task_id)
            tries = f"{ti.try_number}/{task.max_tries}" if task is not None else str(ti.try_number)
            when = f"{datetime.now():%H:%M:%S}"
            reason = f"  {ti.reason}" if ti.reason and ti.state not in ("success", "running", "queued") else ""
            self.console.print(f"{when} {task_id} {styled_state(str(ti.state))} try {tries}{reason}")

    def __enter__(self) -> LiveView:
        if self.enabled and self.console.is_terminal:
            self._live = Live(self.table(), console=self.console, refresh_per_second=8, transient=True)
            self._live.__enter__()
        else:
            self._lines = self.enabled
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def summary(self, result: Any) -> None:
        """Print the final table, the run's outcome and where the logs are (``result``: a
        :class:`kubedag.cli.local.LocalRunResult`)."""
        if not self.enabled:
            return
        self.run, self.tis = result.run, result.tis
        self.console.print(self.table())
        run = result.run
        took = _duration(run.start_date, run.end_date)
        counts: dict[str, int] = {}
        for ti in result.tis.values():
            counts[str(ti.state)] = counts.get(str(ti.state), 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        self.console.print(f"DAG run {run.run_id} {styled_state(str(run.state))} in {took} ({summary})")
        self.console.print(f"[dim]logs: {result.logs_dir}/dag_id={run.dag_id}/run_id={run.run_id}/[/]")

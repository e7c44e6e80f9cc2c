"""A pool ledger shared by the local runners of one machine: which pool slots each runner's tries hold.

On a cluster a pool's slots are counted across every run of the namespace (:func:`kubedag.app.pools.pool_free`);
locally ``kubedag dags test`` runs a ``trigger`` task's child run in another process (``python -m
kubedag.cli.trigger``) with its own :class:`~kubedag.local.runner.LocalRunner`. So that both count one pool, as
Airflow's ``Pool.open_slots`` does across every DAG run, each runner records its holdings in a JSON file::

    {"<owner>": {"pid": 1234, "start": "5678", "held": {"shared": 1}}, ...}

guarded by ``fcntl.flock``. A runner's step holds the lock while it reads the others' holdings, lets the run pass
decide and writes its own (:meth:`PoolLedger.transaction`). An entry whose process is gone (its pid is dead, or
was reused: the start time differs) is dropped, so a crashed runner frees its slots. The file's path reaches the
child processes in ``$KUBEDAG_POOL_LEDGER`` (:data:`LEDGER_ENV`).
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kubedag.core import engine
from kubedag.core.spec.dag import DAG
from kubedag.local.processes import process_start_time

LEDGER_ENV = "KUBEDAG_POOL_LEDGER"
"""The environment variable naming the ledger file, set for every try the runner starts."""

LEDGER_FILE = "pool-ledger.json"
"""The ledger's file name under the logs dir (when ``$KUBEDAG_POOL_LEDGER`` is not set)."""


LEDGER_POLL = 0.2
"""Seconds after which a runner whose try waits only for slots other runners hold checks the ledger again."""


def held_slots(dag: DAG, tis: Mapping[str, engine.TaskInstance]) -> dict[str, int]:
    """Pool name -> slots the queued and running tries of one run hold (:func:`kubedag.app.pools.pool_usage`)."""
    from kubedag.app.pools import pool_usage  # small; only runners with a ledger need it

    return {name: u.queued + u.running for name, u in pool_usage({}, [(dag, tis)]).items() if u.queued + u.running}


def blocked_by_others(dag: DAG, waiting: Mapping[str, tuple[str, ...]], others: Mapping[str, int]) -> bool:
    """Whether a task waits for open slots of a pool that other runners hold (``waiting``: the run pass's
    task_id -> reasons; ``others``: :attr:`LedgerTransaction.others`): then the run waits for them to be freed
    instead of being unable to progress."""
    for task_id, reasons in waiting.items():
        task = dag.tasks.get(task_id)
        if task is not None and others.get(task.pool, 0) > 0 and any(
                r.startswith(f"pool {task.pool}:") for r in reasons):
            return True
    return False


def ledger_path(logs_dir: Path) -> Path:
    """The ledger file: ``$KUBEDAG_POOL_LEDGER`` if set and non-empty (a parent runner's), else
    ``<logs_dir>/pool-ledger.json``."""
    named = os.environ.get(LEDGER_ENV)
    return Path(named) if named else logs_dir / LEDGER_FILE


@dataclass
class LedgerTransaction:
    """The ledger while its lock is held. ``others``: pool name -> slots held by every other live runner;
    :meth:`hold` sets this runner's holdings (written when the transaction ends)."""

    others: dict[str, int]
    held: dict[str, int] | None = field(default=None)

    def hold(self, held: Mapping[str, int]) -> None:
        """This runner now holds ``held`` (pool name -> slots, the pool slots of its queued and running tries)."""
        self.held = {pool: slots for pool, slots in held.items() if slots > 0}


class PoolLedger:
    """One runner's view of the ledger file ``path`` (created with its folder when missing). ``owner``: this
    runner's key in the file (default: a fresh one); its entry carries this process's pid and start time."""

    def __init__(self, path: Path, owner: str | None = None) -> None:
        self.path = Path(path)
        self.owner = owner or uuid.uuid4().hex
        self.pid = os.getpid()
        self._start = process_start_time(self.pid)

    @contextmanager
    def transaction(self) -> Iterator[LedgerTransaction]:
        """Lock the ledger (blocking ``flock``), yield the others' holdings, write this runner's (when
        :meth:`LedgerTransaction.hold` was called; an entry holding nothing is removed) and unlock.

        Raises:
            OSError: the file cannot be created, locked or written.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.seek(0)
                entries = _live(_parse(f.read()))
                others: dict[str, int] = {}
                for owner, entry in entries.items():
                    if owner != self.owner:
                        for pool, slots in entry["held"].items():
                            others[pool] = others.get(pool, 0) + slots
                tx = LedgerTransaction(others)
                yield tx
                if tx.held is not None:
                    entries.pop(self.owner, None)
                    if tx.held:
                        entries[self.owner] = {"pid": self.pid, "start": self._start, "held": tx.held}
                f.seek(0)
                f.truncate()
                f.write(json.dumps(entries, sort_keys=True))
                f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def release(self) -> None:
        """Remove this runner's entry (its run ended); an unwritable ledger is ignored (the entry is dropped
        once this process is gone)."""
        try:
            with self.transaction() as tx:
                tx.hold({})
        except OSError:
            pass


def _parse(text: str) -> dict[str, dict]:
    """The ledger's entries; an empty or damaged file reads as no entry (holders rewrite theirs each step)."""
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict) and isinstance(v.get("pid"), int)
            and isinstance(v.get("held"), dict)}


def _live(entries: dict[str, dict]) -> dict[str, dict]:
    """The entries whose process still runs (same pid and start time)."""
    live = {}
    for owner, entry in entries.items():
        start = process_start_time(entry["pid"])
        if start is not None and (entry.get("start") in (None, "") or start in ("", entry.get("start"))):
            live[owner] = entry
    return live

"""Pool slots counted over every run that shares the pools, one rule for both executors.

As Airflow's ``Pool.open_slots``: a pool's open slots are its slots less the ``pool_slots`` of the task
instances that hold them (queued or running), across every DAG run of the pool's scope (a namespace on a
cluster, the metadata DB locally). The default pool (``default-pool``, 128 slots, as Airflow's
``default_pool``) always exists; a task naming a pool that does not exist gets 0 open slots.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kubedag.core import engine
from kubedag.core.spec.dag import DAG, DEFAULT_POOL, DEFAULT_POOL_SLOTS
from kubedag.core.states import TaskInstanceState


@dataclass(frozen=True)
class PoolUsage:
    """Slots a pool has, and those held by queued and running task instances (``open = slots - queued - running``,
    never below 0 in :attr:`open`)."""

    slots: int
    queued: int = 0
    running: int = 0

    @property
    def open(self) -> int:
        """Open slots (Airflow's ``Pool.open_slots``), at least 0."""
        return max(0, self.slots - self.queued - self.running)


def pool_usage(pools: Mapping[str, int], runs: Iterable[tuple[DAG, Mapping[str, engine.TaskInstance]]]) -> dict[str, PoolUsage]:
    """Every pool's usage: ``pools`` maps pool name -> slots (the default pool is added when missing); ``runs``
    gives each active run's DAG and task instances. Tasks of pools not in ``pools`` are counted under their
    pool name with 0 slots."""
    slots = {DEFAULT_POOL: DEFAULT_POOL_SLOTS, **pools}
    held: dict[str, list[int]] = {}
    for dag, tis in runs:
        for task_id, ti in tis.items():
            task = dag.tasks.get(task_id)
            if task is None or ti.state not in engine.ACTIVE_STATES:
                continue
            entry = held.setdefault(task.pool, [0, 0])
            entry[0 if ti.state == TaskInstanceState.QUEUED else 1] += task.pool_slots
    names = set(slots) | set(held)
    return {name: PoolUsage(slots.get(name, 0), *held.get(name, (0, 0))) for name in names}


def pool_free(pools: Mapping[str, int], runs: Iterable[tuple[DAG, Mapping[str, engine.TaskInstance]]]) -> dict[str, int]:
    """Pool name -> open slots, as the engine's ``plan(pool_free=)`` takes it (see :func:`pool_usage`)."""
    return {name: usage.slots - usage.queued - usage.running for name, usage in pool_usage(pools, runs).items()}

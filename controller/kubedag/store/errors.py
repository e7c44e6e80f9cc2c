"""Errors raised by :mod:`kubedag.store.repository`."""

from __future__ import annotations

__all__ = ["StoreError", "DagNotFound", "DagRunNotFound", "TaskInstanceNotFound"]


class StoreError(Exception):
    """Base class of the errors raised by kubedag.store.repository."""


class DagNotFound(StoreError, LookupError):
    """No ``dag`` row with that dag_id."""


class DagRunNotFound(StoreError, LookupError):
    """No ``dag_run`` row with that (dag_id, run_id)."""


class TaskInstanceNotFound(StoreError, LookupError):
    """No ``task_instance`` row with that (dag_id, run_id, task_id)."""

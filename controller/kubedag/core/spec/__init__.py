"""DAG manifests: typed models (:mod:`.models`), validation with field paths (:mod:`.loader`) and the
resolved :class:`~kubedag.core.spec.dag.DAG` the rest of kubedag works on.

The names below are resolved on first use (PEP 562), so importing a light submodule (:mod:`.external`,
:mod:`.durations`) does not load pydantic: the sensor check program starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubedag.core.spec.dag import DAG, Task, build_dag
    from kubedag.core.spec.loader import DAGValidationError, FieldError, load_dag, load_dags, parse_dag, validate_file

_EXPORTS = {
    "DAG": "dag", "Task": "dag", "build_dag": "dag",
    "DAGValidationError": "loader", "FieldError": "loader", "load_dag": "loader", "load_dags": "loader",
    "parse_dag": "loader", "validate_file": "loader",
}

__all__ = ["DAG", "DAGValidationError", "FieldError", "Task", "build_dag", "load_dag", "load_dags", "parse_dag", "validate_file"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""DAG manifests: typed models (:mod:`.models`), validation with field paths (:mod:`.loader`) and the
resolved :class:`~kubedag.core.spec.dag.DAG` the rest of kubedag works on."""

from kubedag.core.spec.dag import DAG, Task, build_dag
from kubedag.core.spec.loader import DAGValidationError, FieldError, load_dag, load_dags, parse_dag, validate_file

__all__ = ["DAG", "DAGValidationError", "FieldError", "Task", "build_dag", "load_dag", "load_dags", "parse_dag", "validate_file"]

"""kubedag: a Kubernetes-native workflow orchestrator with Apache Airflow's scheduling semantics.

Layers (outer may import inner, never the reverse):

- ``cli`` (Typer) and adapters: ``local`` (processes), ``store`` (SQLAlchemy), later ``k8s`` (kopf)
- functional core, no I/O: ``engine``, ``timetable``, ``templating``
- ``spec``: the DAG manifest as typed, validated models
"""

__version__ = "0.1.0"

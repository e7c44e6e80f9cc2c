"""Who may call what: every endpoint's Kubernetes permissions, in ONE table (:data:`PERMISSIONS`), keyed by the
endpoint's operation id (Airflow's ``operationId`` where Airflow has the endpoint).

Each request is authorised by :func:`kubedag.api.auth.authorize`, which asks the
:class:`~kubedag.app.catalog.Authorizer` for every :class:`Need` of its endpoint (on a cluster a
SubjectAccessReview each, so the cluster's RBAC decides; locally every authenticated identity may do everything).
A route is declared with :func:`kubedag.api.routing.endpoint`, which refuses an operation id missing here, so no
endpoint escapes authorisation; :data:`PUBLIC` lists the few that need no identity (as Airflow's health and
version endpoints).

Airflow's DAG-level access maps to resourceName-level RBAC on ``dags``: a :class:`Need` on ``dags`` with
``name_param="dag_id"`` is checked for that DAG's name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Need:
    """One permission, in Kubernetes' terms: ``verb`` on ``resource`` (``subresource``) of API ``group``
    (``kubedag.io``; ``""`` for core resources such as ``pods/log``, ``configmaps``, ``secrets``).
    ``name_param``: the path parameter whose value is the object's name (resourceName-level RBAC), if any."""

    verb: str
    resource: str
    subresource: str | None = None
    group: str = "kubedag.io"
    name_param: str | None = None

    def describe(self) -> str:
        """``verb resource[/subresource]`` (with the group when it is not kubedag.io), for a 403's detail."""
        what = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.verb} {what}" + (f".{self.group}" if self.group not in ("kubedag.io", "") else "")


def _n(verb: str, resource: str, **kw: str) -> Need:
    return Need(verb, resource, **kw)


LIST_DAGS, GET_DAG, PATCH_DAG = _n("list", "dags"), _n("get", "dags", name_param="dag_id"), \
    _n("patch", "dags", name_param="dag_id")
LIST_RUNS, GET_RUN, CREATE_RUN = _n("list", "dagruns"), _n("get", "dagruns"), _n("create", "dagruns")
PATCH_RUN, DELETE_RUN = _n("patch", "dagruns"), _n("delete", "dagruns")
POD_LOG = Need("get", "pods", subresource="log", group="")

PERMISSIONS: dict[str, tuple[Need, ...]] = {
    # DAGs and their tasks
    "get_dags": (LIST_DAGS,),
    "patch_dags": (LIST_DAGS, _n("patch", "dags")),
    "get_dag": (GET_DAG,),
    "get_dag_details": (GET_DAG,),
    "patch_dag": (PATCH_DAG,),
    "get_tasks": (GET_DAG,),
    "get_task": (GET_DAG,),
    "get_import_errors": (LIST_DAGS,),
    "get_import_error": (LIST_DAGS,),
    # DAG runs
    "get_dag_runs": (LIST_RUNS,),
    "get_dag_run": (GET_RUN,),
    "trigger_dag_run": (GET_DAG, CREATE_RUN),
    "patch_dag_run": (PATCH_RUN,),
    "delete_dag_run": (DELETE_RUN,),
    "clear_dag_run": (PATCH_RUN,),
    "post_clear_task_instances": (LIST_RUNS, PATCH_RUN),
    # task instances, their tries, logs and XComs (all read from the DAGRun and the history)
    "get_task_instances": (GET_RUN,),
    "get_task_instance": (GET_RUN,),
    "patch_task_instance": (PATCH_RUN,),
    "get_task_instance_tries": (GET_RUN,),
    "get_task_instance_try_details": (GET_RUN,),
    "get_log": (GET_RUN, POD_LOG),
    "get_xcom_entries": (GET_RUN,),
    "get_xcom_entry": (GET_RUN,),
    # backfills
    "list_backfills": (_n("list", "backfills"),),
    "get_backfill": (_n("get", "backfills"),),
    "create_backfill": (GET_DAG, _n("create", "backfills")),
    "pause_backfill": (_n("patch", "backfills"),),
    "unpause_backfill": (_n("patch", "backfills"),),
    "cancel_backfill": (_n("patch", "backfills"),),
    # pools, variables, connections (variables and connections come from ConfigMaps and Secrets)
    "get_pools": (_n("list", "pools"),),
    "get_pool": (_n("get", "pools", name_param="pool_name"),),
    "get_variables": (Need("list", "configmaps", group=""),),
    "get_variable": (Need("list", "configmaps", group=""),),
    "get_connections": (Need("list", "secrets", group=""),),
    "get_connection": (Need("list", "secrets", group=""),),
    # Airflow 2's stable API, as the seeds call it
    "v1_get_dag_runs": (LIST_RUNS,),
    "v1_trigger_dag_run": (GET_DAG, CREATE_RUN),
}
"""operation id -> the permissions it needs (all of them)."""

PUBLIC = frozenset({
    "get_health", "get_version", "v1_get_health", "airflow2_health", "healthz", "readyz", "create_token",
})
"""Operation ids served without authentication: health and version (public in Airflow 3 too), the probes, and
``/auth/token`` (which checks the credentials it is given)."""

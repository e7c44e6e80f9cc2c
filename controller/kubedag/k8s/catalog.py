"""The :class:`kubedag.app.catalog.Catalog` of a cluster: :class:`ClusterCatalog` reads the DAG, DAGRun, Pool and
Backfill objects through the Kubernetes API, and falls back to the controller's archive (an injected ``history``
Catalog over the metadata DB, ``kubedag.store.catalog``; the entry point composes the two) for what etcd does
not keep: runs whose DAGRun was deleted (``runHistoryLimit``), the dates, hosts and reasons of tries, archived
logs and XComs.

* ``dag_id``: a DAG's name in the home namespace, ``<namespace>.<name>`` elsewhere
  (:class:`kubedag.k8s.catalog_objects.Namespaces` says why).
* **Who sees what**: :meth:`ClusterCatalog.for_identity` gives a catalog limited to the namespaces where the
  identity may ``list dags`` (a SubjectAccessReview per namespace): the others are invisible (NotFound, absent
  from lists), as Kubernetes hides what RBAC does not grant.
* **Task instances** are the DAG's tasks with the state and try number of the DAGRun's ``status.tasks``
  (current), and the dates, host and reason of the archive's row for that try when there is one.
* **Logs**: the try's pod log (``pods/log``) while the pod exists (the current try's pod is named in the status;
  an earlier try's is the deterministic :func:`kubedag.core.naming.pod_name`), masked with the secrets of the
  DAG's ``variablesFrom``/``connectionsFrom`` (read as the controller reads them: a live log whose secrets cannot
  be read is not served); else the archived log, which the controller masked when it archived it.
* **Variables and connections** are per DAG on a cluster (ConfigMaps and Secrets the DAG names), not global as in
  Airflow: the catalog lists none.

Kubernetes failures become :class:`~kubedag.app.operations.ports.OperationError` (one line); a missing object is
:class:`~kubedag.app.operations.ports.NotFound`.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from kubedag.app.catalog import (
    BackfillInfo, Catalog, ComponentHealth, ConnectionInfo, DagInfo, HealthInfo, Identity, PoolInfo, RunInfo, RunQuery,
    TaskInstanceInfo, TryInfo, VariableInfo, XComInfo,
)
from kubedag.app.operations.ports import InvalidRequest, NotFound, OperationError, Unavailable
from kubedag.core import naming as names
from kubedag.core.secrets import load_sources
from kubedag.core.spec.dagrun import TaskEntry
from kubedag.k8s import catalog_objects as objects
from kubedag.k8s.catalog_objects import Namespaces, history_dag_id
from kubedag.k8s.kubeapi import ClusterRuns, KubeApi, KubeError, Refused, Unreachable, is_run_of
from kubedag.k8s.kubeapi import NotFound as KubeNotFound

LIST_PAGE = 5000
"""DAGRuns per list request: a whole DAG's runs in few requests (every page costs the API server a walk of its
objects; 500 a page made a 10,000-run listing 5x slower on the emulator)."""
HISTORY_LIMIT = 1_000_000
"""The most runs asked of the history at once (its filters apply; the merged list is paged here)."""


@contextlib.contextmanager
def kube_errors() -> Iterator[None]:
    """Kubernetes failures as the operations' errors: a missing object NotFound, an unreachable or failing API
    server Unavailable (HTTP 503), a 401/403 to the server's own identity Unavailable naming the permission (a
    deployment error, not the caller's: the caller was authorised by a SubjectAccessReview), the rest
    OperationError."""
    try:
        yield
    except KubeNotFound as exc:
        raise NotFound(str(exc)) from None
    except Unreachable as exc:
        raise Unavailable(str(exc)) from None
    except Refused as exc:
        raise Unavailable(f"the kubedag API server's own Kubernetes identity was refused ({exc}); a deployment "
                          "error: grant its ServiceAccount that permission (the Helm chart's RBAC does)") from None
    except KubeError as exc:
        raise OperationError(str(exc)) from None


def operator_of(task: Any) -> str:
    """The task's kind as the API's ``operator`` (Airflow's operator class, in kubedag's terms)."""
    if task.empty:
        return "empty"
    if task.trigger is not None:
        return "trigger"
    if task.sensor is not None:
        return "sensor"
    return "branch" if task.branch else "command"


class ClusterCatalog:
    """:class:`kubedag.app.catalog.Catalog` over the API server ``api`` (a :class:`KubeApi`; its namespace is the
    home namespace), serving also ``namespaces`` (``<ns>.<name>`` ids). ``history``: the archive's Catalog, whose
    dag_ids are ``<namespace>/<name>`` (None: only what the cluster holds). ``visible(namespace)``: whether the
    caller may see a namespace (None: all served namespaces). ``scheduler``: the controller's health (e.g. from
    its Lease; None: the history's, else unknown)."""

    def __init__(self, api: KubeApi, *, namespaces: Sequence[str] = (), history: Catalog | None = None,
                 visible: Callable[[str], bool] | None = None,
                 scheduler: Callable[[], ComponentHealth] | None = None) -> None:
        self.api, self.history, self._visible, self._scheduler = api, history, visible, scheduler
        self.ns = Namespaces(api.namespace, tuple(namespaces))

    # --- scope -------------------------------------------------------------------------------------------
    def scoped(self, visible: Callable[[str], bool]) -> ClusterCatalog:
        """The same catalog limited to the namespaces ``visible`` accepts."""
        return ClusterCatalog(self.api, namespaces=self.ns.others, history=self.history, visible=visible,
                              scheduler=self._scheduler)

    def for_identity(self, identity: Identity, authorizer: Any) -> ClusterCatalog:
        """The catalog ``identity`` sees: the namespaces where ``authorizer`` lets it ``list dags``."""
        return self.scoped(lambda namespace: authorizer.allowed(identity, "list", "dags", namespace))

    def visible_namespaces(self) -> list[str]:
        """The served namespaces the caller may see, home first."""
        return [n for n in self.ns.all if self._visible is None or self._visible(n)]

    def locate(self, api_id: str) -> tuple[str, str]:
        """``(namespace, name)`` of a DAG, pool or backfill id. Raises NotFound when it names a namespace that is
        not served or not visible."""
        found = self.ns.locate(api_id)
        if found is None or (self._visible is not None and not self._visible(found[0])):
            raise NotFound(f"{api_id!r} not found")
        return found

    def api_for(self, namespace: str) -> KubeApi:
        """A :class:`KubeApi` on the same connection whose default namespace is ``namespace``."""
        return self.api if namespace == self.api.namespace else KubeApi(self.api.api_client, namespace, self.api.source)

    # --- DAGs --------------------------------------------------------------------------------------------
    def dags(self) -> list[DagInfo]:
        out: list[DagInfo] = []
        with kube_errors():
            for namespace in self.visible_namespaces():
                out += [objects.dag_info(body, self.ns) for body in self.api.list_dags(namespace)]
        return sorted(out, key=lambda d: d.dag_id)

    def dag(self, dag_id: str) -> DagInfo:
        namespace, name = self.locate(dag_id)
        with kube_errors():
            body = self.api.get_dag(name, namespace)
        return objects.dag_info(body, self.ns)

    # --- runs --------------------------------------------------------------------------------------------
    def _run_objects(self, namespace: str, name: str | None) -> list[dict[str, Any]]:
        selector = f"{names.LABEL_DAG}={name}" if name else None
        with kube_errors():
            listed = self.api.list_dagruns(namespace, label_selector=selector, page_size=LIST_PAGE)
        return [o for o in listed if name is None or is_run_of(o, name)]

    def _dag_or_none(self, namespace: str, name: str) -> Any:
        try:
            return self.dag(self.ns.api_id(namespace, name)).dag
        except OperationError:
            return None

    def runs(self, query: RunQuery) -> tuple[list[RunInfo], int]:
        """DAGRun objects (and the history's runs whose object is gone) matching ``query``. Raises NotFound for a
        ``dag_id`` with neither a DAG object nor any run, InvalidRequest for an unknown ``order_by``."""
        exists, dag = True, None
        if query.dag_id is not None:
            namespace, name = self.locate(query.dag_id)
            try:
                dag = self.dag(query.dag_id).dag
            except NotFound:
                dag, exists = None, False
            # the data interval (a timetable step per run) only where the order needs it, else for the page only
            eager = dag if query.order_by.lstrip("-") in objects.INTERVAL_ORDERS else None
            tz = dag.timezone if dag is not None else None
            found = [objects.run_info(o, self.ns, eager, tz=tz) for o in self._run_objects(namespace, name)]
            history_query = replace(query, dag_id=history_dag_id(namespace, name), offset=0, limit=HISTORY_LIMIT)
        else:
            found = [objects.run_info(o, self.ns) for ns in self.visible_namespaces() for o in self._run_objects(ns, None)]
            history_query = replace(query, offset=0, limit=HISTORY_LIMIT)
        runs = {(r.dag_id, r.run_id): r for r in found if objects.matches(r, query)}
        if self.history is not None:
            visible = self.visible_namespaces()
            for record in self.history.runs(history_query)[0]:
                run = objects.from_history(record, self.ns, visible)
                if run is not None and objects.matches(run, query):
                    runs.setdefault((run.dag_id, run.run_id), run)
        if not exists and not runs:
            raise NotFound(f"DAG {query.dag_id!r} not found")
        try:
            page, total = objects.order_and_page(list(runs.values()), query)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        if query.dag_id is not None and dag is not None:
            page = [objects.fill_interval(r, dag) for r in page]
        return page, total

    def _run_object(self, dag_id: str, run_id: str) -> tuple[str, str, dict[str, Any] | None]:
        """``(namespace, DAG name, the DAGRun object or None when only the history has the run)``."""
        namespace, name = self.locate(dag_id)
        with kube_errors():
            try:
                return namespace, name, ClusterRuns(self.api_for(namespace)).find(name, run_id)
            except NotFound:
                return namespace, name, None

    def run(self, dag_id: str, run_id: str) -> RunInfo:
        namespace, name, obj = self._run_object(dag_id, run_id)
        if obj is not None:
            return objects.run_info(obj, self.ns, self._dag_or_none(namespace, name))
        if self.history is not None:
            record = self.history.run(history_dag_id(namespace, name), run_id)
            return replace(record, dag_id=dag_id)
        raise NotFound(f"no run {run_id!r} of DAG {dag_id!r}")

    # --- task instances and tries ------------------------------------------------------------------------
    def _archived(self, fn: str, namespace: str, name: str, *args: Any) -> Any:
        """``history.<fn>(db dag_id, *args)``, or None without a history or when it does not know the run."""
        if self.history is None:
            return None
        try:
            return getattr(self.history, fn)(history_dag_id(namespace, name), *args)
        except NotFound:
            return None

    def task_instances(self, dag_id: str, run_id: str) -> list[TaskInstanceInfo]:
        namespace, name, obj = self._run_object(dag_id, run_id)
        archived = self._archived("task_instances", namespace, name, run_id)
        if obj is None:
            if archived is None:
                raise NotFound(f"no run {run_id!r} of DAG {dag_id!r}")
            return sorted((replace(t, dag_id=dag_id) for t in archived), key=lambda t: t.task_id)
        return self._task_instances(dag_id, name, obj, self._dag_or_none(namespace, name), archived)

    def grid(self, dag_id: str, run_ids: Sequence[str]) -> dict[str, list[TaskInstanceInfo]]:
        """:meth:`task_instances` of several runs of one DAG from one listing of its DAGRun objects, one read of
        the DAG and one batched read of the history (the grid's read), keyed by run id; a run id that neither
        holds is left out."""
        namespace, name = self.locate(dag_id)
        dag = self._dag_or_none(namespace, name)
        wanted = set(run_ids)
        live = {}
        for obj in self._run_objects(namespace, name):
            # the run id only: without the DAG no data interval is inferred (a cron step per object)
            run_id = objects.run_info(obj, self.ns, tz=dag.timezone if dag is not None else None).run_id
            if run_id in wanted:
                live[run_id] = obj
        archived: dict[str, list[TaskInstanceInfo]] = {}
        if self.history is not None:
            batched = getattr(self.history, "grid", None)
            history_id = history_dag_id(namespace, name)
            if batched is not None:
                archived = batched(history_id, list(wanted))
            else:
                archived = {r: a for r in wanted if (a := self._archived("task_instances", namespace, name, r))}
        out = {run_id: self._task_instances(dag_id, name, obj, dag, archived.get(run_id))
               for run_id, obj in live.items()}
        for run_id in wanted - set(live):
            if run_id in archived:
                out[run_id] = sorted((replace(t, dag_id=dag_id) for t in archived[run_id]), key=lambda t: t.task_id)
        return out

    def grid_version(self, dag_id: str, limit: int) -> str:
        """:class:`~kubedag.app.catalog.GridVersion`: a digest of the names and resourceVersions of the DAG's DAGRun
        objects (one list, no object converted: every write to a run, its status included, moves its
        resourceVersion) and the history's own token (its small queries) for the runs etcd no longer holds. Every
        live run counts, not only the latest ``limit``: a change to an older one rebuilds the grid once. Raises
        NotFound for a DAG id of a namespace not served or not visible."""
        namespace, name = self.locate(dag_id)
        digest = hashlib.blake2b(digest_size=8)
        for meta in sorted((o.get("metadata") or {} for o in self._run_objects(namespace, name)),
                           key=lambda m: m.get("name", "")):
            digest.update(f"{meta.get('name')}:{meta.get('resourceVersion')};".encode())
        archived = getattr(self.history, "grid_version", None)
        if archived is not None:
            digest.update(archived(history_dag_id(namespace, name), limit).encode())
        return digest.hexdigest()

    def _task_instances(self, dag_id: str, name: str, obj: dict[str, Any], dag: Any,
                        archived: list[TaskInstanceInfo] | None) -> list[TaskInstanceInfo]:
        """The task instances of DAGRun ``obj`` of DAG ``name`` (its spec ``dag`` or None), each completed by the
        history's row of the same try (``archived``)."""
        run = objects.run_info(obj, self.ns, dag)
        by_task = {t.task_id: t for t in archived or ()}
        entries = {k: TaskEntry.model_validate(v) for k, v in ((obj.get("status") or {}).get("tasks") or {}).items()}
        task_ids = sorted({*(dag.tasks if dag is not None else ()), *entries, *by_task})
        out = []
        for task_id in task_ids:
            entry, row = entries.get(task_id), by_task.get(task_id)
            task = dag.tasks.get(task_id) if dag is not None else None
            state = str(entry.s) if entry is not None else (row.state if row is not None else None)
            state = None if state == "none" else state
            try_number = entry.t if entry is not None else (row.try_number if row is not None else 0)
            same_try = row is not None and row.try_number == try_number
            pod = entry.pod_name(name, task_id) if entry is not None else None
            # Airflow's max_tries (retries allowed): the history's for this try (a clear renews it), else the task's
            if row is not None and same_try and try_number:
                max_tries = row.max_tries
            else:
                max_tries = task.retries if task is not None else (row.max_tries if row is not None else 0)
            out.append(TaskInstanceInfo(
                dag_id=dag_id, run_id=run.run_id, task_id=task_id, state=state, try_number=try_number,
                max_tries=max_tries,
                start_date=row.start_date if same_try else None, end_date=row.end_date if same_try else None,
                duration=row.duration if same_try else None, queued_at=row.queued_at if same_try else None,
                hostname=row.hostname if same_try else None, pod_name=pod or (row.pod_name if same_try else None),
                pool=task.pool if task is not None else (row.pool if row is not None else "default_pool"),
                pool_slots=task.pool_slots if task is not None else 1,
                priority_weight=dag.priority_weights.get(task_id, 1) if dag is not None else 1,
                operator=operator_of(task) if task is not None else (row.operator if row is not None else None),
                reason=_reason(entry, row if same_try else None), logical_date=run.logical_date, run_after=run.run_after,
                rendered_fields=row.rendered_fields if same_try else {},
            ))
        return out

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[TryInfo]:
        namespace, name, obj = self._run_object(dag_id, run_id)
        archived = [replace(t, dag_id=dag_id) for t in self._archived("tries", namespace, name, run_id, task_id) or ()]
        raw = ((obj or {}).get("status") or {}).get("tasks", {}).get(task_id)
        if obj is None and not archived:
            raise NotFound(f"no run {run_id!r} of DAG {dag_id!r}")
        if raw is not None:
            entry = TaskEntry.model_validate(raw)
            current = TryInfo(dag_id=dag_id, run_id=run_id, task_id=task_id, try_number=entry.t, state=str(entry.s),
                              pod_name=entry.pod_name(name, task_id), reason=entry.r)
            known = {t.try_number: t for t in archived}
            if entry.t in known:  # the archive has the dates; the status has the newest state
                current = replace(known[entry.t], state=str(entry.s), pod_name=current.pod_name or known[entry.t].pod_name,
                                  reason=_reason(entry, known[entry.t]))
            archived = [t for t in archived if t.try_number != entry.t] + ([current] if entry.t else [])
        if not archived and obj is not None:
            dag = self._dag_or_none(namespace, name)
            if dag is not None and task_id not in dag.tasks:
                raise NotFound(f"DAG {dag_id!r} has no task {task_id!r}")
        return sorted(archived, key=lambda t: t.try_number)

    # --- logs and XComs ----------------------------------------------------------------------------------
    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        namespace, name, obj = self._run_object(dag_id, run_id)
        pod = None
        if obj is not None:
            raw = ((obj.get("status") or {}).get("tasks") or {}).get(task_id)
            entry = TaskEntry.model_validate(raw) if raw is not None else None
            if entry is not None and entry.t == try_number and entry.p:
                pod = entry.pod_name(name, task_id)
            elif entry is None or try_number < entry.t:
                pod = names.pod_name(name, obj["metadata"]["name"], task_id, try_number)
        if pod is not None:
            api = self.api_for(namespace)
            try:
                text = api.read_pod_log(pod)
            except KubeNotFound:
                text = None
            except KubeError as exc:
                raise OperationError(f"log unavailable: {exc}") from None
            if text is not None:
                return self._mask(namespace, name, text)
        if self.history is not None:
            with contextlib.suppress(NotFound):
                return self.history.log(history_dag_id(namespace, name), run_id, task_id, try_number)
        if obj is None:
            raise NotFound(f"no run {run_id!r} of DAG {dag_id!r}")
        raise OperationError(f"log unavailable: try {try_number} of task {task_id!r} has no pod and no archived log")

    def _mask(self, namespace: str, name: str, text: str) -> str:
        """``text`` with the secrets of the DAG's variables and connections masked (as the controller masks the
        logs it archives). Raises OperationError when they cannot be read (the log is then not served)."""
        dag = self._dag_or_none(namespace, name)
        if dag is None or not (dag.variables_from or dag.connections_from):
            return text
        api = self.api_for(namespace)
        try:
            sources = load_sources(dag.variables_from, dag.connections_from,
                                   lambda kind, obj_name: api.read_source(kind, obj_name, namespace))
        except KubeError as exc:
            raise OperationError(f"log unavailable: its secrets cannot be read to mask them ({exc})") from None
        return sources.masker.mask(text)

    def xcoms(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[XComInfo]:
        namespace, name, obj = self._run_object(dag_id, run_id)
        archived = self._archived("xcoms", namespace, name, run_id, task_id)
        if archived is None and obj is None:
            raise NotFound(f"no run {run_id!r} of DAG {dag_id!r}")
        return [replace(x, dag_id=dag_id) for x in archived or ()]

    # --- pools, backfills, the rest ----------------------------------------------------------------------
    def pools(self) -> list[PoolInfo]:
        out: list[PoolInfo] = []
        with kube_errors():
            for namespace in self.visible_namespaces():
                found = [objects.pool_info(b, self.ns) for b in self.api.list_objects("pools", namespace)]
                if not any(p.name == self.ns.api_id(namespace, objects.DEFAULT_POOL) for p in found):
                    found.append(objects.default_pool(namespace, self.ns))
                out += found
        return sorted(out, key=lambda p: p.name)

    def backfills(self, dag_id: str | None = None) -> list[BackfillInfo]:
        wanted = self.locate(dag_id) if dag_id is not None else None
        out: list[BackfillInfo] = []
        with kube_errors():
            for namespace in ([wanted[0]] if wanted else self.visible_namespaces()):
                for body in self.api.list_objects("backfills", namespace):
                    if wanted is None or (body.get("spec") or {}).get("dagName") == wanted[1]:
                        out.append(objects.backfill_info(body, self.ns))
        return sorted(out, key=lambda b: (b.created_at is not None, b.created_at, b.id), reverse=True)

    def backfill(self, backfill_id: str) -> BackfillInfo:
        namespace, name = self.locate(backfill_id)
        with kube_errors():
            return objects.backfill_info(self.api.get_backfill(name, namespace), self.ns)

    def variables(self) -> list[VariableInfo]:
        return []

    def connections(self) -> list[ConnectionInfo]:
        return []

    def health(self) -> HealthInfo:
        """The metadata DB's health from the history (unhealthy without one) and the controller's from
        ``scheduler`` (else the history's)."""
        if self.history is not None:
            archived = self.history.health()
            scheduler = self._scheduler() if self._scheduler is not None else archived.scheduler
            return HealthInfo(metadatabase=archived.metadatabase, scheduler=scheduler)
        unknown = ComponentHealth("unhealthy", detail="no metadata database configured")
        return HealthInfo(metadatabase=unknown,
                          scheduler=self._scheduler() if self._scheduler is not None else unknown)


def _reason(entry: TaskEntry | None, row: Any) -> str | None:
    """The reason to show for a try: the archive's row of that try (``row``: a task instance or try of the DB, or
    None) when it has one for the state the status gives, else the status entry's (a failure the DB missed)."""
    if row is not None and row.reason and (entry is None or not entry.r or row.state == str(entry.s)):
        return str(row.reason)
    return entry.r if entry is not None and entry.r else (row.reason if row is not None else None)


__all__ = ["ClusterCatalog", "kube_errors", "operator_of"]

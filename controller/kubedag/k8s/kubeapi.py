"""A thin synchronous adapter over the official ``kubernetes`` client, for the CLI.

:func:`connect` finds the cluster as kubectl does:

1. ``--kubeconfig PATH`` (the file must exist);
2. else ``$KUBECONFIG`` (a ``:``-separated list, merged; missing files are skipped, as kubectl does),
   else ``~/.kube/config`` if it exists;
3. else the in-cluster config (a pod's service account), when ``KUBERNETES_SERVICE_HOST`` is set.

``context`` picks a kubeconfig context (default: its ``current-context``). The namespace is the one
given, else the context's ``namespace``, else (in a pod) the service account's, else ``default``.

Every failure is raised as :class:`KubeError` (or a subclass) whose message is one line meant for a
person: a missing kubeconfig, an unreachable API server, the kubedag CRDs not installed, an object not
found, a refusal (401/403: :class:`Refused`) or a rejected write (422). Every request goes through one
:class:`kubedag.k8s.limits.ThreadLimiter` per connection (``limits``): a full queue is a 429, raised as
:class:`Unreachable` like a 5xx (retry later). No method returns the client's model objects:
custom resources are plain dicts, as the API server sends them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from kubedag.core.naming import GROUP, VERSION
from kubedag.k8s.kubeerrors import (AlreadyExists, Conflict, CRDsNotInstalled, KubeError, NotFound, Refused, Unreachable,
                                     object_address, status_message, status_reason)

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_KUBECONFIG = "~/.kube/config"
CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a TCP connection to the API server."""
READ_TIMEOUT = 120.0
"""Seconds to wait for an answer (a whole list, or a pod's log)."""

CRDS_HINT = "install them with `kubectl apply -f crds/` (or the Helm chart)"

__all__ = [
    "AlreadyExists", "CRDsNotInstalled", "ClusterRuns", "Conflict", "KubeApi", "KubeError", "NotFound", "Refused",
    "Unreachable", "connect", "is_run_of", "load_configuration",
]


def _expand(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def _kubeconfig_files(kubeconfig: str | None) -> str | None:
    """The kubeconfig file(s) to load, ``:``-joined, or None when there is none (then: in-cluster)."""
    if kubeconfig:
        path = _expand(kubeconfig)
        if not os.path.isfile(path):
            raise KubeError(f"kubeconfig {kubeconfig} not found")
        return path
    env = os.environ.get("KUBECONFIG")
    if env:
        existing = [_expand(p) for p in env.split(os.pathsep) if p and os.path.isfile(_expand(p))]
        return os.pathsep.join(existing) if existing else None
    default = _expand(DEFAULT_KUBECONFIG)
    return default if os.path.isfile(default) else None


def load_configuration(kubeconfig: str | None = None, context: str | None = None) -> tuple[Any, str | None, str]:
    """Load the client configuration as kubectl does (see the module docstring).

    Returns ``(configuration, the namespace of the config or None, where it came from)``.
    Raises :class:`KubeError` when there is no usable configuration.
    """
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    files = _kubeconfig_files(kubeconfig)
    if files is None:
        if context:
            raise KubeError(f"--context {context}: no kubeconfig found (KUBECONFIG unset or empty, no {DEFAULT_KUBECONFIG})")
        if not os.environ.get("KUBERNETES_SERVICE_HOST"):
            raise KubeError(
                "no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG or create "
                f"{DEFAULT_KUBECONFIG} (or run inside a cluster)"
            )
        try:
            config.load_incluster_config(client_configuration=configuration)
        except ConfigException as exc:
            raise KubeError(f"cannot use the in-cluster configuration: {exc}") from None
        try:
            namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None
        except OSError:
            namespace = None
        return configuration, namespace, "in-cluster configuration"
    try:
        contexts, current = config.list_kube_config_contexts(config_file=files)
        if context is not None:
            chosen = next((c for c in contexts or [] if c.get("name") == context), None)
            if chosen is None:
                names = ", ".join(sorted(c.get("name", "") for c in contexts or [])) or "none"
                raise KubeError(f"context {context!r} not found in kubeconfig {files} (contexts: {names})")
        else:
            chosen = current
        config.load_kube_config(config_file=files, context=context, client_configuration=configuration,
                                persist_config=False)
    except KubeError:
        raise
    except ConfigException as exc:
        raise KubeError(f"invalid kubeconfig {files}: {' '.join(str(exc).split())}") from None
    except OSError as exc:
        raise KubeError(f"cannot read kubeconfig {files}: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - yaml.YAMLError, and the loader's KeyError/TypeError on odd files
        raise KubeError(f"invalid kubeconfig {files}: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
    namespace = ((chosen or {}).get("context") or {}).get("namespace") or None
    return configuration, namespace, f"kubeconfig {files}"


def connect(kubeconfig: str | None = None, context: str | None = None, namespace: str | None = None, *,
            limits: Any = None, client_name: str = "cli") -> KubeApi:
    """A :class:`KubeApi` for the configured cluster; ``namespace`` None: the context's, else ``default``.
    ``limits``: its :class:`kubedag.k8s.limits.RequestLimits` (default 16 in flight, 1,000 waiting), metrics
    labelled ``client_name``."""
    from kubernetes import client

    from kubedag.k8s.limits import bound_api_client

    configuration, config_namespace, source = load_configuration(kubeconfig, context)
    configuration.retries = 1  # one retry (a stale pooled connection), not urllib3's 3 on a dead server
    api_client = bound_api_client(client.ApiClient(configuration), limits, client_name)
    return KubeApi(api_client, namespace or config_namespace or "default", source)


class KubeApi:
    """The few calls the CLI makes, each translating the client's failures into :class:`KubeError`.

    ``namespace`` is the default namespace of every call; a context manager (closes the connection pool).
    """

    def __init__(self, api_client: Any, namespace: str, source: str = "") -> None:
        from kubernetes import client

        self.api_client = api_client
        self.namespace = namespace
        self.source = source
        self.host = api_client.configuration.host
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)

    def close(self) -> None:
        self.api_client.close()

    def __enter__(self) -> KubeApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- error translation ---------------------------------------------------------------------------------

    def _call(self, fn: Any, *args: Any, what: str, kind: str | None = None, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` with a request timeout; failures become :class:`KubeError`.

        ``what`` names the object or list for messages; ``kind`` the custom resource plural, so that a 404
        that does not name an object (the resource type is unknown) reads as "CRDs not installed".
        """
        import urllib3
        from kubernetes.client.exceptions import ApiException

        kwargs.setdefault("_request_timeout", (CONNECT_TIMEOUT, READ_TIMEOUT))
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            raise self._api_error(exc, what, kind) from None
        except urllib3.exceptions.MaxRetryError as exc:
            reason = object_address.sub("", str(exc.reason or exc))
            raise Unreachable(f"cannot reach the Kubernetes API server at {self.host}: {reason}") from None
        except urllib3.exceptions.HTTPError as exc:
            reason = object_address.sub("", str(exc))
            raise Unreachable(f"cannot reach the Kubernetes API server at {self.host}: {reason}") from None
        except OSError as exc:
            raise Unreachable(f"cannot reach the Kubernetes API server at {self.host}: {exc}") from None

    def _api_error(self, exc: Any, what: str, kind: str | None) -> KubeError:
        message, details = status_message(exc)
        status = exc.status
        if status == 404:
            if kind is not None and not details.get("name"):
                return CRDsNotInstalled(
                    f"the API server at {self.host} does not serve {kind}.{GROUP}/{VERSION}: "
                    f"the kubedag CRDs are not installed; {CRDS_HINT}"
                )
            return NotFound(f"{what} not found")
        if status == 409:
            if status_reason(exc) == "Conflict":
                return Conflict(f"{what} was changed by someone else meanwhile: {message}")
            return AlreadyExists(f"{what} already exists")
        if status == 401:
            return Refused(f"the API server at {self.host} refused the credentials ({self.source}): {message}")
        if status == 403:
            return Refused(f"forbidden: {message}")
        if status == 422:
            return KubeError(f"the API server rejected {what}: {message}")
        error = Unreachable if status >= 500 or status == 429 else KubeError
        return error(f"{what}: the API server answered {status} {exc.reason or ''}: {message}".replace("  ", " "))

    # --- kubedag custom resources --------------------------------------------------------------------------

    def _list(self, plural: str, namespace: str | None, label_selector: str | None,
              page_size: int = 500) -> list[dict[str, Any]]:
        """Every object of ``plural`` in ``namespace`` (None: all namespaces), following ``continue`` tokens,
        ``page_size`` objects a request."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        where = f"namespace {namespace}" if namespace else "any namespace"
        while True:
            extra: dict[str, Any] = {"limit": page_size}
            if token:
                extra["_continue"] = token
            if label_selector:
                extra["label_selector"] = label_selector
            if namespace is None:
                page = self._call(self._custom.list_cluster_custom_object, GROUP, VERSION, plural,
                                  what=f"{plural} in {where}", kind=plural, **extra)
            else:
                page = self._call(self._custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural,
                                  what=f"{plural} in {where}", kind=plural, **extra)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def list_dags(self, namespace: str | None = "", label_selector: str | None = None) -> list[dict[str, Any]]:
        """DAG objects in ``namespace`` (default: :attr:`namespace`; None: all namespaces)."""
        return self._list("dags", self.namespace if namespace == "" else namespace, label_selector)

    def get_dag(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        """The DAG ``name``; raises :class:`NotFound`."""
        ns = namespace or self.namespace
        return self._call(self._custom.get_namespaced_custom_object, GROUP, VERSION, ns, "dags", name,
                          what=f"DAG {name!r} in namespace {ns!r}", kind="dags")

    def patch_dag(self, name: str, patch: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Apply a JSON merge patch to the DAG ``name``; raises :class:`NotFound`."""
        ns = namespace or self.namespace
        return self._call(self._custom.patch_namespaced_custom_object, GROUP, VERSION, ns, "dags", name, patch,
                          what=f"DAG {name!r} in namespace {ns!r}", kind="dags",
                          _content_type="application/merge-patch+json")

    def list_dagruns(self, namespace: str | None = "", label_selector: str | None = None,
                     page_size: int = 500) -> list[dict[str, Any]]:
        """DAGRun objects in ``namespace`` (default: :attr:`namespace`; None: all namespaces)."""
        return self._list("dagruns", self.namespace if namespace == "" else namespace, label_selector, page_size)

    def get_dagrun(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The DAGRun ``name``, or None if there is none."""
        ns = namespace or self.namespace
        try:
            return self._call(self._custom.get_namespaced_custom_object, GROUP, VERSION, ns, "dagruns", name,
                              what=f"DAGRun {name!r} in namespace {ns!r}", kind="dagruns")
        except CRDsNotInstalled:
            raise
        except NotFound:
            return None

    def create_dagrun(self, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Create a DAGRun; raises :class:`AlreadyExists` (409) when its name is taken."""
        ns = namespace or self.namespace
        name = (body.get("metadata") or {}).get("name")
        return self._call(self._custom.create_namespaced_custom_object, GROUP, VERSION, ns, "dagruns", body,
                          what=f"DAGRun {name!r} in namespace {ns!r}", kind="dagruns")

    def patch_dagrun(self, name: str, patch: dict[str, Any], namespace: str | None = None,
                     resource_version: str | None = None) -> dict[str, Any]:
        """Apply a JSON merge patch to the DAGRun ``name``; with ``resource_version`` the patch applies only to
        that version (optimistic concurrency: :class:`Conflict` when the run changed since it was read).
        Raises :class:`NotFound`."""
        ns = namespace or self.namespace
        if resource_version is not None:
            patch = {**patch, "metadata": {**(patch.get("metadata") or {}), "resourceVersion": resource_version}}
        return self._call(self._custom.patch_namespaced_custom_object, GROUP, VERSION, ns, "dagruns", name, patch,
                          what=f"DAGRun {name!r} in namespace {ns!r}", kind="dagruns",
                          _content_type="application/merge-patch+json")

    def delete_dagrun(self, name: str, namespace: str | None = None) -> None:
        """Delete the DAGRun ``name`` (its pods go with it through their owner references, in the background).
        Raises :class:`NotFound`."""
        from kubernetes import client

        ns = namespace or self.namespace
        self._call(self._custom.delete_namespaced_custom_object, GROUP, VERSION, ns, "dagruns", name,
                   what=f"DAGRun {name!r} in namespace {ns!r}", kind="dagruns",
                   body=client.V1DeleteOptions(propagation_policy="Background"))

    def list_objects(self, plural: str, namespace: str | None = "", label_selector: str | None = None) -> list[dict[str, Any]]:
        """kubedag objects of ``plural`` (``pools``, ``backfills``...) in ``namespace`` (default: :attr:`namespace`)."""
        return self._list(plural, self.namespace if namespace == "" else namespace, label_selector)

    def patch_backfill(self, name: str, patch: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Apply a JSON merge patch to the Backfill ``name``; raises :class:`NotFound`."""
        ns = namespace or self.namespace
        return self._call(self._custom.patch_namespaced_custom_object, GROUP, VERSION, ns, "backfills", name, patch,
                          what=f"Backfill {name!r} in namespace {ns!r}", kind="backfills",
                          _content_type="application/merge-patch+json")

    def create_backfill(self, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Create a Backfill; raises :class:`AlreadyExists` (409) when its name is taken."""
        ns = namespace or self.namespace
        name = (body.get("metadata") or {}).get("name")
        return self._call(self._custom.create_namespaced_custom_object, GROUP, VERSION, ns, "backfills", body,
                          what=f"Backfill {name!r} in namespace {ns!r}", kind="backfills")

    def get_backfill(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        """The Backfill ``name``; raises :class:`NotFound`."""
        ns = namespace or self.namespace
        return self._call(self._custom.get_namespaced_custom_object, GROUP, VERSION, ns, "backfills", name,
                          what=f"Backfill {name!r} in namespace {ns!r}", kind="backfills")

    # --- pods, ConfigMaps and Secrets ----------------------------------------------------------------------

    def read_source(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The ``ConfigMap`` or ``Secret`` (``kind``) ``name`` as the API returns it (a dict: a Secret's ``data`` is
        base64), or None when there is none: the ``get`` of :func:`kubedag.core.secrets.load_sources`. Raises
        :class:`KubeError` otherwise (e.g. forbidden)."""
        ns = namespace or self.namespace
        read = self._core.read_namespaced_config_map if kind == "ConfigMap" else self._core.read_namespaced_secret
        try:
            obj = self._call(read, name, ns, what=f"{kind} {name!r} in namespace {ns!r}")
        except NotFound:
            return None
        return self.api_client.sanitize_for_serialization(obj)


    def read_pod_log(self, name: str, namespace: str | None = None, container: str | None = None) -> str:
        """The log of pod ``name``'s container, exactly as written (not parsed); raises :class:`NotFound`."""
        ns = namespace or self.namespace
        extra: dict[str, Any] = {"container": container} if container else {}
        # _preload_content=False: the raw bytes (the client would otherwise try to deserialise the text)
        response = self._call(self._core.read_namespaced_pod_log, name, ns, what=f"pod {name!r} in namespace {ns!r}",
                              _preload_content=False, **extra)
        try:
            return response.data.decode("utf-8", errors="replace")
        finally:
            response.release_conn()


# --- the ports of kubedag.app.operations on the cluster ------------------------------------------------------

_DNS1123_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"


def is_run_of(obj: dict[str, Any], dag: str) -> bool:
    """Whether the DAGRun object ``obj`` is a run of DAG ``dag`` (its ``spec.dagName`` or ``kubedag.io/dag`` label)."""
    from kubedag.core.naming import LABEL_DAG

    labels = (obj.get("metadata") or {}).get("labels") or {}
    return (obj.get("spec") or {}).get("dagName") == dag or labels.get(LABEL_DAG) == dag


class ClusterRuns:
    """:class:`kubedag.app.operations.RunsRepository` and :class:`~kubedag.app.operations.PauseFlags` on the
    DAG and DAGRun objects of :attr:`KubeApi.namespace`. The controller stays the only writer of a run: a
    trigger creates a DAGRun, a clear or mark is appended to its ``spec.actions`` (recorded in
    :attr:`submitted` as ``(DAGRun name, action)`` so that the caller can wait for ``status.appliedActions``),
    a pause patches the DAG's ``spec.paused``. Failures are :class:`kubedag.app.operations.OperationError`
    (one line); the API's own are :class:`KubeError`."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api
        self.submitted: list[tuple[str, dict[str, Any]]] = []
        self._loaded: dict[str, Any] | None = None

    def find(self, dag: str, run: str) -> dict[str, Any]:
        """The DAGRun of ``dag`` whose run id or object name is ``run``: by the deterministic name first, then by
        name, then (runs created by hand with generateName) by ``spec.runId``. Raises ``NotFound`` (of the app)."""
        from kubedag.app import operations as ops
        from kubedag.core import naming as names

        api = self.api
        obj = api.get_dagrun(names.run_name(dag, run))
        if obj is not None and is_run_of(obj, dag):
            return obj
        if len(run) <= 253 and re.fullmatch(_DNS1123_SUBDOMAIN, run):
            obj = api.get_dagrun(run)
            if obj is not None:
                if not is_run_of(obj, dag):
                    owner = (obj.get("spec") or {}).get("dagName")
                    raise ops.NotFound(f"DAGRun {run} in namespace {api.namespace} is a run of DAG {owner!r}, not {dag!r}")
                return obj
        for obj in api.list_dagruns():
            if is_run_of(obj, dag) and (obj.get("spec") or {}).get("runId") == run:
                return obj
        raise ops.NotFound(f"no run {run!r} of DAG {dag!r} in namespace {api.namespace} "
                           f"(see `kubedag runs list --dag {dag} -n {api.namespace}`)")

    def create_run(self, dag: Any, run: Any) -> None:
        """Create the DAGRun of ``run`` (named :func:`kubedag.core.naming.run_name`; the controller infers the
        data interval from its DAG)."""
        from kubedag.app import operations as ops
        from kubedag.k8s.manifests import dagrun_manifest

        name = run.dag_id
        body = dagrun_manifest(self.api.namespace, name, run.run_id, str(run.run_type), run.logical_date,
                               conf=run.conf)
        obj_name = body["metadata"]["name"]
        try:
            self.api.create_dagrun(body)
        except AlreadyExists:
            raise ops.AlreadyExists(f"run {run.run_id!r} of DAG {name!r} already exists (DAGRun {obj_name} in "
                                    f"namespace {self.api.namespace}); pass another --run-id or --logical-date") from None

    def load_run(self, dag: Any, run_id: str) -> Any:
        """The run as its DAGRun object tells (state and try numbers of its status)."""
        from kubedag.app import operations as ops
        from kubedag.k8s.observe import run_from_object, tis_from_status

        obj = self.find(dag.dag_id, run_id)
        try:
            run = run_from_object(dag, obj)
        except ValueError as exc:  # pydantic's ValidationError too
            raise ops.OperationError(f"DAGRun {obj['metadata']['name']}: {' '.join(str(exc).split())}") from None
        self._loaded = obj
        return ops.LoadedRun(run, tis_from_status(obj.get("status")))

    def apply(self, dag: Any, change: Any) -> None:
        """Append the clear or mark to the run's ``spec.actions`` (the controller computes and applies it)."""
        import secrets
        from datetime import datetime, timezone

        obj = self._loaded
        if obj is None or (obj.get("spec") or {}).get("runId") not in (None, change.run.run_id):
            obj = self.find(dag if isinstance(dag, str) else dag.dag_id, change.run.run_id)
        action: dict[str, Any] = {"id": f"{change.kind}-{datetime.now(timezone.utc):%Y%m%dt%H%M%S}-{secrets.token_hex(3)}",
                                  "type": change.kind, "tasks": list(change.task_ids)}
        if change.kind == "clear":
            action.update(upstream=change.upstream, downstream=change.downstream, onlyFailed=change.only_failed)
        else:
            action["state"] = change.state
        self.append_action(obj, action)
        self.submitted.append((obj["metadata"]["name"], action))

    def append_action(self, obj: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
        """Append ``action`` to the DAGRun's ``spec.actions`` (a patch guarded by its resourceVersion; on a
        conflict the run is read again and the append retried)."""
        from kubedag.app import operations as ops

        name, api = obj["metadata"]["name"], self.api
        for _ in range(5):
            actions = list((obj.get("spec") or {}).get("actions") or [])
            try:
                return api.patch_dagrun(name, {"spec": {"actions": [*actions, action]}},
                                        resource_version=obj["metadata"].get("resourceVersion"))
            except Conflict:
                fresh = api.get_dagrun(name)
                if fresh is None:
                    raise ops.NotFound(f"DAGRun {name} in namespace {api.namespace} was deleted meanwhile") from None
                obj = fresh
        raise ops.OperationError(f"DAGRun {name} keeps changing; try again")

    def delete_run(self, dag_id: str, run_id: str) -> None:
        """Delete the DAGRun (its pods go with it); its history stays in the metadata DB."""
        try:
            self.api.delete_dagrun(self.find(dag_id, run_id)["metadata"]["name"])
        except NotFound:
            pass

    def runs_by_logical_date(self, dag: Any) -> dict[Any, tuple[str, str]]:
        """The DAG's DAGRun objects that have a ``spec.logicalDate`` (naive: in the DAG's timezone): logical date
        (UTC) -> ``(run_id, phase)``, phase ``queued`` until the controller set one."""
        from kubedag.core import timetable
        from kubedag.core.spec.dag import to_utc
        from kubedag.core.spec.models import parse_datetime

        out = {}
        for obj in self.api.list_dagruns():
            spec = obj.get("spec") or {}
            if not is_run_of(obj, dag.dag_id) or not spec.get("logicalDate"):
                continue
            try:
                logical = to_utc(parse_datetime(spec["logicalDate"]), dag.timezone)
            except (TypeError, ValueError):
                continue
            run_type = spec.get("runType") if spec.get("runType") in timetable.RUN_TYPES else "manual"
            phase = (obj.get("status") or {}).get("phase") or "queued"
            out[logical] = (spec.get("runId") or timetable.run_id(run_type, logical), phase)
        return out

    def is_paused(self, dag: Any) -> bool:
        """The DAG object's ``spec.paused``."""
        return bool((self.api.get_dag(dag.dag_id).get("spec") or {}).get("paused", False))

    def set_paused(self, dag: Any, paused: bool) -> bool:
        """Patch the DAG object's ``spec.paused``; returns it as stored."""
        name = dag if isinstance(dag, str) else dag.dag_id
        return bool((self.api.patch_dag(name, {"spec": {"paused": paused}}).get("spec") or {}).get("paused", False))

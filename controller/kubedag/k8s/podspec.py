"""The pod of a task try, as a plain JSON dict ready for the API server (pure, no I/O).

:func:`build_pod` makes a try's ``v1`` Pod in three layers, each merged over the one before by
:func:`merge_pod_template`:

1. the generated pod: kubedag's name, labels, annotations and owner reference, ``restartPolicy:
   Never``, ``activeDeadlineSeconds`` from ``executionTimeout``, the task's Kubernetes fields
   (``spec.defaults`` already applied by :func:`kubedag.core.spec.dag.build_dag`) and one container named
   ``base`` (the name Airflow's KubernetesExecutor gives the task's container) running the task's
   rendered command;
2. the DAG's ``spec.podTemplate``;
3. the task's ``podTemplate``.

What the controller relies on is set again after the templates and cannot be overridden: the pod's
name, namespace and owner reference, kubedag's ``kubedag.io/*`` and ``app.kubernetes.io/*`` labels and
annotations, ``restartPolicy: Never`` (a retry is a new pod, made by kubedag), and the XCom channel:
an ``emptyDir`` volume :data:`XCOM_VOLUME` mounted at :data:`kubedag.core.xcom.POD_XCOM_DIR` in the ``base``
container, ``$KUBEDAG_XCOM_PATH`` = :data:`kubedag.core.xcom.POD_XCOM_FILE`, which is also the container's
``terminationMessagePath`` (policy ``File``): the kubelet copies what the try wrote there (at most 4096
bytes) into ``status.containerStatuses[].state.terminated.message``, where the controller reads it.

Connections (``spec.connectionsFrom``) reach the container as ``KUBEDAG_CONN_<ID>`` variables with
``valueFrom.secretKeyRef`` (``secret_env``), so no URI is written in the pod spec. A built-in ``file``/
``http`` sensor runs in kubedag's own image (``image``), with the task's volumes.

:func:`kubernetes_problems` lists what would make a DAG's pods fail that the manifest's own
validation does not check (a task without an image, a mount of a volume the pod does not have, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from kubedag.core import naming as names
from kubedag.core.spec.dag import DAG, Task
from kubedag.core.spec.loader import FieldError
from kubedag.core.xcom import POD_XCOM_DIR, POD_XCOM_FILE, XCOM_PATH_ENV

CONTAINER = "base"
"""The task's container: Airflow's KubernetesExecutor and KubernetesPodOperator name it ``base`` too."""
ANNOTATION_RUN_ID = "kubedag.io/run-id"
ANNOTATION_TRY_NUMBER = "kubedag.io/try-number"
ANNOTATION_DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
"""Makes ``kubectl logs``/``exec`` pick ``base`` when a template adds sidecars."""
ANNOTATION_POKE = "kubedag.io/poke"
XCOM_VOLUME = "kubedag-xcom"
"""The ``emptyDir`` volume holding a try's XCom file (see the module docstring)."""

MERGE_KEYS: Mapping[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "ports": "containerPort",
}
"""List field name (wherever it appears in a pod) -> the key its items are merged by, as Kubernetes'
strategic merge patch does for these fields (``patchMergeKey``)."""

NO_IMAGE = "required to run on Kubernetes: set image on the task or in spec.defaults"


def build_pod(
    dag: DAG,
    task: Task,
    *,
    namespace: str,
    run_name: str,
    run_uid: str,
    run_id: str,
    try_number: int,
    command: Sequence[str],
    args: Sequence[str],
    env: Mapping[str, str],
    image: str | None = None,
    secret_env: Mapping[str, tuple[str, str]] | None = None,
    poke: int = 0,
) -> dict[str, Any]:
    """The ``v1`` Pod manifest of try ``try_number`` of ``task`` in DAGRun ``run_name``.

    Args:
        dag, task: the resolved DAG and one of its tasks (defaults applied).
        namespace: the pod's namespace (the DAGRun's: owner references cannot cross namespaces).
        run_name, run_uid: the owning DAGRun object's ``metadata.name`` and ``metadata.uid``; deleting
            the DAGRun deletes its pods (``ownerReferences``, ``blockOwnerDeletion``).
        run_id: Airflow's run id, kept in the ``kubedag.io/run-id`` annotation.
        try_number: 1 for the first try; part of the pod's name, labels and annotations.
        command, args: the container's ``command`` and ``args``, already rendered (empty: the image's).
        env: the container's environment, already rendered, in this order.
        image: overrides the task's image (kubedag's own image for a built-in ``file``/``http`` sensor).
        secret_env: variable name -> ``(Secret name, key)``, added as ``valueFrom.secretKeyRef`` after ``env``
            (connections: :func:`kubedag.core.secrets.connections_env`'s names).
        poke: the poke of a ``reschedule``-mode sensor's try (0: the first; see
            :func:`kubedag.core.naming.pod_name`): part of the name, label ``kubedag.io/poke`` when > 0.

    Kubernetes expands ``$(NAME)`` in ``command``, ``args`` and env values and turns ``$$`` into ``$``;
    every ``$`` in them is written ``$$``, so the container gets exactly the given strings, as a local
    process does. Templates' own strings are Kubernetes', not escaped.

    Returns:
        A new JSON-ready dict (nothing shared with ``dag``/``task``): ``metadata.name`` is
        :func:`kubedag.core.naming.pod_name` (at most 63 characters), labels
        :func:`kubedag.core.naming.pod_labels` over the templates' labels; ``spec.activeDeadlineSeconds``
        is ``executionTimeout`` rounded up to whole seconds (at least 1), absent without a timeout;
        resource quantities are strings (``2``, ``0.5``, ``1Gi``).

    Raises:
        ValueError: if the task's container has no image after the templates (see :func:`kubernetes_problems`).
    """
    pod = _pod(dag, task, namespace, run_name, run_uid, run_id, try_number, command, args, env, image=image,
               secret_env=secret_env or {}, poke=poke)
    if not _base_container(pod).get("image"):
        raise ValueError(f"task {task.task_id!r}: {NO_IMAGE} (or in a podTemplate's {CONTAINER!r} container)")
    return pod


def merge_pod_template(pod: Mapping[str, Any], template: Mapping[str, Any]) -> dict[str, Any]:
    """``template`` merged over ``pod``, modelled on Kubernetes' strategic merge patch; inputs untouched.

    Both are pod-shaped (``{metadata: {labels, annotations, ...}, spec: {...}}``); the rules apply at
    every depth:

    * maps merge key by key, recursively; a key the template sets to ``null`` is removed;
    * scalars, and maps against non-maps, are replaced by the template's value;
    * lists named in :data:`MERGE_KEYS` merge item by item on their key: ``containers``,
      ``initContainers``, ``ephemeralContainers``, ``volumes``, ``env`` and ``imagePullSecrets`` by
      ``name``, ``volumeMounts`` by ``mountPath``, ``ports`` by ``containerPort``. An item whose key
      matches one of the pod's merges into it (a template container named ``base`` changes the task's
      container); the others are appended in the template's order (a container with another name is a
      sidecar). The pod's items keep their order;
    * every other list (``tolerations``, ``command``, ``args``, ``envFrom``, ...) is replaced whole.

    Unlike ``kubectl patch``, ``$patch`` directives are not understood (they are kept as data).

    Returns:
        A new dict; it shares no mutable value with ``pod`` or ``template``.
    """
    return _merge(pod, template)


def kubernetes_problems(dag: DAG) -> list[FieldError]:
    """What would make the DAG's pods fail on Kubernetes that manifest validation lets by.

    The controller marks such a DAG ``Ready=False`` instead of creating pods that cannot start.
    Paths are the manifest's (``spec.tasks[i]`` is the task's position in the manifest):

    * a task whose container has no image (none on the task, in ``spec.defaults`` nor in a template's
      ``base`` container): ``spec.tasks[i].image``;
    * a ``volumeMounts`` item naming no volume of the task's pod: ``spec.tasks[i].volumeMounts[j].name``,
      or ``spec.defaults.volumeMounts[j].name`` (once, naming the tasks) when inherited;
    * in a ``podTemplate`` (``spec.podTemplate`` or ``spec.tasks[i].podTemplate``): a container
      without a ``name``, a sidecar without an ``image``, a ``restartPolicy`` other than ``Never``.

    Returns:
        A list of :class:`~kubedag.core.spec.loader.FieldError`, in manifest order; empty when the DAG can run.
    """
    index = _manifest_index(dag)
    tasks = sorted(dag.tasks.values(), key=lambda t: index[t.task_id])
    own_mounts = _tasks_setting(dag, "volumeMounts")
    problems = _template_problems("spec.podTemplate", dag.pod_template)
    for task in tasks:
        problems += _template_problems(f"spec.tasks[{index[task.task_id]}].podTemplate", task.pod_template)
    inherited: dict[int, list[str]] = {}
    for task in tasks:
        i = index[task.task_id]
        if task.runs_in_controller:
            continue  # no pod: the controller carries it out
        pod = _pod(dag, task, "default", "run", "uid", "run", 1, (), (), {},
                   image="kubedag" if uses_sensor_image(task) else None)
        if not _base_container(pod).get("image"):
            problems.append(FieldError(f"spec.tasks[{i}].image", NO_IMAGE))
        volumes = {v.get("name") for v in pod["spec"].get("volumes", []) if isinstance(v, Mapping)}
        for j, mount in enumerate(task.volume_mounts):
            if mount["name"] in volumes:
                continue
            if task.task_id in own_mounts:
                problems.append(FieldError(
                    f"spec.tasks[{i}].volumeMounts[{j}].name",
                    f"no volume named {mount['name']!r} in the task's pod: add it to volumes (on the task, in "
                    "spec.defaults or in a podTemplate)",
                ))
            else:
                inherited.setdefault(j, []).append(task.task_id)
    defaults_mounts = dag.spec.get("defaults", {}).get("volumeMounts", [])
    for j, task_ids in sorted(inherited.items()):
        name = defaults_mounts[j]["name"] if j < len(defaults_mounts) else "?"
        problems.append(FieldError(
            f"spec.defaults.volumeMounts[{j}].name",
            f"no volume named {name!r} in the pod of {', '.join(task_ids)}: add it to volumes (in spec.defaults, "
            "on the task or in a podTemplate)",
        ))
    return problems


def uses_sensor_image(task: Task) -> bool:
    """Whether the task's pod runs kubedag's own image: a built-in ``file`` or ``http`` sensor."""
    return task.sensor is not None and (task.sensor.file is not None or task.sensor.http is not None)


# --- the generated pod ---------------------------------------------------------------------------------------


def _pod(
    dag: DAG, task: Task, namespace: str, run_name: str, run_uid: str, run_id: str, try_number: int,
    command: Sequence[str], args: Sequence[str], env: Mapping[str, str], *, image: str | None = None,
    secret_env: Mapping[str, tuple[str, str]] | None = None, poke: int = 0,
) -> dict[str, Any]:
    """The generated pod with the DAG's and the task's templates merged over it, kubedag's fields enforced."""
    name = names.pod_name(dag.dag_id, run_name, task.task_id, try_number, poke)
    labels = names.pod_labels(dag.dag_id, run_name, task.task_id, try_number, poke)
    annotations = {ANNOTATION_RUN_ID: run_id, ANNOTATION_TRY_NUMBER: str(try_number), ANNOTATION_DEFAULT_CONTAINER: CONTAINER}
    if poke:
        annotations[ANNOTATION_POKE] = str(poke)
    owner = {
        "apiVersion": names.API_VERSION, "kind": "DAGRun", "name": run_name, "uid": run_uid,
        "controller": True, "blockOwnerDeletion": True,
    }
    container = _drop_empty({
        "name": CONTAINER,
        "image": image or task.image,
        "imagePullPolicy": task.image_pull_policy,
        "command": [_escape(c) for c in command],
        "args": [_escape(a) for a in args],
        "env": [{"name": k, "value": _escape(v)} for k, v in env.items()]
        + [{"name": k, "valueFrom": {"secretKeyRef": {"name": ref[0], "key": ref[1]}}} for k, ref in (secret_env or {}).items()],
        "resources": _resources(task),
        "volumeMounts": [dict(m) for m in task.volume_mounts],
    })
    spec = _drop_empty({
        "restartPolicy": "Never",
        "activeDeadlineSeconds": _deadline(task.execution_timeout),
        "serviceAccountName": task.service_account_name,
        "nodeSelector": dict(task.node_selector),
        "affinity": task.affinity,
        "tolerations": list(task.tolerations),
        "imagePullSecrets": [{"name": s} for s in task.image_pull_secrets],
        "volumes": list(task.volumes),
        "containers": [container],
    })
    pod: dict[str, Any] = _copy({  # a copy: nothing shared with the task
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {},
        "spec": spec,
    })
    for template in (dag.pod_template, task.pod_template):
        if template:
            pod = merge_pod_template(pod, template)
    meta = pod.get("metadata") or {}
    pod["metadata"] = {
        **meta,
        "name": name,
        "namespace": namespace,
        "labels": {**(meta.get("labels") or {}), **labels},
        "annotations": {**(meta.get("annotations") or {}), **annotations},
        "ownerReferences": [owner],
    }
    pod.setdefault("spec", {})["restartPolicy"] = "Never"
    _xcom_channel(pod)
    return pod


def _xcom_channel(pod: dict[str, Any]) -> None:
    """Add the XCom volume, mount, variable and termination message file to the ``base`` container (in place)."""
    spec = pod["spec"]
    spec["volumes"] = [v for v in spec.get("volumes") or [] if not (isinstance(v, Mapping) and v.get("name") == XCOM_VOLUME)]
    spec["volumes"].append({"name": XCOM_VOLUME, "emptyDir": {}})
    for container in spec.get("containers") or []:
        if not (isinstance(container, dict) and container.get("name") == CONTAINER):
            continue
        mounts = [m for m in container.get("volumeMounts") or []
                  if not (isinstance(m, Mapping) and (m.get("name") == XCOM_VOLUME or m.get("mountPath") == POD_XCOM_DIR))]
        container["volumeMounts"] = [*mounts, {"name": XCOM_VOLUME, "mountPath": POD_XCOM_DIR}]
        env = [e for e in container.get("env") or [] if not (isinstance(e, Mapping) and e.get("name") == XCOM_PATH_ENV)]
        container["env"] = [*env, {"name": XCOM_PATH_ENV, "value": POD_XCOM_FILE}]
        container["terminationMessagePath"] = POD_XCOM_FILE
        container["terminationMessagePolicy"] = "File"


def _escape(value: str) -> str:
    """``value`` with every ``$`` doubled: Kubernetes' ``$(VAR)`` expansion then gives ``value`` back."""
    return value.replace("$", "$$")


def _deadline(timeout: timedelta | None) -> int | None:
    """``timeout`` in whole seconds, rounded up, at least 1 (``activeDeadlineSeconds`` must be positive)."""
    if timeout is None:
        return None
    return max(1, -(-timeout // timedelta(seconds=1)))


def _quantity(value: str | int | float) -> str:
    """A resource quantity as Kubernetes writes it: ``2`` for 2 or 2.0, ``0.5``, strings as given."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _resources(task: Task) -> dict[str, dict[str, str]]:
    if task.resources is None:
        return {}
    return _drop_empty({
        "requests": {k: _quantity(v) for k, v in task.resources.requests.items()},
        "limits": {k: _quantity(v) for k, v in task.resources.limits.items()},
    })


def _drop_empty(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None and v != [] and v != {}}


def _base_container(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    for container in pod.get("spec", {}).get("containers") or []:
        if isinstance(container, Mapping) and container.get("name") == CONTAINER:
            return container
    return {}


# --- the merge -----------------------------------------------------------------------------------------------


def _copy(value: Any) -> Any:
    """A deep copy of JSON-like data as plain dicts and lists (mapping proxies and tuples included)."""
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(v) for v in value]
    return value


def _merge(base: Any, patch: Any, field: str | None = None) -> Any:
    if isinstance(patch, Mapping):
        out = _copy(base) if isinstance(base, Mapping) else {}
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = _merge(out.get(key), value, key)
        return out
    if isinstance(patch, (list, tuple)) and field in MERGE_KEYS and isinstance(base, (list, tuple)):
        return _merge_list(base, patch, MERGE_KEYS[field])
    return _copy(patch)


def _merge_list(base: Sequence[Any], patch: Sequence[Any], key: str) -> list[Any]:
    out = [_copy(item) for item in base]
    position = {item[key]: i for i, item in enumerate(out) if isinstance(item, dict) and item.get(key) is not None}
    for item in patch:
        ident = item.get(key) if isinstance(item, Mapping) else None
        if ident is not None and ident in position:
            out[position[ident]] = _merge(out[position[ident]], item)
            continue
        if ident is not None:
            position[ident] = len(out)
        out.append(_merge({}, item) if isinstance(item, Mapping) else _copy(item))
    return out


# --- problems ------------------------------------------------------------------------------------------------


def _manifest_index(dag: DAG) -> dict[str, int]:
    """task_id -> its position in the manifest's ``spec.tasks`` (topological order for a hand-made DAG)."""
    listed = [t.get("name") for t in dag.spec.get("tasks", []) if isinstance(t, Mapping)]
    if set(listed) == set(dag.tasks):
        return {name: i for i, name in enumerate(listed)}
    return {name: i for i, name in enumerate(dag.tasks)}


def _tasks_setting(dag: DAG, field: str) -> set[str]:
    """Tasks that set ``field`` themselves (rather than inherit it from ``spec.defaults``)."""
    listed = [t for t in dag.spec.get("tasks", []) if isinstance(t, Mapping)]
    if not listed:
        return set(dag.tasks)
    return {t["name"] for t in listed if t.get(field) is not None}


def _template_problems(where: str, template: Mapping[str, Any] | None) -> list[FieldError]:
    spec = (template or {}).get("spec") or {}
    problems = []
    policy = spec.get("restartPolicy")
    if policy not in (None, "Never"):
        problems.append(FieldError(
            f"{where}.spec.restartPolicy",
            f"must be Never (or unset), got {policy!r}: kubedag retries a task with a new pod",
        ))
    for field in ("containers", "initContainers"):
        items = spec.get(field)
        if not isinstance(items, list):
            continue
        for k, container in enumerate(items):
            path = f"{where}.spec.{field}[{k}]"
            if not isinstance(container, Mapping) or not isinstance(container.get("name"), str):
                problems.append(FieldError(
                    f"{path}.name",
                    f"required: template containers merge by name ({CONTAINER!r} is the task's own container, "
                    "other names add containers)",
                ))
            elif (field != "containers" or container["name"] != CONTAINER) and not container.get("image"):
                problems.append(FieldError(f"{path}.image", f"required: container {container['name']!r} needs its own image"))
    return problems

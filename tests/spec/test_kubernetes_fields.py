"""The Kubernetes fields of a DAG manifest (nodeSelector, tolerations, affinity, serviceAccountName,
volumes, volumeMounts, imagePullSecrets, imagePullPolicy, podTemplate): what a user gets back for good
and bad values, and how spec.defaults and a task's own values combine."""

from __future__ import annotations

import copy

import pytest

from kubedag.core.spec import DAGValidationError, parse_dag

BASE = {
    "apiVersion": "kubedag.io/v1alpha1",
    "kind": "DAG",
    "metadata": {"name": "etl"},
    "spec": {
        "defaults": {"image": "python:3.12-slim"},
        "tasks": [
            {"name": "extract", "command": ["true"]},
            {"name": "load", "command": ["true"], "dependsOn": ["extract"]},
        ],
    },
}


def manifest(defaults: dict | None = None, task: dict | None = None, **spec) -> dict:
    m = copy.deepcopy(BASE)
    m["spec"]["defaults"].update(defaults or {})
    m["spec"]["tasks"][1].update(task or {})
    m["spec"].update(spec)
    return m


def errors_of(obj) -> list[str]:
    with pytest.raises(DAGValidationError) as info:
        parse_dag(obj)
    return [str(e) for e in info.value.errors]


LABEL_VALUE = "is not a valid label value: at most 63 letters, digits, '-', '_' or '.'"
BAD = [
    ("nodeSelector value not a string", manifest({"nodeSelector": {"disk": 1}}),
     "spec.defaults.nodeSelector.disk: Input should be a valid string"),
    ("nodeSelector value not a label value", manifest(task={"nodeSelector": {"disk": "fast ssd"}}),
     f"spec.tasks[1].nodeSelector: value 'fast ssd' of 'disk' {LABEL_VALUE}"),
    ("nodeSelector key with a bad prefix", manifest({"nodeSelector": {"Example.com/zone": "a"}}),
     "spec.defaults.nodeSelector: key 'Example.com/zone': the prefix before '/' must be a DNS-1123 subdomain"),
    ("nodeSelector as a list", manifest({"nodeSelector": ["disk=ssd"]}),
     "spec.defaults.nodeSelector: Input should be a valid dictionary"),
    ("tolerations as one object", manifest(task={"tolerations": {"key": "gpu", "operator": "Exists"}}),
     "spec.tasks[1].tolerations: Input should be a valid list"),
    ("toleration not an object", manifest({"tolerations": ["gpu"]}),
     "spec.defaults.tolerations[0]: Input should be a valid dictionary"),
    ("affinity as a list", manifest(task={"affinity": [{"nodeAffinity": {}}]}),
     "spec.tasks[1].affinity: Input should be a valid dictionary"),
    ("serviceAccountName not DNS-1123", manifest({"serviceAccountName": "Etl_Runner"}),
     "spec.defaults.serviceAccountName: 'Etl_Runner' is not a valid DNS-1123 subdomain"),
    ("volume without name", manifest({"volumes": [{"emptyDir": {}}]}),
     "spec.defaults.volumes[0].name: required field is missing"),
    ("volume name not DNS-1123", manifest(task={"volumes": [{"name": "Data", "emptyDir": {}}]}),
     "spec.tasks[1].volumes[0].name: 'Data' is not a valid DNS-1123 label"),
    ("two volumes with one name", manifest({"volumes": [{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}}]}),
     "spec.defaults.volumes: duplicate volume name 'data' at [1] (first at [0])"),
    ("volumeMount without mountPath", manifest(task={"volumeMounts": [{"name": "data"}]}),
     "spec.tasks[1].volumeMounts[0].mountPath: required field is missing"),
    ("volumeMount without name", manifest({"volumeMounts": [{"mountPath": "/data"}]}),
     "spec.defaults.volumeMounts[0].name: required field is missing"),
    ("two mounts at one path", manifest({"volumeMounts": [{"name": "a", "mountPath": "/d"}, {"name": "b", "mountPath": "/d"}]}),
     "spec.defaults.volumeMounts: duplicate mountPath '/d' at [1] (first at [0])"),
    ("imagePullSecrets as names", manifest({"imagePullSecrets": ["regcred"]}),
     "spec.defaults.imagePullSecrets[0]: Input should be a valid dictionary"),
    ("imagePullSecret with another field", manifest({"imagePullSecrets": [{"name": "regcred", "namespace": "x"}]}),
     "spec.defaults.imagePullSecrets[0].namespace: unknown field"),
    ("imagePullPolicy lowercase", manifest(task={"imagePullPolicy": "always"}),
     "spec.tasks[1].imagePullPolicy: Input should be 'Always', 'IfNotPresent' or 'Never', got 'always'"),
    ("podTemplate as a whole Pod", manifest(podTemplate={"apiVersion": "v1", "kind": "Pod", "spec": {}}),
     "spec.podTemplate.apiVersion: unknown field"),
    ("podTemplate renaming the pod", manifest(task={"podTemplate": {"metadata": {"name": "mine"}}}),
     "spec.tasks[1].podTemplate.metadata.name: unknown field"),
    ("podTemplate label value", manifest(podTemplate={"metadata": {"labels": {"team": "data team"}}}),
     f"spec.podTemplate.metadata.labels: value 'data team' of 'team' {LABEL_VALUE}"),
    ("podTemplate annotation key", manifest(podTemplate={"metadata": {"annotations": {"a b": "x"}}}),
     "spec.podTemplate.metadata.annotations: key 'a b' is not a valid label or annotation key"),
    ("podTemplate spec as a list", manifest(task={"podTemplate": {"spec": [{"containers": []}]}}),
     "spec.tasks[1].podTemplate.spec: Input should be a valid dictionary"),
    ("podTemplate in defaults", manifest({"podTemplate": {"spec": {}}}),
     "spec.defaults.podTemplate: unknown field (the pod template of every task is spec.podTemplate)"),
    # issue 13: "cpu: lots" was not checked (Kubernetes' quantity grammar now is)
    ("cpu that is not a quantity", manifest(task={"resources": {"requests": {"cpu": "lots"}}}),
     "spec.tasks[1].resources.requests.cpu: 'lots' is not a Kubernetes quantity (e.g. 500m, 2, 1.5, 512Mi, 1Gi)"),
    ("memory with a unit Kubernetes does not know", manifest({"resources": {"limits": {"memory": "1GB"}}}),
     "spec.defaults.resources.limits.memory: '1GB' is not a Kubernetes quantity"),
    ("a negative quantity", manifest(task={"resources": {"limits": {"cpu": -1}}}),
     "spec.tasks[1].resources.limits.cpu: -1 is negative; a resource quantity must be 0 or more"),
    ("a boolean quantity", manifest(task={"resources": {"limits": {"cpu": True}}}),
     "spec.tasks[1].resources.limits.cpu: True is not a Kubernetes quantity"),
    ("a typo in a field name", manifest(schedul="@daily"),
     "spec.schedul: unknown field (did you mean 'schedule'?)"),
    ("a typo in dependsOn", manifest(task={"dependson": ["extract"]}),
     "spec.tasks[1].dependson: unknown field (did you mean 'dependsOn'?)"),
    ("snake_case field", manifest(task={"node_selector": {"disk": "ssd"}}),
     "spec.tasks[1].node_selector: unknown field (fields are camelCase: did you mean 'nodeSelector'?)"),
]


@pytest.mark.parametrize(("case", "obj", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_kubernetes_field_is_rejected_naming_the_field(case, obj, expected):
    errors = errors_of(obj)
    assert any(e.startswith(expected) for e in errors), errors


@pytest.mark.parametrize("quantity", ["500m", "2", 2, 1.5, "0.5", "512Mi", "1Gi", "1e3", "100k", "1.5Ti", 0])
def test_kubernetes_quantities_are_accepted(quantity):
    dag = parse_dag(manifest(task={"resources": {"requests": {"cpu": quantity, "memory": quantity}}}))
    assert dag.tasks["load"].resources.requests["cpu"] == quantity


def test_defaults_apply_and_a_tasks_own_value_replaces_them():
    dag = parse_dag(manifest(
        {
            "env": {"A": "1"},
            "nodeSelector": {"disk": "ssd"},
            "tolerations": [{"key": "dedicated", "operator": "Exists"}],
            "affinity": {"nodeAffinity": {}},
            "serviceAccountName": "etl-runner",
            "volumes": [{"name": "data", "hostPath": {"path": "/srv/data", "type": "DirectoryOrCreate"}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
            "imagePullSecrets": [{"name": "regcred"}],
            "imagePullPolicy": "IfNotPresent",
        },
        task={
            "env": {"B": "2"},
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "volumes": [],
            "volumeMounts": [],
            "nodeSelector": {},
            "imagePullPolicy": "Always",
            "podTemplate": {"spec": {"priorityClassName": "high"}},
        },
        podTemplate={"metadata": {"labels": {"team": "analytics"}}, "spec": {"securityContext": {"runAsUser": 1000}}},
    ))
    extract, load = dag.tasks["extract"], dag.tasks["load"]
    assert dict(extract.node_selector) == {"disk": "ssd"}
    assert extract.tolerations == ({"key": "dedicated", "operator": "Exists"},)
    assert extract.affinity == {"nodeAffinity": {}} and load.affinity == {"nodeAffinity": {}}
    assert extract.service_account_name == load.service_account_name == "etl-runner"
    # Kubernetes fields the models do not know are kept as written (hostPath, readOnly)
    assert extract.volumes == ({"name": "data", "hostPath": {"path": "/srv/data", "type": "DirectoryOrCreate"}},)
    assert extract.volume_mounts == ({"name": "data", "mountPath": "/data", "readOnly": True},)
    assert extract.image_pull_secrets == load.image_pull_secrets == ("regcred",)
    assert (extract.image_pull_policy, load.image_pull_policy) == ("IfNotPresent", "Always")
    # the task's own value replaces the default whole, even when empty; env still merges by name
    assert load.tolerations == ({"key": "gpu", "operator": "Exists"},)
    assert (load.volumes, load.volume_mounts, dict(load.node_selector)) == ((), (), {})
    assert dict(load.env) == {"A": "1", "B": "2"}
    assert extract.pod_template is None and load.pod_template == {"spec": {"priorityClassName": "high"}}
    assert dag.pod_template == {"metadata": {"labels": {"team": "analytics"}}, "spec": {"securityContext": {"runAsUser": 1000}}}
    # kept in the spec the metadata DB records, camelCase as written
    assert dag.spec["defaults"]["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]
    assert dag.spec["podTemplate"]["metadata"]["labels"] == {"team": "analytics"}


def test_without_kubernetes_fields_tasks_have_none():
    task = parse_dag(BASE).tasks["extract"]
    assert (dict(task.node_selector), task.tolerations, task.affinity, task.service_account_name, task.volumes,
            task.volume_mounts, task.image_pull_secrets, task.image_pull_policy, task.pod_template) == (
        {}, (), None, None, (), (), (), None, None)


def test_resolved_task_does_not_share_the_manifests_objects():
    m = manifest({"affinity": {"nodeAffinity": {"x": [1]}}, "tolerations": [{"key": "a"}]})
    task = parse_dag(m).tasks["extract"]
    m["spec"]["defaults"]["affinity"]["nodeAffinity"]["x"].append(2)
    m["spec"]["defaults"]["tolerations"][0]["key"] = "b"
    assert task.affinity == {"nodeAffinity": {"x": [1]}} and task.tolerations == ({"key": "a"},)

"""Pods of task tries (kubedag.k8s.podspec): every pod valid for Kubernetes' own OpenAPI schema, named
and labelled as the controller finds them, owned by the DAGRun, the task's strings reaching the container
unchanged, and pod templates merged as documented."""

from __future__ import annotations

import copy
import re
from datetime import datetime, timezone
from pathlib import Path

import kubernetes_validate
import pytest

from kubedag.core import templating
from kubedag.core import naming as names
from kubedag.k8s.podspec import build_pod, kubernetes_problems, merge_pod_template
from kubedag.core.spec import FieldError, load_dag, parse_dag

REPO = Path(__file__).resolve().parents[2]
KUBERNETES_VERSIONS = ["1.30", "1.33", kubernetes_validate.latest_version()]
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
RUN_ID = "scheduled__2026-11-01T16:00:00+00:00"
UID = "0b7f3c4e-2d7a-4a55-9d0e-6f1e2a3b4c5d"


def valid_for_kubernetes(pod: dict) -> None:
    """The real v1 Pod schema, strictly (unknown fields are errors), plus what OpenAPI cannot say."""
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)
    meta = pod["metadata"]
    assert len(meta["name"]) <= 63 and DNS1123_LABEL.match(meta["name"]), meta["name"]
    for key, value in meta["labels"].items():
        assert len(value) <= 63 and LABEL_VALUE.match(value), (key, value)
    names_ = [v["name"] for v in pod["spec"].get("volumes", [])]
    assert len(names_) == len(set(names_))
    for container in pod["spec"]["containers"]:
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in names_, mount


def pod_for(dag, task_id, *, run_id=RUN_ID, try_number=1, command=None, args=None, env=None):
    task = dag.tasks[task_id]
    return build_pod(
        dag, task, namespace="data", run_name=names.run_name(dag.dag_id, run_id), run_uid=UID, run_id=run_id,
        try_number=try_number, command=list(task.command) if command is None else command,
        args=list(task.args) if args is None else args, env=dict(task.env) if env is None else env,
    )


def manifest(spec: dict | None = None, tasks: list[dict] | None = None) -> dict:
    return {
        "apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "etl"},
        "spec": {"defaults": {"image": "python:3.12-slim"}, **(spec or {}),
                 "tasks": tasks or [{"name": "extract", "command": ["true"]}]},
    }


def base(pod: dict) -> dict:
    (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "base"]
    return container


# --- the example -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def supermarket():
    return load_dag(REPO / "examples/supermarket/dag.yaml")


def test_every_supermarket_task_gets_a_valid_pod(supermarket):
    when = datetime(2026, 11, 1, 16, tzinfo=timezone.utc)
    run = names.run_name(supermarket.dag_id, RUN_ID)
    assert kubernetes_problems(supermarket) == []
    for task in supermarket.tasks.values():
        context = templating.template_context(templating.RunContext(
            dag_id=supermarket.dag_id, task_id=task.task_id, run_id=RUN_ID, run_type="scheduled",
            logical_date=when, data_interval_start=when, data_interval_end=when, params=supermarket.params,
        ))
        rendered = templating.render_fields(list(task.command), list(task.args), dict(task.env), context)
        pod = pod_for(supermarket, task.task_id, command=rendered.command, args=rendered.args, env=rendered.env)
        valid_for_kubernetes(pod)
        assert pod["metadata"]["name"] == names.pod_name(supermarket.dag_id, run, task.task_id, 1)
        container = base(pod)
        assert container["image"] == "kubedag/supermarket-example:0.1.0"
        assert container["command"][:2] == ["python3", rendered.command[1]] and "2026-11-01" in container["command"]
        # the shared volume of spec.defaults: the relative data_root `out` under the image's WORKDIR
        assert pod["spec"]["volumes"] == [
            {"name": "data", "hostPath": {"path": "/var/lib/kubedag/supermarket", "type": "DirectoryOrCreate"}},
            {"name": "kubedag-xcom", "emptyDir": {}}]
        assert container["volumeMounts"] == [{"name": "data", "mountPath": "/opt/supermarket/out"},
                                             {"name": "kubedag-xcom", "mountPath": "/kubedag/xcom"}]
        assert pod["spec"]["activeDeadlineSeconds"] == 600  # executionTimeout: 10m
        assert pod["spec"]["restartPolicy"] == "Never"


def test_names_and_labels_fit_kubernetes_for_the_longest_ids():
    dag_id, task_id = "d" * 63, "T." + "x" * 61
    dag = parse_dag(manifest(tasks=[{"name": task_id, "command": ["true"]}]) | {"metadata": {"name": dag_id}})
    run_id = "manual__" + "2026-11-01T16:00:00.123456+00:00" + "_" * 200
    pod = pod_for(dag, task_id, run_id=run_id, try_number=12)
    valid_for_kubernetes(pod)
    run = names.run_name(dag_id, run_id)
    assert pod["metadata"]["labels"] == names.pod_labels(dag_id, run, task_id, 12)
    assert pod["metadata"]["annotations"]["kubedag.io/run-id"] == run_id  # whole: annotations have no 63 limit
    assert pod["metadata"]["annotations"]["kubedag.io/try-number"] == "12"


def test_the_dagrun_owns_its_pods():
    dag = parse_dag(manifest())
    pod = pod_for(dag, "extract", try_number=2)
    assert pod["metadata"]["namespace"] == "data"
    assert pod["metadata"]["ownerReferences"] == [{
        "apiVersion": "kubedag.io/v1alpha1", "kind": "DAGRun", "name": names.run_name("etl", RUN_ID), "uid": UID,
        "controller": True, "blockOwnerDeletion": True,
    }]
    assert pod["metadata"]["name"] != pod_for(dag, "extract", try_number=3)["metadata"]["name"]  # a retry is a new pod


@pytest.mark.parametrize(("timeout", "seconds"), [("10m", 600), ("90500ms", 91), ("250ms", 1), ("0s", 1), (None, None)])
def test_execution_timeout_is_the_pods_active_deadline(timeout, seconds):
    dag = parse_dag(manifest(tasks=[{"name": "extract", "command": ["true"], "executionTimeout": timeout}]))
    assert pod_for(dag, "extract")["spec"].get("activeDeadlineSeconds") == seconds


# --- what the container receives -----------------------------------------------------------------------------


def kubernetes_expand(text: str, env: dict[str, str]) -> str:
    """What the kubelet makes of a command/args/env string (k8s.io/kubernetes third_party/forked/golang/expansion):
    ``$$`` is ``$``, ``$(NAME)`` is NAME's value when defined (else kept), any other ``$`` is kept."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2:end]
                    out.append(env.get(name, text[i:end + 1]))
                    i = end + 1
                    continue
        out.append(text[i])
        i += 1
    return "".join(out)


def test_dollar_signs_reach_the_container_unchanged():
    dag = parse_dag(manifest())
    command = ["sh", "-c", "echo $HOME $(PATH_VAR) $$ ${X} cost=5$"]
    args = ["$(A)", "$$(A)", "$"]
    env = {"A": "a$(B)", "B": "b", "PRICE": "$5", "REF": "$(A)"}
    container = base(pod_for(dag, "extract", command=command, args=args, env=env))
    defined: dict[str, str] = {}
    for var in container["env"]:  # each value sees the variables defined before it, as the kubelet does
        defined[var["name"]] = kubernetes_expand(var["value"], defined)
    assert defined == {**env, "KUBEDAG_XCOM_PATH": "/kubedag/xcom/return.json"}
    assert [kubernetes_expand(c, defined) for c in container["command"]] == command
    assert [kubernetes_expand(a, defined) for a in container["args"]] == args
    assert [v["name"] for v in container["env"]] == ["A", "B", "PRICE", "REF", "KUBEDAG_XCOM_PATH"]  # the given order


# --- every Kubernetes field ----------------------------------------------------------------------------------

EVERYTHING = manifest(
    {
        "defaults": {
            "image": "registry.example.com/etl:1.2",
            "imagePullPolicy": "IfNotPresent",
            "imagePullSecrets": [{"name": "regcred"}],
            "serviceAccountName": "etl-runner",
            "nodeSelector": {"kubernetes.io/os": "linux", "disk": "ssd"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "etl", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}},
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "etl-data"}},
                        {"name": "config", "configMap": {"name": "etl-config"}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"},
                             {"name": "config", "mountPath": "/etc/etl", "readOnly": True}],
            "resources": {"requests": {"cpu": 0.5, "memory": "256Mi"}, "limits": {"cpu": 2.0, "memory": 1073741824}},
            "env": {"STAGE": "prod"},
            "executionTimeout": "1h",
        },
        "podTemplate": {
            "metadata": {"labels": {"team": "analytics", "kubedag.io/dag": "hijack"}, "annotations": {"owner": "data"}},
            "spec": {
                "priorityClassName": "batch",
                "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
                "containers": [{"name": "base", "env": [{"name": "LOG_LEVEL", "value": "info"}],
                                "securityContext": {"allowPrivilegeEscalation": False}}],
            },
        },
    },
    tasks=[
        {"name": "extract", "command": ["python", "-m", "etl.extract"], "args": ["--date", "{{ ds }}"]},
        {
            "name": "load", "dependsOn": ["extract"], "command": ["python", "-m", "etl.load"],
            "image": "registry.example.com/etl-load:1.2", "imagePullPolicy": "Always",
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "nodeSelector": {},
            "env": {"STAGE": "test"},
            "podTemplate": {
                "metadata": {"labels": {"team": "warehouse"}},
                "spec": {
                    "securityContext": {"runAsUser": 2000},
                    "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}],
                    "containers": [
                        {"name": "base", "volumeMounts": [{"name": "scratch", "mountPath": "/tmp/scratch"}],
                         "env": [{"name": "LOG_LEVEL", "value": "debug"}]},
                        {"name": "proxy", "image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.11",
                         "args": ["--port=5432", "project:region:db"], "ports": [{"containerPort": 5432}]},
                    ],
                },
            },
        },
    ],
)


@pytest.fixture(scope="module")
def everything():
    return parse_dag(EVERYTHING)


def test_a_dag_using_every_field_gives_valid_pods(everything):
    assert kubernetes_problems(everything) == []
    for task_id in everything.tasks:
        valid_for_kubernetes(pod_for(everything, task_id, args=["--date", "2026-11-01"]))


def test_defaults_reach_the_pod(everything):
    pod = pod_for(everything, "extract")
    spec, container = pod["spec"], base(pod)
    assert container["image"] == "registry.example.com/etl:1.2" and container["imagePullPolicy"] == "IfNotPresent"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["serviceAccountName"] == "etl-runner"
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux", "disk": "ssd"}
    assert spec["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "etl", "effect": "NoSchedule"}]
    assert spec["affinity"] == EVERYTHING["spec"]["defaults"]["affinity"]
    assert [v["name"] for v in spec["volumes"]] == ["data", "config", "kubedag-xcom"]
    assert container["volumeMounts"][1] == {"name": "config", "mountPath": "/etc/etl", "readOnly": True}
    assert container["resources"] == {"requests": {"cpu": "0.5", "memory": "256Mi"},
                                      "limits": {"cpu": "2", "memory": "1073741824"}}
    assert spec["activeDeadlineSeconds"] == 3600
    assert container["terminationMessagePolicy"] == "File"
    # the DAG's template: pod fields added, the base container merged (env by name, after the task's)
    assert spec["priorityClassName"] == "batch" and spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False}
    assert container["env"] == [{"name": "STAGE", "value": "prod"}, {"name": "LOG_LEVEL", "value": "info"},
                                {"name": "KUBEDAG_XCOM_PATH", "value": "/kubedag/xcom/return.json"}]
    assert pod["metadata"]["labels"]["team"] == "analytics" and pod["metadata"]["annotations"]["owner"] == "data"


def test_task_values_replace_defaults_and_its_template_merges_last(everything):
    pod = pod_for(everything, "load")
    spec, meta = pod["spec"], pod["metadata"]
    assert [c["name"] for c in spec["containers"]] == ["base", "proxy"]  # the sidecar is added after the task's
    container = base(pod)
    assert container["image"] == "registry.example.com/etl-load:1.2" and container["imagePullPolicy"] == "Always"
    assert spec["tolerations"] == [{"key": "gpu", "operator": "Exists"}]  # replaced, not appended
    assert "nodeSelector" not in spec  # an empty value clears the default
    assert container["env"] == [{"name": "STAGE", "value": "test"}, {"name": "LOG_LEVEL", "value": "debug"},
                                {"name": "KUBEDAG_XCOM_PATH", "value": "/kubedag/xcom/return.json"}]
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/data", "/etc/etl", "/tmp/scratch", "/kubedag/xcom"]
    assert [v["name"] for v in spec["volumes"]] == ["data", "config", "scratch", "kubedag-xcom"]
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 2000}  # DAG template, then the task's
    assert meta["labels"]["team"] == "warehouse"
    # kubedag's own labels and annotations win over any template: the controller finds pods by them
    assert meta["labels"]["kubedag.io/dag"] == "etl"
    assert meta["annotations"]["kubectl.kubernetes.io/default-container"] == "base"


def test_build_pod_shares_nothing_with_the_dag(everything):
    before = copy.deepcopy(EVERYTHING)
    pod = pod_for(everything, "load")
    pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = "changed"
    pod["spec"]["affinity"]["nodeAffinity"].clear()
    base(pod)["env"].clear()
    again = pod_for(everything, "load")
    assert again["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "etl-data"
    assert again["spec"]["affinity"] == EVERYTHING["spec"]["defaults"]["affinity"]
    assert len(base(again)["env"]) == 3  # the task's two, and KUBEDAG_XCOM_PATH
    assert EVERYTHING == before


def test_the_pod_template_cannot_take_over_what_kubedag_relies_on():
    dag = parse_dag(manifest({"podTemplate": {"spec": {"restartPolicy": "OnFailure", "activeDeadlineSeconds": 30}}}))
    pod = pod_for(dag, "extract")
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["activeDeadlineSeconds"] == 30  # any other field is the template's to set
    assert kubernetes_problems(dag) == [FieldError(
        "spec.podTemplate.spec.restartPolicy", "must be Never (or unset), got 'OnFailure': kubedag retries a task with a new pod")]


# --- merge_pod_template ---------------------------------------------------------------------------------------

POD = {
    "metadata": {"labels": {"a": "1"}},
    "spec": {
        "containers": [{
            "name": "base", "image": "app:1", "args": ["x", "y"],
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            "ports": [{"containerPort": 80, "name": "http"}],
        }],
        "volumes": [{"name": "data", "emptyDir": {}}],
        "tolerations": [{"key": "k1", "operator": "Exists"}],
        "nodeSelector": {"disk": "ssd"},
        "imagePullSecrets": [{"name": "one"}],
        "affinity": {"nodeAffinity": {"x": 1}},
    },
}
TEMPLATE = {
    "metadata": {"labels": {"b": "2"}},
    "spec": {
        "containers": [
            {"name": "sidecar", "image": "proxy:1"},
            {"name": "base", "image": "app:2", "args": ["z"],
             "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}],
             "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}, {"name": "tmp", "mountPath": "/tmp"}],
             "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 9090}]},
        ],
        "volumes": [{"name": "data", "emptyDir": {"medium": "Memory"}}, {"name": "tmp", "emptyDir": {}}],
        "tolerations": [{"key": "k2", "operator": "Exists"}],
        "nodeSelector": {"zone": "a"},
        "imagePullSecrets": [{"name": "two"}],
        "affinity": None,
    },
}


def test_merge_rules():
    merged = merge_pod_template(POD, TEMPLATE)
    spec = merged["spec"]
    assert merged["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert [c["name"] for c in spec["containers"]] == ["base", "sidecar"]  # ours first, new names added
    container = spec["containers"][0]
    assert container["image"] == "app:2"  # scalars replaced
    assert container["args"] == ["z"]  # plain lists replaced whole
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "two"}, {"name": "C", "value": "3"}]
    assert container["volumeMounts"] == [
        {"name": "data", "mountPath": "/data", "readOnly": True}, {"name": "tmp", "mountPath": "/tmp"}]
    assert container["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 9090}]
    assert spec["containers"][1] == {"name": "sidecar", "image": "proxy:1"}
    assert spec["volumes"] == [{"name": "data", "emptyDir": {"medium": "Memory"}}, {"name": "tmp", "emptyDir": {}}]
    assert spec["tolerations"] == [{"key": "k2", "operator": "Exists"}]
    assert spec["nodeSelector"] == {"disk": "ssd", "zone": "a"}
    assert spec["imagePullSecrets"] == [{"name": "one"}, {"name": "two"}]
    assert "affinity" not in spec  # null removes


def test_merge_never_mutates_nor_shares_its_inputs():
    pod, template = copy.deepcopy(POD), copy.deepcopy(TEMPLATE)
    merged = merge_pod_template(pod, template)
    assert (pod, template) == (POD, TEMPLATE)
    merged["spec"]["containers"][0]["env"].append({"name": "D"})
    merged["spec"]["containers"][1]["image"] = "changed"
    merged["spec"]["volumes"][1]["emptyDir"]["medium"] = "Memory"
    merged["metadata"]["labels"]["c"] = "3"
    assert (pod, template) == (POD, TEMPLATE)


def test_merge_with_an_empty_template_is_a_copy():
    merged = merge_pod_template(POD, {})
    assert merged == POD and merged is not POD and merged["spec"]["containers"] is not POD["spec"]["containers"]


# --- kubernetes_problems --------------------------------------------------------------------------------------


def test_a_task_without_image_cannot_run_on_kubernetes():
    # manifest order differs from the topological one: the path is the manifest's index
    m = manifest(tasks=[
        {"name": "load", "command": ["true"], "dependsOn": ["extract"], "image": "busybox"},
        {"name": "extract", "command": ["true"]},
    ])
    del m["spec"]["defaults"]
    dag = parse_dag(m)  # valid: it runs locally, where images are not used
    assert kubernetes_problems(dag) == [FieldError(
        "spec.tasks[1].image", "required to run on Kubernetes: set image on the task or in spec.defaults")]
    with pytest.raises(ValueError, match="'extract'.*set image on the task or in spec.defaults"):
        pod_for(dag, "extract")


def test_an_image_from_the_pod_template_is_enough():
    m = manifest({"podTemplate": {"spec": {"containers": [{"name": "base", "image": "busybox:1.36"}]}}})
    del m["spec"]["defaults"]
    dag = parse_dag(m)
    assert kubernetes_problems(dag) == []
    assert base(pod_for(dag, "extract"))["image"] == "busybox:1.36"


def test_mounts_of_missing_volumes_and_bad_template_containers():
    dag = parse_dag(manifest(
        {
            "defaults": {"image": "busybox", "volumes": [{"name": "data", "emptyDir": {}}],
                         "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            "podTemplate": {"spec": {"containers": [{"image": "proxy:1"}, {"name": "proxy"}]}},
        },
        tasks=[
            {"name": "a", "command": ["true"], "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]},
            {"name": "b", "command": ["true"], "volumes": []},
            {"name": "c", "command": ["true"], "volumes": [], "podTemplate": {"spec": {"volumes": [{"name": "data", "hostPath": {"path": "/d"}}]}}},
            {"name": "d", "command": ["true"], "volumes": [{"name": "other", "emptyDir": {}}]},
        ],
    ))
    assert kubernetes_problems(dag) == [
        FieldError("spec.podTemplate.spec.containers[0].name",
                   "required: template containers merge by name ('base' is the task's own container, other names add containers)"),
        FieldError("spec.podTemplate.spec.containers[1].image", "required: container 'proxy' needs its own image"),
        FieldError("spec.tasks[0].volumeMounts[0].name",
                   "no volume named 'cache' in the task's pod: add it to volumes (on the task, in spec.defaults or in a podTemplate)"),
        FieldError("spec.defaults.volumeMounts[0].name",
                   "no volume named 'data' in the pod of b, d: add it to volumes (in spec.defaults, on the task or in a podTemplate)"),
    ]


# --- the CRD keeps what the pods need -----------------------------------------------------------------------


def test_the_dag_crd_accepts_and_keeps_every_kubernetes_field():
    """The API server must store these fields as written (no pruning of ``hostPath``, ``readOnly``,
    ``affinity``...), or the controller would build other pods than the manifest says."""
    import yaml

    from tests.crds.k8s_schema import errors

    crd = yaml.safe_load((REPO / "crds/dag.yaml").read_text())
    assert errors(EVERYTHING, crd) == []
    bad = copy.deepcopy(EVERYTHING)
    bad["spec"]["defaults"]["imagePullPolicy"] = "always"
    bad["spec"]["defaults"]["volumes"][0].pop("name")
    assert errors(bad, crd) == [
        "spec.defaults.imagePullPolicy: 'always' is not one of ['Always', 'IfNotPresent', 'Never']",
        "spec.defaults.volumes.0: 'name' is a required property",
    ]
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    defaults = spec["defaults"]["properties"]
    for free_form in (defaults["affinity"], defaults["tolerations"]["items"], defaults["volumes"]["items"],
                      defaults["volumeMounts"]["items"], spec["podTemplate"]["properties"]["spec"]):
        assert free_form["x-kubernetes-preserve-unknown-fields"] is True
    task = spec["tasks"]["items"]["properties"]
    assert task["podTemplate"] == spec["podTemplate"] | {"description": task["podTemplate"]["description"]}


# --- XComs, connections, sensors ---------------------------------------------------------------------------


def test_every_pod_hands_its_xcom_back_through_the_termination_message():
    dag = parse_dag(manifest())
    pod = pod_for(dag, "extract")
    valid_for_kubernetes(pod)
    container = base(pod)
    assert {"name": "kubedag-xcom", "emptyDir": {}} in pod["spec"]["volumes"]
    assert {"name": "kubedag-xcom", "mountPath": "/kubedag/xcom"} in container["volumeMounts"]
    assert {"name": "KUBEDAG_XCOM_PATH", "value": "/kubedag/xcom/return.json"} in container["env"]
    assert container["terminationMessagePath"] == "/kubedag/xcom/return.json"
    assert container["terminationMessagePolicy"] == "File"


def test_connections_come_from_their_secret_not_the_pod_spec():
    dag = parse_dag(manifest())
    task = dag.tasks["extract"]
    pod = build_pod(dag, task, namespace="data", run_name="r", run_uid=UID, run_id=RUN_ID, try_number=1,
                    command=["true"], args=[], env={}, secret_env={"KUBEDAG_CONN_WAREHOUSE": ("db-conns", "warehouse")})
    valid_for_kubernetes(pod)
    assert {"name": "KUBEDAG_CONN_WAREHOUSE",
            "valueFrom": {"secretKeyRef": {"name": "db-conns", "key": "warehouse"}}} in base(pod)["env"]
    assert "postgres://" not in str(pod)


def test_a_file_sensor_runs_in_kubedags_image_with_the_tasks_volumes_and_each_poke_has_its_own_pod():
    dag = parse_dag(manifest(tasks=[{
        "name": "wait", "sensor": {"mode": "reschedule", "file": {"path": "/data/in/*.csv"}},
        "volumes": [{"name": "data", "hostPath": {"path": "/srv/data"}}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }]))
    assert kubernetes_problems(dag) == []
    task = dag.tasks["wait"]
    pods = [build_pod(dag, task, namespace="data", run_name="r", run_uid=UID, run_id=RUN_ID, try_number=1,
                      command=["python", "-m", "kubedag.sensors", "file", "/data/in/*.csv"], args=[], env={},
                      image="kubedag/controller:0.1.0", poke=poke) for poke in (0, 1, 2)]
    for pod in pods:
        valid_for_kubernetes(pod)
        assert base(pod)["image"] == "kubedag/controller:0.1.0"
        assert {"name": "data", "mountPath": "/data"} in base(pod)["volumeMounts"]
    assert len({p["metadata"]["name"] for p in pods}) == 3
    assert pods[0]["metadata"]["name"] == names.pod_name("etl", "r", "wait", 1)
    assert pods[2]["metadata"]["labels"]["kubedag.io/poke"] == "2"
    assert names.poke_from_suffix("r", "wait", 1, pods[2]["metadata"]["name"][-5:]) == 2


def test_tasks_run_by_the_controller_need_no_image():
    dag = parse_dag({
        "apiVersion": "kubedag.io/v1alpha1", "kind": "DAG", "metadata": {"name": "etl"},
        "spec": {"tasks": [{"name": "kick", "trigger": {"dag": "other"}},
                           {"name": "wait", "sensor": {"externalTask": {"dag": "other"}}}]},
    })
    assert kubernetes_problems(dag) == []

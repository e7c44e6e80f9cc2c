"""The Helm chart helm/kubedag, rendered offline by Helm's own engine (see tests/helm/chart.py).

Every object of every configuration is validated strictly against the Kubernetes OpenAPI schemas with
kubernetes-validate (unknown fields are errors), the CRDs included; the rest pins down what the chart
promises: least-privilege RBAC in both watch modes, the controller's configuration contract (KUBEDAG_*
environment variables), a non-root read-only controller, and the database wiring of each source.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.helm.chart import CHART, NAMESPACE, REPO, RenderError, Rendered, crds, lint, render

KUBERNETES_VERSIONS = ["1.27", kubernetes_validate.latest_version()]  # Chart.yaml's oldest, the newest known

URL = "postgresql://kubedag:s3cret@db.example.com:5432/kubedag?sslmode=require"

CONFIGS: dict[str, dict[str, Any]] = {
    # The README's quick start: defaults plus the bundled PostgreSQL.
    "postgresql": {"postgresql": {"enabled": True}},
    # Two watched namespaces (unsorted, one repeated), an external database by URL.
    "namespaced": {"watchNamespaces": ["team-b", "team-a", "team-b"], "database": {"url": URL}},
    # A Secret the user manages.
    "existing-secret": {"database": {"existingSecret": "kubedag-db", "existingSecretKey": "dsn"}},
    # Cluster-wide (explicitly), by URL.
    "cluster-wide": {"watchNamespaces": [], "database": {"url": URL}},
    # Every optional branch of the templates at once.
    "everything": {
        "nameOverride": "orchestrator",
        "image": {"repository": "registry.example/kubedag/controller", "tag": "1.2.3", "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "regcred"}],
        "watchNamespaces": ["etl"],
        "controller": {
            "apiQps": 20, "apiBurst": 40, "workers": 3, "podRetention": "1h", "runHistoryLimit": 7,
            "imagePullTimeout": "90s", "logLevel": "DEBUG", "livenessPort": 9090, "replicas": 3,
            "leaderElection": {"leaseDuration": "30s", "renewDeadline": "20s", "retryPeriod": "4s"},
            "extraEnv": [{"name": "TZ", "value": "UTC"}], "extraArgs": ["--standalone"],
        },
        "metrics": {"port": 9191, "service": {"annotations": {"prometheus.io/scrape": "true"}},
                    "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "kubedag"}}},
        "serviceAccount": {"name": "kubedag-controller", "annotations": {"example.com/role": "x"}},
        "podAnnotations": {"example.com/a": "b"},
        "podLabels": {"team": "data"},
        "tmpSizeLimit": "",
        "priorityClassName": "high",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "etl", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}}},
        "postgresql": {
            "enabled": True, "username": "dags", "database": "dagsdb", "password": "given-p@ss/word",
            "persistence": {"size": "1Gi", "storageClass": "standard", "accessModes": ["ReadWriteOnce"]},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "db", "operator": "Exists"}],
            "affinity": {"podAntiAffinity": {}},
        },
    },
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def config(request) -> tuple[str, Rendered]:
    return request.param, render(CONFIGS[request.param])


def _rendered(name: str) -> Rendered:
    return render(CONFIGS[name])


# --- every object is valid Kubernetes -----------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_object_is_valid(config, version):
    name, rendered = config
    assert rendered.objects, name
    for obj in rendered.objects:
        where = f"{name}: {obj.get('kind')} {obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{where}: {'.'.join(map(str, e.path))}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:  # an unknown kind or apiVersion is an error too
            pytest.fail(f"{where}: {e.message}")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_chart_crds_are_valid(version):
    for crd in crds():
        kubernetes_validate.validate(yaml.safe_load(crd["data"]), version, strict=True)


def test_objects_are_namespaced_in_the_release_namespace_and_unique(config):
    name, rendered = config
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    seen = set()
    for obj in rendered.objects:
        meta = obj["metadata"]
        key = (obj["kind"], meta.get("namespace"), meta["name"])
        assert key not in seen, f"{name}: {key} rendered twice"
        seen.add(key)
        assert len(meta["name"]) <= 63
        if obj["kind"] in cluster_scoped:
            assert "namespace" not in meta
        elif obj["kind"] not in ("Role", "RoleBinding"):
            assert meta["namespace"] == NAMESPACE, f"{name}: {key}"
        assert meta["labels"]["app.kubernetes.io/instance"] == "kubedag"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_helm_lint_is_clean():
    for name, values in CONFIGS.items():
        report = lint(CHART, values, strict=True, namespace=NAMESPACE)
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        assert problems == [], f"{name}: {problems}"


# --- the CRDs -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["backfill.yaml", "dag.yaml", "dagrun.yaml", "pool.yaml"])
def test_chart_crds_are_copies_of_the_top_level_ones(name):
    chart_copy, source = CHART / "crds" / name, REPO / "crds" / name
    assert chart_copy.read_bytes() == source.read_bytes(), (
        f"helm/kubedag/crds/{name} differs from crds/{name}: cp crds/{name} helm/kubedag/crds/"
    )


def test_chart_ships_exactly_the_four_crds():
    assert sorted(Path(c["filename"]).name for c in crds()) == ["backfill.yaml", "dag.yaml", "dagrun.yaml", "pool.yaml"]
    names = sorted(yaml.safe_load(c["data"])["metadata"]["name"] for c in crds())
    assert names == ["backfills.kubedag.io", "dagruns.kubedag.io", "dags.kubedag.io", "pools.kubedag.io"]


# --- RBAC ---------------------------------------------------------------------------------------------------

# What the controller calls, no more (tests/controlplane/test_rbac.py checks it against the audit log).
WORKLOAD = {
    ("kubedag.io", r, v) for r in ("dags", "pools", "backfills", "dagruns") for v in ("list", "watch")
} | {
    ("kubedag.io", "dagruns", v) for v in ("get", "create", "patch", "delete")
} | {
    ("kubedag.io", "dags", "get"),  # a run's DAG missing from the watch cache: not listed yet, or deleted
} | {
    ("kubedag.io", "dags/status", "patch"), ("kubedag.io", "pools/status", "patch"),
    ("kubedag.io", "dagruns/status", "patch"), ("kubedag.io", "backfills/status", "patch"),
    ("", "configmaps", "get"), ("", "secrets", "get"),
} | {
    ("", "pods", v) for v in ("get", "list", "watch", "create", "delete")
} | {
    ("", "pods/log", "get"),
    ("", "events", "create"),
}
# Leader election's Lease, in the release namespace only (kubedag.k8s.leader: read, created once, renewed by PUT).
LEADER_ELECTION = {("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")}
CLUSTER_READ = {
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
}
# kopf watches namespaces only when given a list of them
NAMESPACED_CLUSTER_READ = CLUSTER_READ | {("", "namespaces", "list"), ("", "namespaces", "watch")}


def grants(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples a Role or ClusterRole grants; no wildcards or name limits allowed."""
    triples = set()
    for rule in role["rules"]:
        assert "nonResourceURLs" not in rule and "resourceNames" not in rule, rule
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], f"wildcard in {role['metadata']['name']}: {rule}"
        triples |= {(g, r, v) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    return triples


def bound_roles(rendered: Rendered, sa: str) -> dict[tuple[str, str | None, str], set]:
    """(kind, namespace, name) -> grants of every Role/ClusterRole bound to ServiceAccount ``sa``."""
    out = {}
    for binding in rendered.of_kind("RoleBinding") + rendered.of_kind("ClusterRoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]
        ref = binding["roleRef"]
        assert ref["apiGroup"] == "rbac.authorization.k8s.io"
        namespace = binding["metadata"].get("namespace")
        role = rendered.one(ref["kind"], ref["name"], namespace if ref["kind"] == "Role" else None)
        out[(ref["kind"], namespace, ref["name"])] = grants(role)
    return out


def test_cluster_wide_rbac_is_exactly_the_contract():
    rendered = _rendered("cluster-wide")
    assert [r["metadata"]["name"] for r in rendered.of_kind("Role")] == ["kubedag-leader-election"]
    roles = bound_roles(rendered, "kubedag")
    assert roles.pop(("Role", NAMESPACE, "kubedag-leader-election")) == LEADER_ELECTION
    assert sorted(roles.values(), key=len) == [CLUSTER_READ, WORKLOAD]
    assert all(kind == "ClusterRole" for kind, _, _ in roles)
    assert len(rendered.of_kind("ClusterRole")) == 2  # nothing unbound


def test_namespaced_rbac_has_a_role_per_namespace_and_no_cluster_wide_pod_rights():
    rendered = _rendered("namespaced")
    roles = bound_roles(rendered, "kubedag")
    assert roles.pop(("Role", NAMESPACE, "kubedag-leader-election")) == LEADER_ELECTION
    namespaced = {ns: g for (kind, ns, _), g in roles.items() if kind == "Role"}
    assert namespaced == {"team-a": WORKLOAD, "team-b": WORKLOAD}
    cluster = [g for (kind, _, _), g in roles.items() if kind == "ClusterRole"]
    assert cluster == [NAMESPACED_CLUSTER_READ]
    for role in rendered.of_kind("ClusterRole"):
        assert not {r for _, r, _ in grants(role)} & {"pods", "pods/log", "dags", "dagruns", "events", "secrets"}
    assert len(rendered.of_kind("Role")) == 3 and len(rendered.of_kind("ClusterRole")) == 1


def test_no_role_lists_secrets_or_grants_escalation(config):
    """Secrets are read one by one, by the names DAGs give (variables, connections, webhook URLs): never listed."""
    _, rendered = config
    for role in rendered.of_kind("Role") + rendered.of_kind("ClusterRole"):
        for _, resource, verb in grants(role):
            assert resource != "secrets" or verb == "get"
            assert resource not in ("serviceaccounts", "roles", "rolebindings", "clusterroles")
            assert verb not in ("escalate", "bind", "impersonate")


def test_rbac_can_be_left_to_the_user():
    rendered = render(
        {**CONFIGS["cluster-wide"], "rbac": {"create": False}, "serviceAccount": {"create": False, "name": "mine"}}
    )
    assert not {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ServiceAccount"} & set(rendered.kinds())
    assert rendered.deployment["spec"]["template"]["spec"]["serviceAccountName"] == "mine"


def test_service_account_of_the_controller(config):
    name, rendered = config
    sa = rendered.one("ServiceAccount")
    assert rendered.deployment["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    if name == "everything":
        assert sa["metadata"]["name"] == "kubedag-controller"
        assert sa["metadata"]["annotations"] == {"example.com/role": "x"}


# --- the controller Deployment ---------------------------------------------------------------------------

DEFAULT_ENV = {
    "KUBEDAG_API_QPS": "50",
    "KUBEDAG_API_BURST": "100",
    "KUBEDAG_WORKERS": "8",
    "KUBEDAG_POD_RETENTION": "10m",
    "KUBEDAG_RUN_HISTORY_LIMIT": "50",
    "KUBEDAG_IMAGE_PULL_TIMEOUT": "5m",
    "KUBEDAG_LOG_LEVEL": "INFO",
    "KUBEDAG_LIVENESS_PORT": "8080",
    "KUBEDAG_LEADER_ELECT": "true",
    "KUBEDAG_LEADER_ELECT_LEASE_DURATION": "15s",
    "KUBEDAG_LEADER_ELECT_RENEW_DEADLINE": "10s",
    "KUBEDAG_LEADER_ELECT_RETRY_PERIOD": "2s",
    "KUBEDAG_LEADER_ELECT_LEASE_NAMESPACE": NAMESPACE,
}


def test_controller_env_defaults_are_the_contract():
    env = _rendered("cluster-wide").env
    assert {k: env[k]["value"] for k in DEFAULT_ENV} == DEFAULT_ENV
    assert env["KUBEDAG_NAMESPACES"]["value"] == ""


def test_controller_env_from_values():
    rendered = _rendered("everything")
    env = rendered.env
    assert {k: env[k]["value"] for k in DEFAULT_ENV} == {
        "KUBEDAG_API_QPS": "20", "KUBEDAG_API_BURST": "40", "KUBEDAG_WORKERS": "3",
        "KUBEDAG_POD_RETENTION": "1h", "KUBEDAG_RUN_HISTORY_LIMIT": "7", "KUBEDAG_IMAGE_PULL_TIMEOUT": "90s",
        "KUBEDAG_LOG_LEVEL": "DEBUG", "KUBEDAG_LIVENESS_PORT": "9090",
        "KUBEDAG_LEADER_ELECT": "true", "KUBEDAG_LEADER_ELECT_LEASE_DURATION": "30s",
        "KUBEDAG_LEADER_ELECT_RENEW_DEADLINE": "20s", "KUBEDAG_LEADER_ELECT_RETRY_PERIOD": "4s",
        "KUBEDAG_LEADER_ELECT_LEASE_NAMESPACE": NAMESPACE,
    }
    assert env["KUBEDAG_LEADER_ELECT_LEASE_NAME"]["value"] == rendered.deployment["metadata"]["name"]
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["TZ"] == {"name": "TZ", "value": "UTC"}
    assert env["KUBEDAG_NAMESPACES"]["value"] == "etl"
    assert rendered.controller["args"] == ["--standalone"]
    assert rendered.controller["ports"] == [{"name": "health", "containerPort": 9090, "protocol": "TCP"},
                                            {"name": "metrics", "containerPort": 9191, "protocol": "TCP"}]
    assert env["KUBEDAG_METRICS_PORT"]["value"] == "9191"


def test_namespaced_mode_passes_the_namespaces_sorted_and_unique():
    assert _rendered("namespaced").env["KUBEDAG_NAMESPACES"]["value"] == "team-a,team-b"


def test_controller_is_a_leader_and_a_standby_of_non_root_read_only_pods(config):
    name, rendered = config
    spec = rendered.deployment["spec"]
    assert spec["replicas"] == (3 if name == "everything" else 2)
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert rendered.env["KUBEDAG_LEADER_ELECT"]["value"] == "true"
    pdb = rendered.one("PodDisruptionBudget")
    assert pdb["spec"] == {"minAvailable": 1, "selector": spec["selector"]}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    for container in pod["containers"] + pod.get("initContainers", []):
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, container["name"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m["name"] for m in rendered.controller["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert rendered.env["HOME"]["value"].startswith("/tmp") and rendered.env["KUBEDAG_HOME"]["value"].startswith("/tmp")
    assert rendered.controller["resources"]["requests"] and rendered.controller["resources"]["limits"]
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= spec["template"]["metadata"]["labels"].items()
    assert selector["app.kubernetes.io/component"] == "controller"


def test_one_controller_without_leader_election_is_recreated_and_has_no_budget():
    rendered = render({**CONFIGS["cluster-wide"], "controller": {"replicas": 1, "leaderElection": {"enabled": False}}})
    spec = rendered.deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert "PodDisruptionBudget" not in rendered.kinds() and "KUBEDAG_LEADER_ELECT" not in rendered.env
    assert not [r for r in rendered.of_kind("Role") if r["metadata"]["name"].endswith("leader-election")]


def test_liveness_probe_is_healthz_on_the_liveness_port(config):
    _, rendered = config
    probe = rendered.controller["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    port = next(p for p in rendered.controller["ports"] if p["name"] == probe["port"])
    assert str(port["containerPort"]) == rendered.env["KUBEDAG_LIVENESS_PORT"]["value"]


def test_image_defaults_to_the_app_version_which_is_the_package_version():
    chart_yaml = yaml.safe_load((CHART / "Chart.yaml").read_text())
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'version = "{chart_yaml["appVersion"]}"' in pyproject
    rendered = _rendered("postgresql")
    assert rendered.controller["image"] == f"kubedag/controller:{chart_yaml['appVersion']}"
    assert rendered.controller["imagePullPolicy"] == "IfNotPresent"
    assert "args" not in rendered.controller  # the image's ENTRYPOINT is `kubedag controller`


def test_scheduling_values_reach_the_pod():
    rendered = _rendered("everything")
    pod = rendered.deployment["spec"]["template"]
    values = CONFIGS["everything"]
    for key in ("nodeSelector", "tolerations", "affinity", "imagePullSecrets", "priorityClassName"):
        assert pod["spec"][key] == values[key], key
    assert pod["metadata"]["labels"]["team"] == "data"
    assert pod["metadata"]["annotations"]["example.com/a"] == "b"
    assert rendered.controller["image"] == "registry.example/kubedag/controller:1.2.3"
    assert rendered.controller["imagePullPolicy"] == "Always"
    assert {v["name"]: v for v in pod["spec"]["volumes"]}["tmp"]["emptyDir"] == {}
    for key in ("nodeSelector", "tolerations", "affinity"):
        assert key not in _rendered("cluster-wide").deployment["spec"]["template"]["spec"]


# --- database wiring ------------------------------------------------------------------------------------------


def test_database_url_goes_through_a_chart_secret():
    rendered = _rendered("namespaced")
    ref = rendered.env["KUBEDAG_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "kubedag-database", "key": "url"}
    assert rendered.secret_data("kubedag-database") == {"url": URL}
    assert "PGPASSWORD" not in rendered.env
    assert "StatefulSet" not in rendered.kinds()  # no bundled PostgreSQL: its only Service is the metrics one
    assert [s["metadata"]["name"] for s in rendered.of_kind("Service")] == ["kubedag-metrics"]
    assert URL not in str(rendered.deployment)


def test_existing_secret_is_referenced_and_not_created():
    rendered = _rendered("existing-secret")
    ref = rendered.env["KUBEDAG_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "kubedag-db", "key": "dsn"}
    assert rendered.of_kind("Secret") == []
    assert "StatefulSet" not in rendered.kinds()
    assert [s["metadata"]["name"] for s in rendered.of_kind("Service")] == ["kubedag-metrics"]


def test_bundled_postgresql_is_wired_to_the_controller():
    rendered = _rendered("postgresql")
    sts = rendered.one("StatefulSet")
    service = rendered.one("Service", "kubedag-postgresql")
    name = "kubedag-postgresql"
    assert sts["metadata"]["name"] == service["metadata"]["name"] == name
    assert sts["spec"]["serviceName"] == name and sts["spec"]["replicas"] == 1

    # The password: generated (32 letters and digits) into the chart's Secret, read by both sides from it.
    password = rendered.secret_data(name)["password"]
    assert len(password) == 32 and set(password) <= set(string.ascii_letters + string.digits)
    pod = sts["spec"]["template"]["spec"]
    (pg,) = pod["containers"]
    pg_env = {e["name"]: e for e in pg["env"]}
    ref = {"secretKeyRef": {"name": name, "key": "password"}}
    assert pg_env["POSTGRES_PASSWORD"]["valueFrom"] == ref
    assert rendered.env["PGPASSWORD"]["valueFrom"] == ref

    # The URL: the Service, its port, the user and database PostgreSQL creates; no password in it.
    url = rendered.env["KUBEDAG_DATABASE_URL"]["value"]
    user, database = pg_env["POSTGRES_USER"]["value"], pg_env["POSTGRES_DB"]["value"]
    port = service["spec"]["ports"][0]
    assert url == f"postgresql://{user}@{name}.{NAMESPACE}.svc:{port['port']}/{database}"
    assert (user, database) == ("kubedag", "kubedag")
    assert port["targetPort"] in [p["name"] for p in pg["ports"]]
    assert service["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    assert sts["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    controller_labels = rendered.deployment["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= controller_labels.items()

    # The official image, its data on a PersistentVolumeClaim from volumeClaimTemplates.
    assert pg["image"] == "postgres:17"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "8Gi"
    assert "storageClassName" not in claim["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pg["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/var/lib/postgresql/data"
    assert pg_env["PGDATA"]["value"].startswith("/var/lib/postgresql/data/")
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 999
    assert pg["readinessProbe"] and pg["livenessProbe"]

    # The controller waits for it; the Secret outlives the release, as the volume does.
    (init,) = rendered.deployment["spec"]["template"]["spec"]["initContainers"]
    assert "pg_isready" in " ".join(init["command"]) and f"--host={name}" in " ".join(init["command"])
    assert rendered.one("Secret", name)["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert "kubedag-database" not in [s["metadata"]["name"] for s in rendered.of_kind("Secret")]


def test_bundled_postgresql_with_given_settings():
    rendered = _rendered("everything")
    name = "kubedag-orchestrator-postgresql"
    assert rendered.secret_data(name) == {"password": "given-p@ss/word"}
    assert rendered.env["KUBEDAG_DATABASE_URL"]["value"] == f"postgresql://dags@{name}.{NAMESPACE}.svc:5432/dagsdb"
    sts = rendered.one("StatefulSet", name)
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "standard"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert sts["spec"]["template"]["spec"]["tolerations"] == [{"key": "db", "operator": "Exists"}]


def test_a_new_password_per_render_without_a_cluster():
    # `lookup` finds nothing offline, so each install generates one; on a cluster, upgrades reuse the stored one.
    first = _rendered("postgresql").secret_data("kubedag-postgresql")["password"]
    second = _rendered("postgresql").secret_data("kubedag-postgresql")["password"]
    assert first != second
    assert "lookup" in (CHART / "templates" / "_helpers.tpl").read_text()


def test_database_settings_restart_the_controller():
    def checksum(values):
        return render(values).deployment["spec"]["template"]["metadata"]["annotations"]["checksum/database"]

    assert checksum(CONFIGS["cluster-wide"]) == checksum(CONFIGS["cluster-wide"])
    assert checksum(CONFIGS["cluster-wide"]) != checksum({"database": {"url": URL + "&x=1"}})


# --- values that cannot work fail the render with a clear message ------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "kubedag needs a PostgreSQL metadata database: set one of postgresql.enabled=true"),
        ({"database": {"existingSecretKey": "url"}}, "kubedag needs a PostgreSQL metadata database"),
        ({"postgresql": {"enabled": True}, "database": {"url": URL}},
         "set only one database source, got postgresql.enabled, database.url"),
        ({"database": {"url": URL, "existingSecret": "s"}}, "set only one database source"),
        ({"database": {"url": "mysql://h/db"}}, "database.url must be a PostgreSQL URL"),
        ({"database": {"existingSecret": "s", "existingSecretKey": ""}}, "existingSecretKey must name"),
        ({"database": {"url": URL}, "watchNamespaces": ["Team_A"]}, 'watchNamespaces: "Team_A" is not a namespace'),
        ({"postgresql": {"enabled": True, "username": "a-b"}}, "postgresql.username must be"),
        ({"database": {"url": URL}, "controller": {"leaderElection": {"enabled": False}}},
         "controller.replicas > 1 needs controller.leaderElection.enabled=true"),
    ],
)
def test_invalid_values_fail_with_a_message(values, message):
    with pytest.raises(RenderError, match=re.escape(message)):
        render(values)


# --- notes and values.yaml ----------------------------------------------------------------------------------


def test_notes(config):
    name, rendered = config
    assert "kubectl apply -f examples/supermarket/dag.yaml" in rendered.notes
    if name == "namespaced":
        assert "only in: team-a,team-b" in rendered.notes and "dag.yaml -n team-a" in rendered.notes
    if name == "cluster-wide":
        assert "in every namespace" in rendered.notes


def test_values_yaml_documents_every_value():
    """Every value (leaf key) of values.yaml has a ``# -- description`` comment (helm-docs' marker) right above
    it, or above one of its parents (a mapping documented as a whole, such as ``resources``)."""
    entries: list[tuple[int, str, bool]] = []  # (indent, key, has a "# --" comment right above)
    comments: list[str] = []  # the comment lines right above the current line
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        match = re.match(r"^(\s*)([A-Za-z][A-Za-z0-9]*):", line)
        if match:
            entries.append((len(match.group(1)), match.group(2), any(c.startswith("# --") for c in comments)))
        comments = comments + [stripped] if stripped.startswith("#") else []
    assert len(entries) > 50
    undocumented = []
    for i, (indent, key, documented) in enumerate(entries):
        if i + 1 < len(entries) and entries[i + 1][0] > indent:
            continue  # a parent: its leaves are checked
        parents, level = [], indent
        for j in range(i - 1, -1, -1):
            if entries[j][0] < level:
                parents.append(entries[j])
                level = entries[j][0]
        if not documented and not any(doc for _, _, doc in parents):
            undocumented.append(".".join([p[1] for p in reversed(parents)] + [key]))
    assert undocumented == []

"""The chart's REST API server (api.enabled): its Deployment, Service, Ingress and its own least-privilege RBAC
(TokenReview and SubjectAccessReview, what the API reads and writes in the namespaces it serves, the basic-auth
Secret by name only), rendered offline by Helm's engine (tests/helm/chart.py)."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest

from tests.helm.chart import CHART, NAMESPACE, RenderError, Rendered, lint, render
from tests.helm.test_chart import CONFIGS, KUBERNETES_VERSIONS, URL, grants

API_CONFIGS: dict[str, dict[str, Any]] = {
    # The API beside a cluster-wide controller, every default.
    "api-defaults": {"database": {"url": URL}, "api": {"enabled": True}},
    # Every optional branch: namespaced controller, extra namespaces, basic auth, ingress with TLS, audiences.
    "api-everything": {
        **CONFIGS["everything"],
        "api": {
            "enabled": True, "extraNamespaces": ["team-b", "etl", "team-b"], "replicas": 2, "port": 9000,
            "tokenAudiences": ["kubedag"], "basicAuth": {"enabled": True, "secretName": "api-users"},
            "serviceAccount": {"name": "kubedag-rest", "annotations": {"example.com/role": "api"}},
            "service": {"type": "NodePort", "port": 8081},
            "ingress": {"enabled": True, "className": "nginx", "host": "airflow.example.com",
                        "annotations": {"cert-manager.io/cluster-issuer": "le"},
                        "tls": [{"secretName": "api-tls", "hosts": ["airflow.example.com"]}]},
            "extraEnv": [{"name": "TZ", "value": "UTC"}], "extraArgs": ["--log-level=debug"],
            "readDagSources": False,
        },
    },
}

# What the API calls in a namespace it serves (kubedag.k8s.catalog, backfills, api_ports), no more.
API_WORKLOAD = {("kubedag.io", "dags", v) for v in ("get", "list", "patch")} | {
    ("kubedag.io", "dagruns", v) for v in ("get", "list", "create", "patch", "delete")} | {
    ("kubedag.io", "backfills", v) for v in ("get", "list", "create", "patch")} | {
    ("kubedag.io", "pools", v) for v in ("get", "list")} | {("", "pods/log", "get")}
DAG_SOURCES = {("", "configmaps", "get"), ("", "secrets", "get")}
REVIEWS = {("authentication.k8s.io", "tokenreviews", "create"), ("authorization.k8s.io", "subjectaccessreviews", "create")}


@pytest.fixture(scope="module", params=sorted(API_CONFIGS))
def api_config(request) -> tuple[str, Rendered]:
    return request.param, render(API_CONFIGS[request.param])


def api_objects(rendered: Rendered) -> list[dict[str, Any]]:
    return [o for o in rendered.objects if o["metadata"]["labels"].get("app.kubernetes.io/component") == "api"]


def api_deployment(rendered: Rendered) -> dict[str, Any]:
    return next(o for o in api_objects(rendered) if o["kind"] == "Deployment")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_api_object_is_valid(api_config, version):
    name, rendered = api_config
    for obj in rendered.objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{name}: {obj['kind']} {obj['metadata']['name']}: {'.'.join(map(str, e.path))}: {e.message}")


def test_api_objects_are_unique_and_lint_is_clean(api_config):
    name, rendered = api_config
    keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in rendered.objects]
    assert len(keys) == len(set(keys))
    for obj in api_objects(rendered):
        if obj["kind"] not in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == NAMESPACE
    report = lint(CHART, API_CONFIGS[name], strict=True, namespace=NAMESPACE)
    assert [m for m in report["messages"] if m["severity"] >= 2] + report["errors"] == []


def test_the_api_is_off_by_default():
    for values in CONFIGS.values():
        assert api_objects(render(values)) == []


def bindings_of(rendered: Rendered, sa: str) -> dict[tuple[str, str | None], set]:
    """(role kind, namespace) -> each Role/ClusterRole bound to ServiceAccount ``sa`` (the Lease's Role
    apart: :func:`lease_roles`)."""
    out = {}
    for binding in rendered.of_kind("RoleBinding") + rendered.of_kind("ClusterRoleBinding"):
        if binding["subjects"] != [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]:
            continue
        if binding["roleRef"]["name"].endswith("-leader-lease"):
            continue
        ref, namespace = binding["roleRef"], binding["metadata"].get("namespace")
        role = rendered.one(ref["kind"], ref["name"], namespace if ref["kind"] == "Role" else None)
        out[(ref["kind"], namespace)] = role
    return out


def lease_roles(rendered: Rendered, sa: str) -> list[dict[str, Any]]:
    """The rules of each Role bound to ``sa`` for the controller's Lease, with the Role's namespace."""
    out = []
    for binding in rendered.of_kind("RoleBinding"):
        if binding["roleRef"]["name"].endswith("-leader-lease") and \
                binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]:
            role = rendered.one("Role", binding["roleRef"]["name"], binding["metadata"]["namespace"])
            out.append({"namespace": role["metadata"]["namespace"], "rules": role["rules"]})
    return out


# The health document's scheduler (kubedag.k8s.controller_health): get on the controller's Lease, by name.
def lease_grant(lease: str) -> list[dict[str, Any]]:
    return [{"namespace": NAMESPACE, "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                                                 "resourceNames": [lease], "verbs": ["get"]}]}]


def test_the_api_reads_only_the_controllers_lease_and_only_with_leader_election():
    rendered = render(API_CONFIGS["api-defaults"])
    assert lease_roles(rendered, "kubedag-api") == lease_grant("kubedag")
    assert lease_roles(render(API_CONFIGS["api-everything"]), "kubedag-rest") == lease_grant("kubedag-orchestrator")
    without = render({**API_CONFIGS["api-defaults"],
                      "controller": {"replicas": 1, "leaderElection": {"enabled": False}}})
    assert lease_roles(without, "kubedag-api") == []
    args = api_deployment(without)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not [a for a in args if a.startswith("--leader-lease")]


def test_the_api_has_its_own_least_privilege_rbac_by_default():
    rendered = render(API_CONFIGS["api-defaults"])
    roles = bindings_of(rendered, "kubedag-api")
    assert set(roles) == {("ClusterRole", None), ("Role", NAMESPACE)}
    assert grants(roles[("ClusterRole", None)]) == REVIEWS
    assert grants(roles[("Role", NAMESPACE)]) == API_WORKLOAD | DAG_SOURCES
    pod = api_deployment(rendered)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "kubedag-api" and pod["automountServiceAccountToken"] is True
    container = pod["containers"][0]
    assert container["command"] == ["kubedag"]
    assert container["args"] == ["api", "--cluster", f"--namespace={NAMESPACE}", "--host=0.0.0.0", "--port=8080",
                                 f"--leader-lease={NAMESPACE}/kubedag"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    env = {e["name"]: e for e in container["env"]}
    assert env["KUBEDAG_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "kubedag-database", "key": "url"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    service = rendered.one("Service", "kubedag-api")
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["selector"].items() <= pod_labels(rendered).items()
    assert not rendered.of_kind("Ingress")


def pod_labels(rendered: Rendered) -> dict[str, str]:
    return api_deployment(rendered)["spec"]["template"]["metadata"]["labels"]


def test_every_served_namespace_gets_a_role_and_basic_auth_reads_only_its_secret():
    rendered = render(API_CONFIGS["api-everything"])
    roles = bindings_of(rendered, "kubedag-rest")
    assert set(roles) == {("ClusterRole", None), ("Role", "etl"), ("Role", "team-b")}
    assert grants(roles[("Role", "team-b")]) == API_WORKLOAD  # readDagSources: false
    home = roles[("Role", "etl")]
    named = [r for r in home["rules"] if "resourceNames" in r]
    assert named == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["api-users"], "verbs": ["get"]}]
    for role in roles.values():
        for rule in role["rules"]:
            assert "list" not in rule["verbs"] or "secrets" not in rule["resources"]
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
    container = api_deployment(rendered)["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["api", "--cluster", "--namespace=etl", "--extra-namespace=team-b", "--host=0.0.0.0",
                                 "--port=9000", "--basic-auth-secret=api-users", "--token-audience=kubedag",
                                 f"--leader-lease={NAMESPACE}/kubedag-orchestrator", "--log-level=debug"]
    env = {e["name"]: e for e in container["env"]}
    assert env["TZ"] == {"name": "TZ", "value": "UTC"} and "PGPASSWORD" in env  # the bundled PostgreSQL
    assert api_deployment(rendered)["spec"]["replicas"] == 2
    ingress = rendered.one("Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["rules"][0]["host"] == "airflow.example.com"
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"] == {
        "name": "kubedag-orchestrator-api", "port": {"name": "http"}}
    assert ingress["spec"]["tls"] == [{"secretName": "api-tls", "hosts": ["airflow.example.com"]}]
    paths = ingress["spec"]["rules"][0]["http"]["paths"]                     # /api/v2, /auth and the web UI's /ui/
    assert [(p["path"], p["pathType"]) for p in paths] == [("/", "Prefix")]
    assert "Web UI: http://localhost:8080/ui/ (through the Ingress: https://airflow.example.com/ui/)" in rendered.notes
    sa = rendered.one("ServiceAccount", "kubedag-rest")
    assert sa["metadata"]["annotations"] == {"example.com/role": "api"}


def test_the_controllers_rbac_is_unchanged_by_the_api():
    with_api, without = render(API_CONFIGS["api-defaults"]), render({"database": {"url": URL}})
    assert bindings_of(with_api, "kubedag") == bindings_of(without, "kubedag")


@pytest.mark.parametrize(("api", "message"), [
    ({"basicAuth": {"enabled": True}}, "api.basicAuth.secretName must name"),
    ({"ingress": {"enabled": True}}, "api.ingress.host is required"),
    ({"extraNamespaces": ["Team_B"]}, 'api.extraNamespaces: "Team_B" is not a namespace'),
])
def test_invalid_api_values_fail_with_a_message(api, message):
    with pytest.raises(RenderError, match=re.escape(message)):
        render({"database": {"url": URL}, "api": {"enabled": True, **api}})


def test_notes_show_how_to_call_the_api():
    notes = render(API_CONFIGS["api-defaults"]).notes
    assert f"kubectl -n {NAMESPACE} port-forward svc/kubedag-api 8080:80" in notes
    assert "http://localhost:8080/api/v2/dags" in notes
    assert "port-forward svc/kubedag-api" not in render({"database": {"url": URL}}).notes

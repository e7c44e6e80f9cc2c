"""Variables and connections from ConfigMaps/Secrets, the env a try gets, and masking secrets in logs."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from kubedag.core.secrets import (
    MIN_SECRET_LENGTH,
    SENSITIVE_KEYWORDS,
    Masker,
    connections_env,
    is_sensitive,
    load_sources,
    objects_from_documents,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# ------------------------------------------------------------------ sensitivity
def test_sensitive_keywords_are_airflows_defaults():
    required = {"password", "secret", "passwd", "authorization", "api_key", "apikey", "access_token"}
    assert required <= SENSITIVE_KEYWORDS
    assert SENSITIVE_KEYWORDS == {
        "access_token", "api_key", "apikey", "authorization", "passphrase", "passwd", "password",
        "private_key", "secret", "token", "keyfile_dict", "service_account",
    }


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [("password", True), ("DB_PASSWORD", True), (" Slack_Token ", True), ("my-api_key", True),
     ("client_secret_id", True), ("Authorization", True), ("region", False), ("pass", False),
     ("key", False), ("", False), (None, False), (3, False)],
)
def test_is_sensitive_is_a_case_insensitive_substring_match(key, sensitive):
    assert is_sensitive(key) is sensitive


# ---------------------------------------------------------------------- masker
def test_mask_replaces_every_occurrence_longest_first():
    m = Masker()
    m.add("hunter22")
    m.add("hunter22-extended")
    text = "login ok with hunter22-extended; retry with hunter22 and hunter22"
    assert m.mask(text) == "login ok with ***; retry with *** and ***"


def test_short_and_empty_values_are_not_masked():
    m = Masker()
    for value in ("", "a", "db", "abcd", None, 12345):
        m.add(value)
    assert len(m) == 0
    m.add("x" * MIN_SECRET_LENGTH)
    assert m.mask("a db abcd xxxxx") == "a db abcd ***"
    assert Masker(min_length=1).min_length == 1


def test_mask_escapes_regex_characters_and_leaves_text_without_secrets_alone():
    m = Masker()
    assert m.mask("nothing to hide") == "nothing to hide"
    m.add("p.a*ss(w)rd|x")
    assert m.mask("pXaXssw rd p.a*ss(w)rd|x") == "pXaXssw rd ***"
    assert "p.a" not in repr(m)


def test_add_variables_from_a_secret_masks_all_from_a_configmap_only_sensitive_keys():
    m = Masker()
    m.add_variables({"region": "ap-northeast-2", "db_password": "pg-s3cret"}, all_secret=False)
    assert m.mask("ap-northeast-2 pg-s3cret") == "ap-northeast-2 ***"
    m.add_variables({"bucket": "sales-bucket"}, all_secret=True)
    assert m.mask("s3://sales-bucket/") == "s3://***/"


def test_add_connection_masks_password_encoded_password_and_uri():
    m = Masker()
    uri = "postgres://etl:p%40ss%2Fword@db.example:5432/sales?api_key=k3y-v4lue&sslmode=require"
    m.add_connection(uri)
    assert m.mask(f"connecting to {uri}") == "connecting to ***"
    assert m.mask("password is p@ss/word") == "password is ***"
    assert m.mask("quoted p%40ss%2Fword") == "quoted ***"
    assert m.mask("key k3y-v4lue, mode require") == "key ***, mode require"
    assert m.mask("host db.example") == "host db.example"


def test_add_connection_that_does_not_parse_masks_it_whole():
    m = Masker()
    m.add_connection("postgres://u:pw@db:notaport/x")
    assert m.mask("uri postgres://u:pw@db:notaport/x") == "uri ***"


def test_mask_obj_masks_strings_and_everything_under_sensitive_keys():
    m = Masker()
    m.add("hunter22")
    obj = {
        "cmd": ["psql", "--password=hunter22"],
        "env": {"API_KEY": "short", "TOKENS": ["a", {"x": "b"}], "REGION": "kr"},
        "n": 3,
        "nested": ({"password": 1234, "note": "hunter22!"},),
    }
    assert m.mask_obj(obj) == {
        "cmd": ["psql", "--password=***"],
        "env": {"API_KEY": "***", "TOKENS": ["***", {"x": "***"}], "REGION": "kr"},
        "n": 3,
        "nested": ({"password": 1234, "note": "***!"},),
    }
    assert obj["cmd"][1] == "--password=hunter22"  # a copy


# --------------------------------------------------------------------- sources
def cluster(objects):
    calls = []

    def get(kind, name):
        calls.append((kind, name))
        return objects.get((kind, name))

    return get, calls


def test_load_sources_reads_configmaps_and_secrets():
    get, calls = cluster({
        ("ConfigMap", "settings"): {"kind": "ConfigMap", "data": {"region": "kr", "db_password": "cm-passw0rd", "limit": "10"}},
        ("Secret", "vars"): {"kind": "Secret", "data": {"api": b64("v4r-secret"), "limit": b64("20")}},
        ("Secret", "conns"): {"kind": "Secret", "data": {"my_db": b64("postgres://u:pg-passw0rd@db:5432/x")},
                              "stringData": {"my_api": "http://token:api-t0ken@api.example"}},
    })
    sources = load_sources(
        [{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "vars"}}],
        [{"secretRef": {"name": "conns"}}],
        get,
    )
    assert sources.missing == []
    assert calls == [("ConfigMap", "settings"), ("Secret", "vars"), ("Secret", "conns")]
    # a later source wins on a repeated key, as envFrom
    assert sources.variables == {"region": "kr", "db_password": "cm-passw0rd", "limit": "20", "api": "v4r-secret"}
    assert sources.connections == {"my_db": "postgres://u:pg-passw0rd@db:5432/x", "my_api": "http://token:api-t0ken@api.example"}
    log = "kr cm-passw0rd v4r-secret pg-passw0rd api-t0ken 10"
    assert sources.masker.mask(log) == "kr *** *** *** *** 10"


def test_load_sources_reports_what_is_missing_and_loads_the_rest():
    get, _ = cluster({("Secret", "vars"): {"stringData": {"a": "1"}}})
    sources = load_sources(
        [{"configMapRef": {"name": "x"}}, {"secretRef": {"name": "vars"}}],
        [{"secretRef": {"name": "y"}}],
        get,
    )
    assert sources.missing == [
        "spec.variablesFrom[0].configMapRef: ConfigMap 'x' not found",
        "spec.connectionsFrom[0].secretRef: Secret 'y' not found",
    ]
    assert sources.variables == {"a": "1"} and sources.connections == {}


def test_secret_data_that_is_not_base64_text():
    get, _ = cluster({("Secret", "s"): {"data": {"ok": b64("fine"), "bad": "%%%", "bin": base64.b64encode(b"\xff\xfe").decode()}}})
    sources = load_sources([{"secretRef": {"name": "s"}}], [], get)
    assert sources.variables == {"ok": "fine"}
    assert sources.missing == [
        "spec.variablesFrom[0].secretRef: Secret 's': key 'bad' is not base64 of UTF-8 text",
        "spec.variablesFrom[0].secretRef: Secret 's': key 'bin' is not base64 of UTF-8 text",
    ]


def test_nothing_to_load():
    sources = load_sources((), (), lambda kind, name: pytest.fail("no lookup expected"))
    assert (sources.variables, sources.connections, sources.missing, len(sources.masker)) == ({}, {}, [], 0)


def test_connections_env_follows_airflows_naming():
    env = connections_env({"my_db": "postgres://h", "my-api.v2": "http://a", "S3": "aws://"})
    assert env == {"KUBEDAG_CONN_MY_DB": "postgres://h", "KUBEDAG_CONN_MY_API_V2": "http://a", "KUBEDAG_CONN_S3": "aws://"}
    with pytest.raises(ValueError, match="connections 'my-db' and 'my_db' would both be passed as \\$KUBEDAG_CONN_MY_DB"):
        connections_env({"my-db": "a://", "my_db": "b://"})


# ---------------------------------------------------- manifests of a DAG folder
FOLDER = """
apiVersion: kubedag.io/v1alpha1
kind: DAG
metadata: {name: etl}
spec:
  variablesFrom: [{configMapRef: {name: etl-settings}}, {secretRef: {name: etl-vars}}]
  connectionsFrom: [{secretRef: {name: etl-conns}}]
  tasks: [{name: a, command: ["true"]}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: etl-settings}
data: {region: kr}
---
apiVersion: v1
kind: Secret
metadata: {name: etl-vars}
stringData: {token: "t0ken-value"}
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Secret
    metadata: {name: etl-conns}
    type: Opaque
    data: {my_db: %s}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: etl-settings}
---
""" % b64("postgres://u:pw-12345@db/x")


def test_objects_from_documents_of_a_dag_folder(tmp_path: Path):
    (tmp_path / "dag.yaml").write_text(FOLDER)
    docs = list(yaml.safe_load_all((tmp_path / "dag.yaml").read_text()))
    objects = objects_from_documents(docs)
    assert set(objects) == {("ConfigMap", "etl-settings"), ("Secret", "etl-vars"), ("Secret", "etl-conns")}
    dag = next(d for d in docs if d and d["kind"] == "DAG")["spec"]
    sources = load_sources(dag["variablesFrom"], dag["connectionsFrom"], lambda kind, name: objects.get((kind, name)))
    assert sources.missing == []
    assert sources.variables == {"region": "kr", "token": "t0ken-value"}
    assert sources.connections == {"my_db": "postgres://u:pw-12345@db/x"}
    assert sources.masker.mask("t0ken-value pw-12345 kr") == "*** *** kr"


def test_later_documents_replace_earlier_ones():
    objects = objects_from_documents([
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"v": "1"}},
        None, "text", [],
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"v": "2"}},
        {"kind": "Secret", "metadata": {}},
    ])
    assert objects == {("ConfigMap", "c"): {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"v": "2"}}}

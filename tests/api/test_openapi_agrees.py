"""Our ``/openapi.json`` agrees with Airflow 3's OpenAPI document (the one bundled with ``apache-airflow-client``
3.x) for every ``/api/v2`` endpoint we serve: same path, method and operationId, only query parameters Airflow
has, and every request/response model with Airflow's field names and required fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import airflow_client.client
import pytest
import yaml
from fastapi.testclient import TestClient

from kubedag.api import create_app
from tests.api.fakes import make_services

AIRFLOW_SPEC = Path(airflow_client.client.__file__).resolve().parents[2] / "v2.yaml"


def refs(node: Any, out: set[str]) -> set[str]:
    """Every schema name ``node`` refers to."""
    if isinstance(node, dict):
        if "$ref" in node:
            out.add(node["$ref"].rsplit("/", 1)[-1])
        for value in node.values():
            refs(value, out)
    elif isinstance(node, list):
        for value in node:
            refs(value, out)
    return out


@pytest.fixture(scope="module")
def docs():
    if not AIRFLOW_SPEC.is_file():
        pytest.skip(f"{AIRFLOW_SPEC} is not shipped with this apache-airflow-client")
    ours = TestClient(create_app(make_services()[0])).get("/openapi.json").json()
    return ours, yaml.safe_load(AIRFLOW_SPEC.read_text())


def test_every_v2_endpoint_is_airflows_with_its_operation_id_and_parameters(docs):
    ours, theirs = docs
    served = [(path, method, op) for path, methods in ours["paths"].items() if path.startswith("/api/v2")
              for method, op in methods.items()]
    assert len(served) >= 35
    for path, method, op in served:
        airflow = theirs["paths"].get(path, {}).get(method)
        assert airflow is not None, f"{method.upper()} {path} is not Airflow's"
        assert op["operationId"] == airflow["operationId"]
        extra = {p["name"] for p in op.get("parameters", [])} - {p["name"] for p in airflow.get("parameters", [])}
        assert not extra, f"{method.upper()} {path}: parameters Airflow does not have: {extra}"


def test_every_model_has_airflows_fields_and_required_fields(docs):
    ours, theirs = docs
    todo = set()
    for methods in ours["paths"].values():
        for op in methods.values():
            if op["operationId"] in ("create_token",) or op["operationId"].startswith(("v1_", "airflow2_")):
                continue
            todo |= refs(op.get("requestBody", {}), set()) | refs(op["responses"].get("200", {}), set())
    checked = set()
    while todo:
        name = todo.pop()
        if name in checked or name == "HTTPExceptionResponse":
            continue
        checked.add(name)
        mine, airflow = ours["components"]["schemas"][name], theirs["components"]["schemas"].get(name)
        assert airflow is not None, f"{name} is not one of Airflow's models"
        todo |= refs(mine, set())
        assert set(mine.get("properties", {})) == set(airflow.get("properties", {})), name
        assert set(mine.get("required", [])) == set(airflow.get("required", [])), name
    assert {"DAGResponse", "DAGRunResponse", "TaskInstanceResponse", "BackfillResponse"} <= checked

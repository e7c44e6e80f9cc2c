"""A DAGRun's note (Airflow's ``DagRun.note``) on a cluster: kept as the DAGRun's annotation ``kubedag.io/note``,
set by the trigger's ``note`` or PATCH ``note``, removed by an empty note, and served back in the run."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kubedag.api import create_app
from kubedag.cli.api_cluster import cluster_services
from tests.api_cluster.conftest import DAGRUNS, OTHER, dag, grant_admin

NOTE = "kubedag.io/note"


def annotations(k8s_api, namespace: str = "default") -> dict[str, str | None]:
    return {o["spec"]["runId"]: (o["metadata"].get("annotations") or {}).get(NOTE)
            for o in k8s_api.list(DAGRUNS, namespace)}


def test_a_runs_note_is_the_dagrun_annotation(k8s_api, kube, auth):
    k8s_api.create(dag("etl", [{"name": "extract", "command": ["true"]}]))
    k8s_api.create(dag("report", [{"name": "send", "command": ["true"]}], namespace=OTHER))
    token = auth.add_token("admin")
    grant_admin(auth, "user:admin")
    client = TestClient(create_app(cluster_services(kube, namespaces=(OTHER,))))
    headers = {"Authorization": f"Bearer {token}"}

    created = client.post("/api/v2/dags/etl/dagRuns", headers=headers,
                          json={"logical_date": None, "dag_run_id": "r1", "note": "rerun after the outage"})
    assert created.status_code == 200, created.text
    assert annotations(k8s_api) == {"r1": "rerun after the outage"}
    assert client.get("/api/v2/dags/etl/dagRuns/r1", headers=headers).json()["note"] == "rerun after the outage"

    patched = client.patch("/api/v2/dags/etl/dagRuns/r1", headers=headers, json={"note": "checked by ops"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["note"] == "checked by ops" and annotations(k8s_api) == {"r1": "checked by ops"}

    cleared = client.patch("/api/v2/dags/etl/dagRuns/r1?update_mask=note", headers=headers, json={"note": ""})
    assert cleared.status_code == 200 and cleared.json()["note"] is None
    assert annotations(k8s_api) == {"r1": None}

    # Another namespace's DAG: the note goes on its DAGRun there.
    other = client.post(f"/api/v2/dags/{OTHER}.report/dagRuns", headers=headers,
                        json={"logical_date": None, "dag_run_id": "b1"})
    assert other.status_code == 200, other.text
    assert client.patch(f"/api/v2/dags/{OTHER}.report/dagRuns/b1", headers=headers,
                        json={"note": "team b"}).json()["note"] == "team b"
    assert annotations(k8s_api, OTHER) == {"b1": "team b"}

    missing = client.patch("/api/v2/dags/etl/dagRuns/nope", headers=headers, json={"note": "x"})
    assert missing.status_code == 404, missing.text

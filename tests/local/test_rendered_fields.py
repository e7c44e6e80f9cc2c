"""Airflow's "Rendered Template": what a try was launched with (its rendered command, args and env) is recorded
per try in the metadata DB, the DAG's secrets masked as in logs, and shown by the UI's task instance panel and
the REST API's ``rendered_fields``."""

from __future__ import annotations

import base64

from fastapi import FastAPI
from fastapi.testclient import TestClient

from kubedag.api.convert import ti_response
from kubedag.cli.local_catalog import local_catalog
from kubedag.store import repository
from kubedag.ui import ui_router
from tests.local.conftest import dag_manifest, run, session, states, write
from tests.ui.memory import Rbac, Services, TokenAuth

TOKEN = "s3cr3t-token-value"


def test_a_launched_try_records_its_rendered_fields_with_the_secrets_masked(folder):
    write(folder, "config.yaml", f"""
        apiVersion: v1
        kind: Secret
        metadata: {{name: creds}}
        data: {{api_token: {base64.b64encode(TOKEN.encode()).decode()}}}
        """)
    write(folder, "dag.yaml", dag_manifest("rendering", """
        - name: show
          command: [sh, -c]
          args: ['echo "day={{ ds }} who={{ params.who }} token={{ var.value.api_token }}"']
          env:
            - {name: CALL_WITH, value: 'Bearer {{ var.value.api_token }}'}
            - {name: DB_PASSWORD, value: 'plain-but-sensitive-name'}
            - {name: REGION, value: '{{ params.region }}'}
        """, extra="""
        params: {who: alice, region: eu-west-1}
        variablesFrom: [{secretRef: {name: creds}}]
        """))
    result = run(folder, "rendering")
    assert states(result) == {"show": "success"}

    with session() as s:  # the DB row: rendered, secrets masked
        row = repository.get_try(s, "rendering", result.run.run_id, "show", 1)
        stored = row.rendered_fields
    assert stored["command"] == ["sh", "-c"]
    assert stored["args"] == ['echo "day=2026-11-01 who=alice token=***"']
    assert stored["env"]["CALL_WITH"] == "Bearer ***"
    assert stored["env"]["DB_PASSWORD"] == "***"
    assert stored["env"]["REGION"] == "eu-west-1"
    assert stored["env"]["KUBEDAG_TASK_ID"] == "show"
    assert TOKEN not in repr(stored) and "plain-but-sensitive-name" not in repr(stored)

    local = local_catalog(folder)
    try:
        ti = local.catalog.task_instance("rendering", result.run.run_id, "show")
        assert ti_response(ti, "local").rendered_fields == stored  # the REST API's field
        services = Services(local.catalog, TokenAuth({"alice-token": "alice"}), Rbac({("alice", "*", "*")}))
        app = FastAPI()
        app.include_router(ui_router(services))
        page = TestClient(app).get(f"/ui/dags/rendering/runs/{result.run.run_id}/tasks/show",
                                   headers={"Authorization": "Bearer alice-token"})
    finally:
        local.close()
    assert page.status_code == 200, page.text
    assert "day=2026-11-01 who=alice token=***" in page.text
    assert "CALL_WITH=Bearer ***" in page.text and "REGION=eu-west-1" in page.text
    assert "not rendered yet" not in page.text
    assert TOKEN not in page.text

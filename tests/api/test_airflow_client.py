"""The official ``apache-airflow-client`` 3.x from PyPI, unmodified, drives a real ``kubedag standalone`` (its
scheduler running the DAGs as local processes, its REST API under uvicorn): list DAGs, pause/unpause, trigger
with conf and wait for success, list task instances, read a try's log (secrets masked), clear a failed task with
downstream and see it rerun, mark a task, create a backfill and watch it finish, read health."""

from __future__ import annotations

import json
import urllib.request

import airflow_client.client as ac
import pytest
from airflow_client.client.api.backfill_api import BackfillApi
from airflow_client.client.api.dag_api import DAGApi
from airflow_client.client.api.dag_run_api import DagRunApi
from airflow_client.client.api.import_error_api import ImportErrorApi
from airflow_client.client.api.monitor_api import MonitorApi
from airflow_client.client.api.task_instance_api import TaskInstanceApi
from airflow_client.client.api.variable_api import VariableApi
from airflow_client.client.models.backfill_post_body import BackfillPostBody
from airflow_client.client.models.clear_task_instances_body import ClearTaskInstancesBody
from airflow_client.client.models.clear_task_instances_body_task_ids_inner import ClearTaskInstancesBodyTaskIdsInner
from airflow_client.client.models.dag_patch_body import DAGPatchBody
from airflow_client.client.models.patch_task_instance_body import PatchTaskInstanceBody
from airflow_client.client.models.trigger_dag_run_post_body import TriggerDAGRunPostBody

from tests.api.conftest import wait_for


@pytest.fixture(scope="module")
def client(standalone):
    config = ac.Configuration(host=standalone.url, access_token=standalone.token)
    with ac.ApiClient(config) as api_client:
        yield api_client


def run_state(client, dag_id: str, run_id: str) -> str:  # noqa: ANN001
    return DagRunApi(client).get_dag_run(dag_id, run_id).state.value


def finished(client, dag_id: str, run_id: str) -> str | None:  # noqa: ANN001
    state = run_state(client, dag_id, run_id)
    return state if state in ("success", "failed") else None


def test_list_dags_pause_and_unpause(client):
    dags = DAGApi(client).get_dags()
    assert [d.dag_id for d in dags.dags] == ["daily", "flaky", "greet"]
    assert dags.total_entries == 3
    assert DAGApi(client).patch_dag("greet", DAGPatchBody(is_paused=True)).is_paused is True
    assert DAGApi(client).get_dag("greet").is_paused is True
    assert DAGApi(client).patch_dag("greet", DAGPatchBody(is_paused=False)).is_paused is False
    with pytest.raises(ac.ApiException) as missing:
        DAGApi(client).get_dag("nope")
    assert missing.value.status == 404


def test_trigger_with_conf_wait_for_success_list_task_instances_and_read_a_masked_log(client):
    run = DagRunApi(client).trigger_dag_run("greet", TriggerDAGRunPostBody(conf={"who": "airflow users"},
                                                                           logical_date=None))
    assert run.conf == {"who": "airflow users"} and run.state.value == "queued"
    assert wait_for(lambda: finished(client, "greet", run.dag_run_id), "the run to finish") == "success"
    tis = TaskInstanceApi(client).get_task_instances("greet", run.dag_run_id)
    assert [(t.task_id, t.state.value, t.try_number) for t in tis.task_instances] == [
        ("bye", "success", 1), ("hello", "success", 1)]
    log = TaskInstanceApi(client).get_log("greet", run.dag_run_id, "hello", 1)
    text = "\n".join(m.event for m in log.content.actual_instance)
    assert "hello airflow users" in text
    assert "sup3r-s3cret-value" not in text and "token is ***" in text
    runs = DagRunApi(client).get_dag_runs("greet", state=["success"])
    assert run.dag_run_id in [r.dag_run_id for r in runs.dag_runs]


def test_clear_a_failed_task_with_downstream_and_see_it_rerun_then_mark_a_task(client, standalone):
    run = DagRunApi(client).trigger_dag_run("flaky", TriggerDAGRunPostBody(logical_date=None))
    assert wait_for(lambda: finished(client, "flaky", run.dag_run_id), "the first attempt") == "failed"
    states = {t.task_id: t.state.value for t in
              TaskInstanceApi(client).get_task_instances("flaky", run.dag_run_id).task_instances}
    assert states == {"first": "failed", "after": "upstream_failed"}
    standalone.marker.write_text("ok")
    body = ClearTaskInstancesBody(dag_run_id=run.dag_run_id, task_ids=[ClearTaskInstancesBodyTaskIdsInner("first")],
                                  include_downstream=True,
                                  only_failed=False, dry_run=False)
    cleared = TaskInstanceApi(client).post_clear_task_instances("flaky", body)
    assert sorted(t.task_id for t in cleared.task_instances) == ["after", "first"]
    assert wait_for(lambda: finished(client, "flaky", run.dag_run_id), "the rerun") == "success"
    first = TaskInstanceApi(client).get_task_instance("flaky", run.dag_run_id, "first")
    assert (first.state.value, first.try_number) == ("success", 2)
    tries = TaskInstanceApi(client).get_task_instance_tries("flaky", run.dag_run_id, "first")
    assert [t.try_number for t in tries.task_instances] == [1, 2]
    marked = TaskInstanceApi(client).patch_task_instance("flaky", run.dag_run_id, "after",
                                                         PatchTaskInstanceBody(new_state="failed"))
    assert marked.task_instances[0].state.value == "failed"
    assert wait_for(lambda: finished(client, "flaky", run.dag_run_id), "the marked run") == "failed"


def test_create_a_backfill_and_watch_it_finish(client):
    DAGApi(client).patch_dag("daily", DAGPatchBody(is_paused=False))  # a paused DAG starts no run, as Airflow
    body = BackfillPostBody(dag_id="daily", from_date="2026-01-01T00:00:00Z", to_date="2026-01-03T00:00:00Z",
                            max_active_runs=2)
    backfill = BackfillApi(client).create_backfill(body)
    assert (backfill.dag_id, backfill.max_active_runs) == ("daily", 2)
    done = wait_for(lambda: BackfillApi(client).get_backfill(backfill.id).completed_at, "the backfill to finish")
    assert done is not None
    runs = DagRunApi(client).get_dag_runs("daily", run_type=["backfill"], order_by=["logical_date"])
    assert [(r.logical_date.day, r.state.value) for r in runs.dag_runs] == [(1, "success"), (2, "success"),
                                                                             (3, "success")]
    listed = BackfillApi(client).list_backfills("daily")
    assert [b.id for b in listed.backfills] == [backfill.id]


def test_health(client):
    health = MonitorApi(client).get_health()
    assert health.metadatabase.status == "healthy"
    assert health.scheduler.status == "healthy" and health.scheduler.latest_scheduler_heartbeat


def test_import_errors_and_no_secret_in_variables(client, standalone):
    errors = ImportErrorApi(client).get_import_errors()
    assert [e.filename.endswith("broken.yaml") for e in errors.import_errors] == [True]
    variables = VariableApi(client).get_variables()
    assert "sup3r-s3cret-value" not in json.dumps([v.to_dict() for v in variables.variables])


def test_no_response_holds_the_secret(client, standalone):
    """Every read endpoint of a DAG whose variable is a Secret, after a run that printed it: no answer holds it."""
    run = DagRunApi(client).trigger_dag_run("greet", TriggerDAGRunPostBody(conf={"who": "x"}, logical_date=None))
    wait_for(lambda: finished(client, "greet", run.dag_run_id), "the run to finish")
    base = f"/api/v2/dags/greet/dagRuns/{run.dag_run_id}"
    paths = ["/api/v2/dags", "/api/v2/dags/greet", "/api/v2/dags/greet/details", "/api/v2/dags/greet/tasks",
             "/api/v2/dags/greet/dagRuns", base, f"{base}/taskInstances", f"{base}/taskInstances/hello",
             f"{base}/taskInstances/hello/tries", f"{base}/taskInstances/hello/logs/1",
             f"{base}/taskInstances/~/xcomEntries", "/api/v2/variables", "/api/v2/variables/api_token",
             "/api/v2/connections", "/api/v2/pools", "/api/v2/importErrors", "/api/v1/dags/greet/dagRuns",
             "/api/v2/monitor/health", "/health"]
    for path in paths:
        request = urllib.request.Request(standalone.url + path, headers={"Authorization": f"Bearer {standalone.token}"})
        with urllib.request.urlopen(request) as response:
            body = response.read().decode()
        assert "sup3r-s3cret-value" not in body, path

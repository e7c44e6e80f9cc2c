"""XComs in templates: ti.xcom_pull through tries.render_try, fed from the metadata DB as executors do."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest

from kubedag.core import engine
from kubedag.core.spec import parse_dag
from kubedag.core.states import RunType
from kubedag.store import open_store, repository as repo
from kubedag.core.templating import TemplateError
from kubedag.core.tries import render_try
from kubedag.core.xcom import NO_XCOM, parse_xcom

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)

MANIFEST = {
    "apiVersion": "kubedag.io/v1alpha1",
    "kind": "DAG",
    "metadata": {"name": "etl"},
    "spec": {
        "defaults": {"image": "python:3.12-slim"},
        "tasks": [
            {"name": "extract", "command": ["extract"], "multipleOutputs": True},
            {"name": "count", "command": ["count"]},
            {"name": "load", "command": ["load"], "dependsOn": ["extract", "count"],
             "args": ["--rows", "{{ ti.xcom_pull(task_ids='extract', key='rows') }}"],
             "env": [{"name": "EXTRACT", "value": "{{ ti.xcom_pull('extract') }}"},
                     {"name": "PATH_ONLY", "value": "{{ ti.xcom_pull('extract')['path'] }}"},
                     {"name": "BOTH", "value": "{{ ti.xcom_pull(task_ids=['count', 'extract'], key='rows') }}"},
                     {"name": "TRY", "value": "{{ ti.try_number }}"}]},
        ],
    },
}


def make_dag(**task_fields):
    m = copy.deepcopy(MANIFEST)
    m["spec"]["tasks"][2].update(task_fields)
    return parse_dag(m)


RUN = engine.DagRun(
    dag_id="etl", run_id="manual__2026-11-01", run_type=RunType.MANUAL,
    logical_date=T0, data_interval_start=T0, data_interval_end=T0,
)


def test_render_try_pulls_xcoms_from_the_store(db_url):
    dag = make_dag()
    db, Session = open_store(db_url)
    try:
        with Session.begin() as s:
            repo.upsert_dag(s, "etl", spec={})
            repo.create_dag_run(s, dag_id="etl", run_id=RUN.run_id, run_type="manual", logical_date=T0)
            for t in ("extract", "count", "load"):
                repo.upsert_task_instance(s, "etl", RUN.run_id, t, state="running", try_number=1)
            # what the executor stores from each try's XCom file
            repo.set_xcoms(s, "etl", RUN.run_id, "extract", 1,
                           parse_xcom(b'{"rows": 3, "path": "s3://b/k"}', multiple_outputs=dag.tasks["extract"].multiple_outputs))
        with Session() as s:
            def pull(task_id, key):
                return repo.get_xcom(s, "etl", RUN.run_id, task_id, key, default=NO_XCOM)

            fields = render_try(dag, RUN, "load", 2, xcom_pull=pull)
    finally:
        db.dispose()
    assert fields.args == ["--rows", "3"]
    assert fields.env["EXTRACT"] == '{"rows": 3, "path": "s3://b/k"}'  # valid JSON for the command
    assert fields.env["PATH_ONLY"] == "s3://b/k"
    assert fields.env["BOTH"] == "[3]"  # count pushed nothing: only the values found
    assert fields.env["TRY"] == "2"


def test_pulling_before_anything_was_pushed_gives_none():
    # no provider (e.g. `tasks test`): nothing was pushed, as in a fresh Airflow run
    fields = render_try(make_dag(args=["{{ ti.xcom_pull('extract') }}",
                                       "{{ ti.xcom_pull('extract', default='none yet') }}"], env=[]), RUN, "load", 1)
    assert fields.args == ["None", "none yet"]


def test_pulling_a_task_not_in_the_dag_is_an_error_naming_it():
    calls = []
    dag = make_dag(args=["{{ ti.xcom_pull(task_ids='extrakt') }}"])
    with pytest.raises(TemplateError) as info:
        render_try(dag, RUN, "load", 1, xcom_pull=lambda t, k: calls.append(t) or NO_XCOM)
    assert str(info.value) == "args[0]: ti.xcom_pull: no task 'extrakt' in DAG 'etl'"
    assert calls == []


def test_provider_is_not_called_for_templates_without_xcom_pull():
    def pull(task_id, key):  # pragma: no cover - must not run
        raise AssertionError("pulled")

    fields = render_try(make_dag(args=["{{ ds }}"], env=[]), RUN, "load", 1, xcom_pull=pull)
    assert fields.args == ["2026-11-01"]


def test_existing_call_sites_still_work():
    fields = render_try(make_dag(args=["{{ ti.try_number }}"], env=[]), RUN, "load", 3)
    assert fields.args == ["3"] and fields.command == ["load"]

"""The one DAGRun manifest builder: scheduled runs, backfill runs, runs a trigger task creates, and the CLI's
``dags trigger``.

A DAGRun's name is a function of the DAG and the run id (:func:`kubedag.core.naming.run_name`), so creating the
same run twice answers 409 (it exists) and never makes a second run. Labels: :func:`kubedag.core.naming.run_labels`
(plus any ``labels`` given).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kubedag.core import naming as names
from kubedag.core import timetable

ANNOTATION_TRIGGERED_BY = "kubedag.io/triggered-by"
"""On a DAGRun a trigger task created: ``<namespace>/<DAGRun>/<task>/<try>`` of the triggering try."""


def owner_reference(kind: str, name: str, uid: str) -> dict[str, Any]:
    """A controlling owner reference to a kubedag object (``DAG``, ``Backfill``): deleting it deletes the run."""
    return {"apiVersion": names.API_VERSION, "kind": kind, "name": name, "uid": uid, "controller": True,
            "blockOwnerDeletion": True}


def dagrun_manifest(
    namespace: str,
    dag_name: str,
    run_id: str,
    run_type: str,
    logical_date: datetime,
    *,
    data_interval: timetable.DataInterval | None = None,
    conf: Mapping[str, Any] | None = None,
    owner: tuple[str, str, str | None] | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A DAGRun object (JSON-like dict) of DAG ``dag_name`` in ``namespace``.

    ``run_type``: ``scheduled`` | ``manual`` | ``backfill``; ``logical_date`` aware (written as UTC ISO 8601);
    ``data_interval``: written when given (else the controller computes it from the DAG's timetable, as Airflow
    does for a manual run); ``conf``: ``dag_run.conf`` (written when not None); ``owner``: ``(kind, name, uid)``
    of the controlling owner (skipped when the uid is unknown).
    """
    meta: dict[str, Any] = {"name": names.run_name(dag_name, run_id), "namespace": namespace,
                            "labels": {**names.run_labels(dag_name), **(labels or {})}}
    if annotations:
        meta["annotations"] = dict(annotations)
    if owner is not None and owner[2]:
        meta["ownerReferences"] = [owner_reference(owner[0], owner[1], owner[2])]
    spec: dict[str, Any] = {"dagName": dag_name, "runId": run_id, "runType": run_type,
                            "logicalDate": timetable.iso_utc(logical_date)}
    if data_interval is not None:
        spec["dataIntervalStart"] = timetable.iso_utc(data_interval.start)
        spec["dataIntervalEnd"] = timetable.iso_utc(data_interval.end)
    if conf is not None:
        spec["conf"] = dict(conf)
    return {"apiVersion": names.API_VERSION, "kind": "DAGRun", "metadata": meta, "spec": spec}


__all__ = ["ANNOTATION_TRIGGERED_BY", "dagrun_manifest", "owner_reference"]

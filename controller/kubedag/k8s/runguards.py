"""A DAGRun's identity on the cluster (issue 13): the checks the DAGRun reconciler (:mod:`kubedag.k8s.runs`) makes
before it opens a run.

* :func:`default_logical_date`: a new DAGRun without ``spec.logicalDate`` gets now, at microsecond precision,
  written in its spec (``creationTimestamp`` has whole seconds: two ``kubectl create`` in one second were one run).
* :func:`dagrun_exists`: whether the object holding a run id still exists (then a second object with that run id is
  refused; else the run id starts afresh).
* :func:`refused`: a DAGRun failed before it ran stays failed until its spec changes.
* :func:`owned_by`: a pod of a deleted DAGRun of the same name is not the new one's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from kubedag.app.ports import RunObject
from kubedag.core import naming as names
from kubedag.core import timetable
from kubedag.core.spec.loader import format_loc
from kubedag.k8s.client import ApiError, KubeClient
from kubedag.k8s.informers import DAGRUNS, Cache, newer
from kubedag.k8s.workqueue import Key

REFUSED = frozenset({"RunIdTaken", "DuplicateLogicalDate", "InvalidSpec", "DAGDeleted"})
"""Reasons of a run failed before it ran (or ended with its DAG): it stays failed until its spec changes (a new
``metadata.generation``)."""


def refused(body: Mapping[str, Any]) -> bool:
    """Whether a DAGRun was failed for one of the :data:`REFUSED` reasons at its current generation."""
    status = body.get("status") or {}
    generation = (body.get("metadata") or {}).get("generation")
    return status.get("phase") == "failed" and any(
        c.get("reason") in REFUSED and c.get("observedGeneration") == generation for c in status.get("conditions") or [])


def owned_by(obj: Mapping[str, Any], uid: str | None) -> bool:
    """Whether a pod belongs to the DAGRun of ``uid`` (a pod with no DAGRun owner, or an unknown uid, counts as
    its): a pod of a deleted DAGRun with the same name is not the new one's."""
    owners = [o for o in (obj.get("metadata") or {}).get("ownerReferences") or [] if o.get("kind") == "DAGRun"]
    return not uid or not owners or any(o.get("uid") == uid for o in owners)


async def default_logical_date(client: KubeClient, cache: Cache, key: Key, body: Mapping[str, Any],
                               now: datetime) -> dict[str, Any] | None:
    """Write ``spec.logicalDate`` = ``now`` (UTC, microseconds) on a new DAGRun that has none, as ``airflow dags
    trigger`` takes ``timezone.utcnow()``: two runs created in the same second get distinct logical dates and run ids
    (``manual__<logical date>``), and the date stays fixed in the object. A merge patch carrying the object's
    ``resourceVersion``; returns the updated object (also put in ``cache``), None when the object changed or went
    meanwhile (to be looked at again)."""
    meta = body.get("metadata") or {}
    patch = {"metadata": {"resourceVersion": meta.get("resourceVersion")},
             "spec": {"logicalDate": timetable.iso_utc(now)}}
    try:
        updated = await client.patch(names.API_VERSION, DAGRUNS, key[0], key[1], patch)
    except ApiError as exc:
        if exc.status in (404, 409):
            return None
        raise
    if newer(cache.runs.get(key), updated):
        cache.runs[key] = updated
    return updated


async def dagrun_exists(client: KubeClient, cache: Cache, namespace: str, holder: RunObject) -> bool:
    """Whether the DAGRun ``holder`` (name and uid) still exists: in the cache, else as the API server answers (a
    DAGRun of the same name with another uid is another object)."""
    cached = cache.runs.get((namespace, holder.name))
    if cached is not None and (cached.get("metadata") or {}).get("uid") == holder.uid:
        return True
    found = await client.get(names.API_VERSION, DAGRUNS, namespace, holder.name) if holder.name else None
    return found is not None and (found.get("metadata") or {}).get("uid") == holder.uid


def invalid_spec_message(exc: ValueError) -> str:
    """The message of a DAGRun the models refuse: ``spec.<field>: <rule>`` per problem (``status.`` for a status
    the controller cannot read), as ``kubedag dags validate`` words a DAG's; another error's text on one line."""
    if not isinstance(exc, ValidationError):
        return " ".join(str(exc).split())
    root = "status" if exc.title == "DAGRunStatus" else "spec"
    parts = []
    for err in exc.errors(include_url=False):
        where = format_loc((root, *err["loc"]))
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


__all__ = ["REFUSED", "dagrun_exists", "default_logical_date", "invalid_spec_message", "owned_by", "refused"]

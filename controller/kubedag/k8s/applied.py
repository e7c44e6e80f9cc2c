"""Fields the API server dropped: typos in a manifest applied with ``kubectl apply``.

A CRD's structural schema makes the API server prune fields it does not declare. ``kubectl apply`` (whose default
``--validate=strict`` asks for ``fieldValidation=Strict``) is refused with the unknown field named, but a client that
does not ask (``--validate=false``, most client libraries, whose default is ``Warn``) gets the object stored without
the field: ``schedul: "@daily"`` silently leaves a DAG unscheduled (issue 13). The controller sees only the pruned
object, but ``kubectl apply`` keeps what the user wrote in the ``kubectl.kubernetes.io/last-applied-configuration``
annotation: :func:`unknown_fields` validates that text with the same models and reports the fields they do not know,
so the object is reported invalid, as a strict API server would have refused it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from kubedag.core.spec.dagrun import DAGRunManifest
from kubedag.core.spec.loader import field_suggestion, format_loc

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
"""The annotation in which ``kubectl apply`` (client-side) keeps the manifest as written."""
DROPPED = "dropped by the API server, which does not know it"


def last_applied(body: Mapping[str, Any]) -> str | None:
    """The object's ``last-applied-configuration`` annotation, or None."""
    return ((body.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)


def unknown_fields(body: Mapping[str, Any], problems: Callable[[dict[str, Any]], list[tuple[str, str]]]) -> list[str]:
    """``path: message`` of each unknown field under ``spec`` in the manifest ``kubectl apply`` recorded on
    ``body`` (none without the annotation, or when it is not JSON of the same kind). ``problems(manifest)``: the
    ``(path, message)`` problems the models find in a manifest; only unknown fields (``unknown field ...``) are kept:
    the others are in the stored object too, and reported from it."""
    text = last_applied(body)
    if not text:
        return []
    try:
        applied = json.loads(text)
    except ValueError:
        return []
    if not isinstance(applied, dict) or applied.get("kind") != body.get("kind"):
        return []
    applied["metadata"] = dict(body.get("metadata") or {})  # the stored metadata: only spec is checked here
    return [f"{path}: {message}; {DROPPED}" for path, message in problems(applied)
            if path.startswith("spec.") and message.startswith("unknown field")]


def dagrun_problems(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """The unknown fields :class:`kubedag.core.spec.dagrun.DAGRunManifest` finds in a DAGRun manifest, as
    ``(path, "unknown field (did you mean ...?)")``."""
    try:
        DAGRunManifest.model_validate(manifest)
    except ValidationError as exc:
        out = []
        for err in exc.errors(include_url=False):
            if err["type"] == "extra_forbidden":
                hint = field_suggestion(DAGRunManifest, tuple(err["loc"]))
                out.append((format_loc(tuple(err["loc"])), "unknown field" + (f" (did you mean {hint!r}?)" if hint else "")))
        return out
    return []


__all__ = ["DROPPED", "LAST_APPLIED", "dagrun_problems", "last_applied", "unknown_fields"]

"""The errors of :mod:`kubedag.k8s.kubeapi` (re-exported there), and the reading of an ``ApiException``'s
``Status`` body: each is one line meant for a person."""

from __future__ import annotations

import json
import re
from typing import Any


class KubeError(Exception):
    """A Kubernetes failure, with a one-line message for the user."""


class Unreachable(KubeError):
    """The API server cannot be reached, or answered with a server error (5xx): nothing the request did wrong."""


class Refused(KubeError):
    """The API server refused this client's credentials (401) or the permission (403; the message names it)."""


class NotFound(KubeError):
    """The object does not exist (404 for an object of a known kind)."""


class AlreadyExists(KubeError):
    """An object with that name exists already (409 on create)."""


class Conflict(KubeError):
    """The object changed since it was read (409 on an update carrying a stale ``resourceVersion``)."""


class CRDsNotInstalled(KubeError):
    """The API server does not serve ``dags.kubedag.io`` / ``dagruns.kubedag.io``."""


object_address = re.compile(r"^<[^>]*>:\s*")


def status_message(exc: Any) -> tuple[str, dict[str, Any]]:
    """The ``message`` and ``details`` of the Status in an ApiException's body (else its raw text)."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        status = json.loads(body) if body else {}
    except ValueError:
        return " ".join(str(body).split())[:300] or str(exc.reason), {}
    if not isinstance(status, dict):
        return str(exc.reason), {}
    return str(status.get("message") or exc.reason or ""), status.get("details") or {}


def status_reason(exc: Any) -> str | None:
    """The ``reason`` of the Status in an ApiException's body (``AlreadyExists``, ``Conflict``...), if any."""
    body = exc.body.decode("utf-8", errors="replace") if isinstance(exc.body, bytes) else exc.body
    try:
        status = json.loads(body) if body else {}
    except ValueError:
        return None
    return status.get("reason") if isinstance(status, dict) else None


__all__ = ["AlreadyExists", "CRDsNotInstalled", "Conflict", "KubeError", "NotFound", "Refused", "Unreachable",
           "object_address", "status_message", "status_reason"]

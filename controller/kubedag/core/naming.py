"""Deterministic names and labels of the Kubernetes objects kubedag creates (pure, no I/O).

Every name is a function of what it names, so creating an object twice is harmless (the second create
gets 409 AlreadyExists) and a controller restarted at any point finds, rather than duplicates, what it
made before:

* a DAGRun is named from its DAG and run id: :func:`run_name`;
* a try's pod from its DAG, DAGRun, task and try number (and, for a rescheduled sensor, its poke):
  :func:`pod_name`.

Both are DNS-1123 labels of at most 63 characters (so the run name also fits a label value):
a readable prefix cut to fit, then ``-`` and 5 characters of a SHA-256 of the full identity, so
that ids that read alike after slugging or cutting still get different names.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone

from kubedag.core.spec.dagrun import POD_SUFFIX_LENGTH, pod_prefix

GROUP = "kubedag.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

LABEL_DAG = "kubedag.io/dag"
LABEL_RUN = "kubedag.io/run"
LABEL_TASK = "kubedag.io/task"
LABEL_TRY = "kubedag.io/try"
LABEL_POKE = "kubedag.io/poke"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "kubedag"

MAX_NAME = 63
_NOT_NAME = re.compile(r"[^a-z0-9]+")
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""Kubernetes' own generateName alphabet (no vowels, no 0/1/3): suffixes never spell words."""


def short_hash(*parts: str, length: int = POD_SUFFIX_LENGTH) -> str:
    """``length`` characters of SHA-256 over ``parts`` (joined with NUL), in Kubernetes' name alphabet."""
    digest = int.from_bytes(hashlib.sha256("\0".join(parts).encode()).digest(), "big")
    out = []
    for _ in range(length):
        digest, i = divmod(digest, len(_ALPHABET))
        out.append(_ALPHABET[i])
    return "".join(out)


def slug(text: str) -> str:
    """``text`` lowercased with every run of other characters than ``[a-z0-9]`` turned into one ``-``."""
    return _NOT_NAME.sub("-", text.lower()).strip("-")


def _run_slug(run_id: str) -> str:
    """``scheduled__2026-11-01T00:00:00+00:00`` -> ``scheduled-20261101t000000``; other ids: :func:`slug`."""
    kind, sep, rest = run_id.partition("__")
    if sep:
        try:
            when = datetime.fromisoformat(rest)
        except ValueError:
            when = None
        if when is not None and when.tzinfo is not None:
            return f"{slug(kind)}-{when.astimezone(timezone.utc):%Y%m%dt%H%M%S}"
    return slug(run_id)


def run_name(dag_id: str, run_id: str) -> str:
    """The DAGRun object name of run ``run_id`` of DAG ``dag_id``: ``<dag>-<run id slug>-<hash>``, at most 63.

    e.g. ``supermarket-promotions-scheduled-20261101t000000-x7k2q`` for
    ``scheduled__2026-11-01T00:00:00+00:00``; cut before the hash when longer. The hash covers the exact
    ``(dag_id, run_id)``, so two runs never share a name.
    """
    prefix = f"{dag_id}-{_run_slug(run_id)}"[: MAX_NAME - POD_SUFFIX_LENGTH - 1].rstrip("-")
    return f"{prefix}-{short_hash(dag_id, run_id)}"


def pod_suffix(run: str, task_id: str, try_number: int, poke: int = 0) -> str:
    """The 5-character hash ending a try's pod name (kept as ``p`` in the DAGRun status); ``poke`` > 0 (the
    n-th rescheduled poke of a ``reschedule``-mode sensor's try) is hashed in too."""
    if poke:
        return short_hash(run, task_id, str(try_number), f"poke {poke}")
    return short_hash(run, task_id, str(try_number))


MAX_POKE_LOOKUP = 100_000
"""How far :func:`poke_from_suffix` searches."""


def poke_from_suffix(run: str, task_id: str, try_number: int, suffix: str | None) -> int:
    """The poke whose pod has ``suffix`` (inverse of :func:`pod_suffix`; 0 when none matches, or for None):
    how a restarted controller finds the current poke of a rescheduled sensor from the DAGRun status."""
    if not suffix:
        return 0
    for poke in range(MAX_POKE_LOOKUP):
        if pod_suffix(run, task_id, try_number, poke) == suffix:
            return poke
    return 0


def pod_name(dag_id: str, run: str, task_id: str, try_number: int, poke: int = 0) -> str:
    """The pod of try ``try_number`` of ``task_id`` in DAGRun ``run`` of DAG ``dag_id``:
    :func:`~kubedag.core.spec.dagrun.pod_prefix` (``<dag>-<task slug>-<try>-``, at most 58) plus
    :func:`pod_suffix`; at most 63 characters, e.g. ``supermarket-promotions-copy-to-raw-supermarket-1-1-f94dx``.

    A ``reschedule``-mode sensor runs one pod per poke within the same try number (Airflow keeps the try
    number across reschedules): ``poke`` (0 for the first, then 1, 2, ...) goes into the hash, so each poke's
    pod has its own deterministic name with the same readable prefix."""
    return pod_prefix(dag_id, task_id, try_number) + pod_suffix(run, task_id, try_number, poke)


def run_labels(dag_id: str) -> dict[str, str]:
    """Labels of a DAGRun object the controller creates."""
    return {LABEL_DAG: dag_id, LABEL_MANAGED_BY: MANAGED_BY}


def pod_labels(dag_id: str, run: str, task_id: str, try_number: int, poke: int = 0) -> dict[str, str]:
    """Labels of a try's pod: kubedag's own keys (the controller lists pods by ``kubedag.io/run``; ``kubedag.io/poke``
    only for a rescheduled sensor's later pokes) and the standard ``app.kubernetes.io/*`` ones."""
    extra = {LABEL_POKE: str(poke)} if poke else {}
    return {
        **extra,
        LABEL_DAG: dag_id,
        LABEL_RUN: run,
        LABEL_TASK: task_id,
        LABEL_TRY: str(try_number),
        "app.kubernetes.io/name": "kubedag-task",
        "app.kubernetes.io/instance": run,
        "app.kubernetes.io/component": "task",
        "app.kubernetes.io/part-of": "kubedag",
        LABEL_MANAGED_BY: MANAGED_BY,
    }

"""XComs: what a try hands to its downstream tasks, read from a small JSON file it writes.

A try learns where to write from ``$KUBEDAG_XCOM_PATH`` (:data:`XCOM_PATH_ENV`). In a pod that is
:data:`POD_XCOM_FILE`, which is also the container's ``terminationMessagePath``: when the container ends,
the kubelet copies the file into the container status, so the controller reads the value from the pod
without exec or a shared volume. The kubelet keeps at most :data:`MAX_XCOM_BYTES` of it, so kubedag
applies the same limit locally: a DAG behaves the same under both executors.

The file holds one JSON value, Airflow's ``return_value`` (what a ``@task`` function returns). With
``multipleOutputs`` a JSON object also pushes each top-level key, as Airflow's ``multiple_outputs``.
:func:`parse_xcom` turns the file's content into the XComs to store (key -> JSON value). Pure: no I/O.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "XCOM_PATH_ENV",
    "POD_XCOM_DIR",
    "POD_XCOM_FILE",
    "MAX_XCOM_BYTES",
    "MAX_KEY_LENGTH",
    "RETURN_KEY",
    "NO_XCOM",
    "XComError",
    "parse_xcom",
]

XCOM_PATH_ENV = "KUBEDAG_XCOM_PATH"
"""The environment variable telling a try where to write its XCom (a file path)."""
POD_XCOM_DIR = "/kubedag/xcom"
"""The directory of :data:`POD_XCOM_FILE` in a task's container (an ``emptyDir``)."""
POD_XCOM_FILE = "/kubedag/xcom/return.json"
"""Where a pod's try writes its XCom: the container's ``terminationMessagePath``."""
MAX_XCOM_BYTES = 4096
"""Kubernetes' limit on one container's termination message (the kubelet truncates beyond it); the same
limit applies to local tries."""
MAX_KEY_LENGTH = 512
"""Longest XCom key, as Airflow's ``xcom.key`` column (``String(512)``)."""
RETURN_KEY = "return_value"
"""Airflow's ``XCOM_RETURN_KEY``: the key of a task's return value."""


class _NoXCom:
    """The type of :data:`NO_XCOM`."""

    _instance: _NoXCom | None = None

    def __new__(cls) -> _NoXCom:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_XCOM"

    def __bool__(self) -> bool:
        return False


NO_XCOM: Any = _NoXCom()
"""Sentinel for "this task pushed no XCom under that key", distinct from a stored JSON ``null``
(e.g. ``repository.get_xcom(..., default=NO_XCOM)``)."""


class XComError(ValueError):
    """A try's XCom file cannot be used; the message says why and what to do."""


def _reject_constant(name: str) -> Any:
    raise XComError(f"XCom return value is not valid JSON: {name} is not allowed (JSON has no NaN or Infinity)")


def parse_xcom(data: bytes | str, *, multiple_outputs: bool) -> dict[str, Any]:
    """The XComs a try pushes, from the content of its XCom file: key -> JSON value (dicts, lists, str,
    int, float, bool, None).

    * Empty or whitespace-only content pushes nothing (``{}``): the try wrote no XCom.
    * JSON ``null`` pushes nothing either, as a task returning ``None`` pushes no XCom in Airflow 2.10
      (``TaskInstance._execute_task``: ``if xcom_value is not None``... push).
    * Any other JSON value is pushed as ``return_value``.
    * With ``multiple_outputs``, the value must be a JSON object; each top-level key is pushed too, and
      ``return_value`` is the whole object (Airflow's ``DecoratedOperator._handle_output``, after which the
      return value is pushed under ``return_value``, so an object key of that name is overwritten).

    Raises:
        XComError: if the content is larger than :data:`MAX_XCOM_BYTES` (measured in bytes, UTF-8), is not
            UTF-8, is not valid JSON (the message gives line and column, and says when the content looks cut
            at the limit, as the kubelet truncates a longer termination message), or with ``multiple_outputs`` is not
            a JSON object or has a key that is empty or longer than :data:`MAX_KEY_LENGTH`.
    """
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_XCOM_BYTES:
        raise XComError(
            f"XCom return value is {len(raw)} bytes, more than the {MAX_XCOM_BYTES} allowed "
            f"(Kubernetes' termination message limit): push a reference (a path, a URL) instead"
        )
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise XComError(f"XCom return value is not UTF-8 text (byte {exc.start} is invalid)") from None
    else:
        text = data
    text = text.lstrip("\ufeff")
    if not text.strip():
        return {}
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        hint = ""
        if len(raw) == MAX_XCOM_BYTES:
            # The kubelet cuts a termination message at the limit, so an oversized file arrives truncated.
            hint = (
                f" (it is exactly {MAX_XCOM_BYTES} bytes, so it was probably cut at Kubernetes' termination "
                f"message limit: push a reference (a path, a URL) instead)"
            )
        raise XComError(
            f"XCom return value is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}{hint}"
        ) from None
    if value is None:
        return {}
    if not multiple_outputs:
        return {RETURN_KEY: value}
    if not isinstance(value, dict):
        raise XComError(
            f"multipleOutputs is set, so the XCom return value must be a JSON object, got {_json_type(value)}"
        )
    for key in value:
        if not key or len(key) > MAX_KEY_LENGTH:
            raise XComError(
                f"multipleOutputs: XCom key {key[:40]!r} must be 1 to {MAX_KEY_LENGTH} characters long"
            )
    return {**value, RETURN_KEY: value}


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type (``an array``, ``a string`` ...)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__

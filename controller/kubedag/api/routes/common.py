"""What every router shares: the injected services, paging, ordering and Airflow's ``*_pattern`` filters."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from fastapi import Query, Request

from kubedag.api.services import ApiServices
from kubedag.app.operations.ports import InvalidRequest, NotFound

T = TypeVar("T")


def services(request: Request) -> ApiServices:
    """FastAPI dependency: the server's :class:`~kubedag.api.services.ApiServices` as the caller sees them (its
    catalog scoped to the identity :func:`kubedag.api.auth.authorize` found; public endpoints: unscoped)."""
    svc: ApiServices = request.app.state.services
    who = getattr(request.state, "identity", None)
    return svc.for_identity(who) if who is not None else svc


LIMIT = Query(50, ge=0, description="Entries per page (Airflow's default 50).")
OFFSET = Query(0, ge=0, description="Entries skipped.")


def page(items: Sequence[T], limit: int, offset: int) -> list[T]:
    """``items[offset:offset + limit]``."""
    return list(items[offset:offset + limit])


def first(items: Iterable[T], wanted: Callable[[T], bool], missing: str) -> T:
    """The first of ``items`` that is ``wanted``. Raises NotFound(``missing``) when none is."""
    for item in items:
        if wanted(item):
            return item
    raise NotFound(missing)


def matches(value: str | None, pattern: str | None) -> bool:
    """Airflow's ``*_pattern`` filter: a case-insensitive substring match where ``%`` is any sequence and ``_``
    any one character, ``|`` separates alternatives and ``~`` matches everything; no pattern matches all."""
    if pattern is None or pattern == "~":
        return True
    if value is None:
        return False
    for alternative in pattern.split("|"):
        regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in alternative)
        if re.search(regex, value, re.IGNORECASE | re.DOTALL):
            return True
    return False


def order(items: list[T], order_by: Sequence[str] | str | None, fields: dict[str, Callable[[T], Any]],
          default: str) -> list[T]:
    """``items`` sorted by ``order_by`` (Airflow's: field names, ``-`` first for descending; several: the first
    decides, the next break ties). None sorts first. Raises InvalidRequest naming an unknown field."""
    keys = [order_by] if isinstance(order_by, str) else list(order_by or [default])
    out = list(items)
    for key in reversed(keys):
        name = key.lstrip("-")
        if name not in fields:
            raise InvalidRequest(f"order_by: {name!r} is not one of {', '.join(sorted(fields))}")
        get = fields[name]
        out.sort(key=lambda item: (get(item) is not None, get(item)), reverse=key.startswith("-"))
    return out

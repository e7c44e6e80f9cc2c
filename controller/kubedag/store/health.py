"""Whether the metadata DB is reachable, for readiness probes (:mod:`kubedag.http.probes`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def db_unreachable(sessionmaker: Any) -> str | None:
    """None when ``SELECT 1`` succeeds on a connection of ``sessionmaker`` (a SQLAlchemy ``sessionmaker``), else a
    one-line reason: ``metadata DB unreachable: <error class>: <first line of the driver's message>`` (drivers
    name the host and port, never the password)."""
    try:
        with sessionmaker() as session:
            session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        first = detail[0][:200] if detail else ""
        return f"metadata DB unreachable: {type(getattr(exc, 'orig', None) or exc).__name__}: {first}"
    return None


__all__ = ["db_unreachable"]

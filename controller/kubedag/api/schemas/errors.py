"""Airflow 3's error body: ``{"detail": "<message>"}`` (``HTTPExceptionResponse``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class HTTPExceptionResponse(BaseModel):
    detail: str | dict[str, Any]

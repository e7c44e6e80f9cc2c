"""Helpers shared by the sensor tests."""

from __future__ import annotations

from typing import Any

from kubedag.core.spec.models import ExternalTaskCheck, SensorSpec


def sensor(**fields: Any) -> SensorSpec:
    """A SensorSpec from manifest (camelCase) fields, validated as the loader does."""
    return SensorSpec.model_validate(fields)


def external(**fields: Any) -> ExternalTaskCheck:
    """An ExternalTaskCheck from manifest (camelCase) fields."""
    return ExternalTaskCheck.model_validate({"dag": "load-data", **fields})

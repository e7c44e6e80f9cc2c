"""Manifest durations: see :mod:`kubedag.core.durations` (kept here so ``kubedag.core.spec.durations`` imports work)."""

from kubedag.core.durations import format_duration, parse_duration

__all__ = ["format_duration", "parse_duration"]

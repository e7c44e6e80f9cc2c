"""Sensors' rules (Airflow's ``BaseSensorOperator`` and its ``FileSensor``, ``HttpSensor``, ``ExternalTaskSensor``),
pure: no I/O.

* :mod:`kubedag.core.sensors.poke`: :func:`next_poke_interval` (Airflow's ``_get_next_poke_interval``, for
  ``mode: reschedule``) and :func:`poke_command`, the ``/bin/sh`` loop that pokes in one pod (``mode: poke``);
* :mod:`kubedag.core.sensors.command`: :func:`check_argv`, the command line of a built-in ``file``/``http``
  check (``python -m kubedag.sensors ...``, whose checks are in :mod:`kubedag.http.checks`), and its exit codes;
* :mod:`kubedag.core.sensors.external`: the ``externalTask`` sensor's rules (which dates, which outcome); its one
  DB read is :func:`kubedag.store.external.external_states`.

Importing this package imports neither pydantic nor SQLAlchemy (the check program starts fast).
"""

from kubedag.core.sensors.command import ERROR, MET, SKIPPED, USAGE, check_argv
from kubedag.core.sensors.external import (
    ExternalOutcome,
    external_check_problems,
    external_logical_dates,
    external_outcome,
    external_summary,
    parse_logical_date,
)
from kubedag.core.sensors.poke import NOT_MET, next_poke_interval, poke_command, reschedule_poke_count

__all__ = [
    "ERROR",
    "MET",
    "NOT_MET",
    "SKIPPED",
    "USAGE",
    "ExternalOutcome",
    "check_argv",
    "external_check_problems",
    "external_logical_dates",
    "external_outcome",
    "external_summary",
    "next_poke_interval",
    "parse_logical_date",
    "poke_command",
    "reschedule_poke_count",
]

"""Sensors (Airflow's ``BaseSensorOperator`` and its ``FileSensor``, ``HttpSensor``, ``ExternalTaskSensor``).

A sensor's check exits 0 when met, 75 (``SENSOR_NOT_MET_EXIT_CODE``) when not met yet, anything else on failure.

* :mod:`kubedag.sensors.poke`: :func:`next_poke_interval` (Airflow's ``_get_next_poke_interval``, for
  ``mode: reschedule``) and :func:`poke_command`, the ``/bin/sh`` loop that pokes in one pod (``mode: poke``);
* :mod:`kubedag.sensors.checks`: the built-in ``file`` and ``http`` checks, a program run as
  ``python -m kubedag.sensors file|http ...``, and :func:`check_argv`, its command line for a sensor;
* :mod:`kubedag.sensors.external`: the ``externalTask`` sensor, evaluated against the metadata DB.

Importing this package imports neither pydantic nor SQLAlchemy (the check program starts fast).
"""

from kubedag.sensors.checks import CheckResult, check_argv, file_check, http_check, json_equal
from kubedag.sensors.external import (
    ExternalOutcome,
    external_check_problems,
    external_logical_dates,
    external_outcome,
    external_states,
    external_summary,
)
from kubedag.sensors.poke import NOT_MET, next_poke_interval, poke_command, reschedule_poke_count

__all__ = [
    "NOT_MET",
    "CheckResult",
    "ExternalOutcome",
    "check_argv",
    "external_check_problems",
    "external_logical_dates",
    "external_outcome",
    "external_states",
    "external_summary",
    "file_check",
    "http_check",
    "json_equal",
    "next_poke_interval",
    "poke_command",
    "reschedule_poke_count",
]

"""The checks of an ``externalTask`` sensor's state lists that need more than one field (Airflow 2.10's
``ExternalTaskSensor.__init__``), used when a manifest is validated (:mod:`kubedag.core.spec.loader`) and
before the sensor is evaluated (:mod:`kubedag.core.sensors.external`). Imports no pydantic (the sensor check
program starts fast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubedag.core.states import DagRunState, TaskInstanceState

if TYPE_CHECKING:
    from kubedag.core.spec.models import ExternalTaskCheck

_FIELD = "sensor.externalTask"
_LISTS = (("allowed_states", "allowedStates"), ("failed_states", "failedStates"), ("skipped_states", "skippedStates"))


def external_check_problems(check: ExternalTaskCheck) -> list[str]:
    """What is wrong with the check's state lists, as messages naming the field (empty when nothing is).

    Airflow's ``ExternalTaskSensor.__init__``: with ``task`` every state must be a task instance state
    (``success``, ``failed``, ``skipped``, ``upstream_failed``, ``none``, ...), without it a DAG run state
    (``queued``, ``running``, ``success``, ``failed``); no state may be in two of the lists.
    """
    if check.task is not None:
        valid, what = [s.value for s in TaskInstanceState], "a task instance state"
    else:
        valid, what = [s.value for s in DagRunState], "a DAG run state (no task is set)"
    problems: list[str] = []
    seen: dict[str, str] = {}
    for attr, name in _LISTS:
        for i, state in enumerate(getattr(check, attr)):
            if state not in valid:
                problems.append(f"{_FIELD}.{name}[{i}]: {state!r} is not {what}; expected one of {', '.join(valid)}")
            if state in seen:
                problems.append(f"{_FIELD}.{name}[{i}]: {state!r} is already in {seen[state]}")
            else:
                seen[state] = f"{_FIELD}.{name}"
    return problems

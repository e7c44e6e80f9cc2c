"""schemathesis against the ``/openapi.json`` of a real ``kubedag standalone``: generated requests to every
endpoint (a few examples each, bounded) get no 5xx, only documented status codes and content types, and bodies
that match the documented response schemas."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 10
"""Generated requests per endpoint (bounded: the suite runs on a shared machine)."""


def test_no_server_error_and_no_schema_violation(standalone):
    schema = schemathesis.openapi.from_url(f"{standalone.url}/openapi.json")
    headers = {"Authorization": f"Bearer {standalone.token}"}
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case):  # noqa: ANN001, ANN202
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected per operation, reported below
            failures[operation.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{label}: {text}" for label, text in failures.items())

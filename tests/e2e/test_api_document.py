"""The OpenAPI document of the Flow callouts and the member API (infra/salesforce/openapi.yaml) against the running
stack: requests generated from it by schemathesis never get a 5xx, and every answer matches the document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from infra.local.stack import Stack

DOCUMENT = Path(__file__).resolve().parents[2] / "infra" / "salesforce" / "openapi.yaml"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
EXAMPLES = 60  # per operation


def answered(operation: Any, base_url: str, headers: dict[str, str]) -> set[int]:
    """Run the operation's generated requests against the stack, checking each answer; the statuses seen."""
    seen: set[int] = set()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def call(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        seen.add(response.status_code)
        case.validate_response(response, checks=CHECKS)

    call()
    return seen


def test_every_answer_matches_the_document(stack: Stack) -> None:
    schema = schemathesis.openapi.from_path(DOCUMENT)
    headers = {"X-Loyalty-Secret": stack.secrets["SALESFORCE_CALLOUT_SECRET"]}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == {
        "POST /webhooks/salesforce/flow",
        "GET /members/{memberId}",
        "GET /members",
        "GET /members/{memberId}/rewards",
        "POST /members/{memberId}/redemptions",
        "GET /members/{memberId}/redemptions",
        "DELETE /members/{memberId}/redemptions/{redemptionId}",
        "GET /kpis",
    }
    statuses = {f"{op.method.upper()} {op.path}": answered(op, stack.gateway_url, headers) for op in operations}
    # The generated requests reached the handlers (a 4xx that names the problem, or an answer), not only routing
    assert statuses["POST /webhooks/salesforce/flow"] & {400, 403}
    assert statuses["GET /members/{memberId}"] == {404}
    assert statuses["GET /members/{memberId}/rewards"] == {404}
    assert statuses["POST /members/{memberId}/redemptions"] & {400, 404}
    assert statuses["DELETE /members/{memberId}/redemptions/{redemptionId}"] == {404}
    assert statuses["GET /kpis"] and statuses["GET /kpis"] <= {200, 400}  # the figures, or a range it refuses

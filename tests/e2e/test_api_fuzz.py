"""Every route of the HTTP API, fuzzed from its own OpenAPI schema (schemathesis's generators,
property-based) against the running stack, as the admin of a tenant of its own: no input, however odd, gets a 5xx, and every 4xx
says what was wrong."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.e2e.conftest import KEYS

EXPLAINED_BY_STATUS = {401, 403, 404, 405, 409, 413, 429}  # the status itself is the explanation
EXAMPLES = settings(max_examples=12, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


def check(case) -> None:
    response = case.call(headers={"X-Api-Key": KEYS["fuzz_admin"]}, timeout=30)
    where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    assert response.status_code < 500, where
    if 400 <= response.status_code < 500 and response.status_code not in EXPLAINED_BY_STATUS:
        body = response.json()
        # FastAPI's {"detail": ...}, or the ingest route's per-event results with their field errors.
        problems = body.get("detail") or [e for r in body.get("results", []) for e in r.get("errors", [])]
        assert problems, where
        if response.status_code == 422 and isinstance(problems, list):
            assert all(item.get("loc") is not None and item.get("msg") for item in problems), where  # field and what


def test_no_input_makes_the_api_fail_and_every_4xx_names_the_problem(stack):
    schema = schemathesis.openapi.from_url(f"{stack.api_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30  # every route (the isolation test keeps the list complete)
    for operation in operations:
        @EXAMPLES
        @given(case=operation.as_strategy())
        def fuzz(case) -> None:
            check(case)

        fuzz()

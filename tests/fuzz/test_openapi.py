"""schemathesis against each service's OpenAPI, live, with real PostgreSQL and Kafka behind it.

Every operation is fuzzed with positive and negative data. No response may be a 5xx; every
response must match the documented status codes, content types and schemas; negative data
must be rejected. At least MIN_CASES generated cases per service, counted.
"""

from __future__ import annotations

import pytest

from claimflow_devstack.paths import example_plans_dir

from .conftest import API_KEY, StartApi
from .openapi_fuzz import fuzz_api

MIN_CASES = 1000

# service -> (cases per operation and mode, extra environment). The budgets put each service
# just over MIN_CASES; operations without inputs add only a case or two each.
# The real limits would answer most cases with 429 (a budget spent, or a client throttled for
# the fuzzer's unauthenticated cases); the limiters' own behaviour is tested with the services.
UNLIMITED = {"CLAIMFLOW_AUTH_FAILURE_LIMIT": "1000000/minute"}
SERVICES = {
    "intake": (
        60,
        {
            **UNLIMITED,
            "CLAIMFLOW_SUBMISSION_RATE_LIMIT": "1000000/minute",
            "CLAIMFLOW_IMPORT_RATE_LIMIT": "1000000/minute",
        },
    ),
    "adjudication": (
        130,
        {
            **UNLIMITED,
            "CLAIMFLOW_TOP_PROVIDERS_RATE_LIMIT": "1000000/minute",
            "CLAIMFLOW_PLANS_DIR": str(example_plans_dir()),
        },
    ),
    "audit-log": (180, UNLIMITED),
}


@pytest.mark.parametrize("service", list(SERVICES))
def test_every_operation_survives_generated_requests(service: str, service_api: StartApi) -> None:
    examples, env = SERVICES[service]
    base_url = service_api(service, env)
    report = fuzz_api(base_url, API_KEY, examples)
    print(f"{service}: {report.total} cases", dict(report.cases))
    assert not report.failures, "\n\n".join(report.failures)
    assert report.total >= MIN_CASES, dict(report.cases)

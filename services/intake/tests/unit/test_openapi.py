"""The OpenAPI document is complete: request schemas, examples and problem responses."""

from __future__ import annotations

from typing import Any

import pytest

from claimflow_intake.domain import LINE_FIELDS
from claimflow_intake.main import create_app
from claimflow_intake.settings import IntakeSettings


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(IntakeSettings()).openapi()


def test_submit_documents_its_hand_parsed_body(document: dict[str, Any]) -> None:
    body = document["paths"]["/v1/claims"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/ClaimSubmissionIn"}
    schemas = document["components"]["schemas"]
    line = schemas["ClaimLineIn"]
    # Every line field but the quadrant, which only some procedures take.
    assert set(line["required"]) == set(LINE_FIELDS) - {"quadrant"}
    assert line["example"]["provider_npi"] == "1497775530"
    csv = document["paths"]["/v1/claims/import"]["post"]["requestBody"]["content"]["text/csv"]
    assert csv["example"].startswith("service date,")
    batch = document["paths"]["/v1/claims/batch"]["post"]["requestBody"]["content"]
    assert batch["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/BatchItemIn"},
    }
    assert schemas["BatchItemIn"]["required"] == ["claim"]


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/v1/claims", "post", {"202", "400", "401", "403", "413", "415", "422"}),
        ("/v1/claims/import", "post", {"202", "400", "401", "403", "413", "415", "422"}),
        ("/v1/claims/batch", "post", {"207", "400", "401", "403", "413", "415", "422"}),
        ("/v1/claims/{claim_id}", "get", {"200", "401", "403", "404"}),
        ("/v1/claims", "get", {"200", "400", "401", "403", "422"}),
        ("/v1/claims/{claim_id}/fhir/Claim", "get", {"200", "401", "403", "404"}),
        ("/v1/claims/{claim_id}/fhir/ClaimResponse", "get", {"200", "401", "403", "404", "409"}),
        (
            "/v1/claims/{claim_id}/fhir/ExplanationOfBenefit",
            "get",
            {"200", "401", "403", "404", "409"},
        ),
    ],
)
def test_every_error_an_operation_returns_is_a_documented_problem(
    document: dict[str, Any], path: str, method: str, statuses: set[str]
) -> None:
    responses = document["paths"][path][method]["responses"]
    assert statuses <= set(responses)
    for status in statuses - {"200", "202", "207"}:
        assert "application/problem+json" in responses[status]["content"]
    assert document["paths"][path][method]["security"] == [{"HTTPBearer": []}]


def test_operations_endpoints_are_present(document: dict[str, Any]) -> None:
    assert {"/healthz", "/readyz", "/metrics"} <= set(document["paths"])

"""/v1/claims/{id}/fhir/...: a claim as FHIR R4B Claim, ClaimResponse and
ExplanationOfBenefit (`application/fhir+json`), each read audited like GET /v1/claims/{id}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from claimflow_intake.domain import fhir
from claimflow_intake.service_layer.fhir import read_fhir
from claimflow_shared.web.auth import Principal
from claimflow_shared.web.problems import problem_responses

from .deps import EngineDep, Reader, SettingsDep, readable_organisation

router = APIRouter(prefix="/v1/claims/{claim_id}/fhir", tags=["fhir"])

SPEC = "https://hl7.org/fhir/R4B"


def _fhir_response(resource: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI for a FHIR JSON answer: the resource's own JSON Schema is FHIR's, not ours."""
    return {
        200: {
            "description": f"The FHIR R4B {resource} ({SPEC}/{resource.lower()}.html)",
            "content": {
                fhir.FHIR_MEDIA_TYPE: {
                    "schema": {
                        "type": "object",
                        "required": ["resourceType"],
                        "properties": {"resourceType": {"type": "string", "enum": [resource]}},
                        "externalDocs": {"url": f"{SPEC}/{resource.lower()}.html"},
                    }
                }
            },
        }
    }


async def _answer(
    resource: fhir.FhirResourceName,
    claim_id: str,
    principal: Principal,
    engine: EngineDep,
    settings: SettingsDep,
) -> Response:
    found = await read_fhir(
        engine,
        settings,
        claim_id,
        resource,
        principal=principal.name,
        organisation=readable_organisation(principal),
    )
    return Response(fhir.to_json(found), media_type=fhir.FHIR_MEDIA_TYPE)


@router.get(
    "/Claim",
    response_class=Response,
    summary="Read a claim as a FHIR Claim",
    responses={**_fhir_response("Claim"), **problem_responses(401, 403, 404)},
)
async def read_fhir_claim(
    claim_id: str, principal: Reader, engine: EngineDep, settings: SettingsDep
) -> Response:
    """The claim as submitted: one item per line with its CDT code, service date, provider's
    fee and quadrant. Available from submission on. Audited (`audit.access`, `claim.read`);
    another organisation's claim is 404 unless the caller has a payer role."""
    return await _answer("Claim", claim_id, principal, engine, settings)


@router.get(
    "/ClaimResponse",
    response_class=Response,
    summary="Read a claim's adjudication as a FHIR ClaimResponse",
    responses={**_fhir_response("ClaimResponse"), **problem_responses(401, 403, 404, 409)},
)
async def read_fhir_claim_response(
    claim_id: str, principal: Reader, engine: EngineDep, settings: SettingsDep
) -> Response:
    """Outcome, per-line amounts (submitted, eligible, deductible, copay, benefit) with CARC
    reasons, totals and the payment once made. `409` `claim-not-adjudicated` while the claim
    is queued. Audited like a claim read."""
    return await _answer("ClaimResponse", claim_id, principal, engine, settings)


@router.get(
    "/ExplanationOfBenefit",
    response_class=Response,
    summary="Read a claim as a FHIR ExplanationOfBenefit (CARIN BB Oral)",
    responses={
        **_fhir_response("ExplanationOfBenefit"),
        **problem_responses(401, 403, 404, 409),
    },
)
async def read_fhir_explanation_of_benefit(
    claim_id: str, principal: Reader, engine: EngineDep, settings: SettingsDep
) -> Response:
    """The claim and its adjudication, shaped by the CARIN Blue Button Oral EOB profile as far
    as claimflow's data goes. `409` `claim-not-adjudicated` while the claim is queued. Audited
    like a claim read."""
    return await _answer("ExplanationOfBenefit", claim_id, principal, engine, settings)

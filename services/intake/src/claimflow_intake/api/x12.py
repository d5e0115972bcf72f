"""/v1/claims/x12: X12 837 Dental interchanges in, a 999 and a result per claim out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from claimflow_intake.domain.errors import InterchangeRejectedError
from claimflow_intake.domain.x12_claims import X12Claim
from claimflow_intake.service_layer import x12
from claimflow_intake.service_layer.bulk import Outcome
from claimflow_intake.service_layer.receipts import claim_receipt
from claimflow_shared.web.problems import (
    PROBLEM_MEDIA_TYPE,
    ProblemError,
    domain_problem,
    problem_responses,
)
from claimflow_shared.web.ratelimit import RATE_LIMIT_HEADERS

from .bodies import media_type, request_body
from .deps import EngineDep, Importer, SettingsDep
from .errors import PROBLEMS
from .receipts import outcome_json
from .schemas import X12Accepted

router = APIRouter(prefix="/v1/claims", tags=["claims"])

X12_MEDIA_TYPE = "application/edi-x12"

EXAMPLE = (
    "ISA*00*          *00*          *ZZ*SENDER         *ZZ*CLAIMFLOW      *180329*1200*^*00501*"
    "000000101*0*T*:~GS*HC*SENDER*CLAIMFLOW*20180329*1200*101*X*005010X224A2~"
    "ST*837*0001*005010X224A2~…~SE*…*0001~GE*1*101~IEA*1*000000101~"
)


def _wants_x12(request: Request) -> bool:
    return X12_MEDIA_TYPE in request.headers.get("accept", "")


def _result(claim: X12Claim, outcome: Outcome) -> dict[str, Any]:
    where = {
        "claim_submitter_id": claim.claim_id,
        "transaction": claim.transaction,
        "segment_position": claim.segment_position,
    }
    return where | outcome_json(outcome)


def _rejected(request: Request, exc: InterchangeRejectedError) -> Response:
    if _wants_x12(request) and exc.ack is not None:
        return Response(exc.ack, status_code=422, media_type=X12_MEDIA_TYPE)
    problem = domain_problem(exc, PROBLEMS)
    assert problem is not None
    body = problem.model_dump(mode="json", exclude_none=True) | {
        "instance": request.url.path,
        "ack": exc.ack,
    }
    return JSONResponse(body, status_code=422, media_type=PROBLEM_MEDIA_TYPE)


@router.post(
    "/x12",
    status_code=207,
    response_model=X12Accepted,
    summary="Submit an X12 837 Dental interchange",
    responses={
        **problem_responses(400, 401, 403, 413, 415, 422, 429),
        207: {
            "headers": RATE_LIMIT_HEADERS,
            "content": {X12_MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
    },
    openapi_extra=request_body(X12_MEDIA_TYPE, {"type": "string"}, example=EXAMPLE),
)
async def submit_interchange(
    request: Request,
    response: Response,
    principal: Importer,
    engine: EngineDep,
    settings: SettingsDep,
) -> Response:
    """Validate an 837 Dental (005010X224A2) interchange (ISA…IEA, any number of GS/ST sets
    and claims) against the implementation guide and claimflow's rules, store each valid
    claim, and answer 207 with the 999 acknowledgment and one result per CLM, in file order.

    A broken envelope (ISA/IEA, GS/GE, ST/SE counts or control numbers) rejects the whole
    interchange: 422, nothing stored, the 999 in `ack`. A claim with guide errors (999
    `IK5*E`) or failing claimflow's rules is refused on its own; the others are stored. Each
    claim's retry key is sender + ISA13 + CLM01: the same interchange sent again stores
    nothing twice. With `Accept: application/edi-x12` the answer is the 999 alone.
    """
    if media_type(request) != X12_MEDIA_TYPE:
        raise ProblemError(
            415, "unsupported-media-type", "Unsupported media type", f"Send {X12_MEDIA_TYPE}."
        )
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProblemError(
            400, "malformed-x12", "Malformed X12", "The interchange must be UTF-8 (or ASCII)."
        ) from exc
    try:
        receipt = await x12.submit_interchange(
            engine,
            settings,
            text,
            principal=principal.name,
            organisation=principal.organisation,
            render=claim_receipt,
        )
    except InterchangeRejectedError as exc:
        return _rejected(request, exc)
    read = receipt.read
    headers = dict(response.headers)
    if _wants_x12(request) and read.ack is not None:
        return Response(read.ack, status_code=207, media_type=X12_MEDIA_TYPE, headers=headers)
    results = [_result(claim, outcome) for claim, outcome in receipt.outcomes]
    accepted = sum(r["status"] == 202 for r in results)
    body = {
        "status": read.status,
        "sender": read.sender,
        "control_number": read.control_number,
        "accepted": accepted,
        "rejected": len(results) - accepted,
        "ack": read.ack,
        "results": results,
    }
    return JSONResponse(body, status_code=207, headers=headers)

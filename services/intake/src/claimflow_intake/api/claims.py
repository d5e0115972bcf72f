"""/v1/claims: submit (JSON or CSV), read one (audited), list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from claimflow_intake.service_layer import claims
from claimflow_intake.service_layer.receipts import ClaimAccepted, ClaimStatus, claim_receipt
from claimflow_shared.web.problems import ProblemError, problem_responses
from claimflow_shared.web.ratelimit import RATE_LIMIT_HEADERS

from .bodies import CSV_TYPES, JSON_TYPES, parse_json, request_body, require_media_type
from .deps import EngineDep, Importer, Reader, SettingsDep, Submitter, readable_organisation
from .receipts import accepted_response, import_receipt
from .schemas import ClaimOut, ClaimPage, ClaimSubmissionIn, ClaimSummary, ImportAccepted

router = APIRouter(prefix="/v1/claims", tags=["claims"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retry-safe submission: the same key and body replay the first response.",
    ),
]


@router.post(
    "",
    status_code=202,
    response_model=ClaimAccepted,
    summary="Submit a claim",
    responses={
        **problem_responses(400, 401, 403, 413, 415, 422, 429),
        202: {"headers": RATE_LIMIT_HEADERS},
    },
    openapi_extra=request_body(
        "application/json", {"$ref": "#/components/schemas/ClaimSubmissionIn"}
    ),
)
async def submit_claim(
    request: Request,
    response: Response,
    principal: Submitter,
    engine: EngineDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Validate a claim and queue it for adjudication.

    Every failing rule of every line is reported at once (RFC 9457, `errors`). The claim,
    its `claims.submitted` event and the idempotent response commit together.
    """
    require_media_type(request, JSON_TYPES)
    receipt = await claims.submit_claim(
        engine,
        settings,
        parse_json(await request.body()),
        principal=principal.name,
        organisation=principal.organisation,
        idempotency_key=idempotency_key,
        render=claim_receipt,
    )
    return accepted_response(receipt, response)


@router.post(
    "/import",
    status_code=202,
    response_model=ImportAccepted,
    summary="Import claims from CSV",
    responses={
        **problem_responses(400, 401, 403, 413, 415, 422, 429),
        202: {"headers": RATE_LIMIT_HEADERS},
    },
    openapi_extra=request_body(
        "text/csv",
        {"type": "string"},
        example="service date,submitted procedure,quadrant,Plan/Group #,"
        "Subscriber#,Provider NPI,provider fees,Allowed fees,member coinsurance,"
        "member copay\n3/28/18 0:00,D0180,,GRP-1000,3730189502,1497775530,"
        "$100.00 ,$100.00 ,$0.00 ,$0.00 \n",
    ),
)
async def import_claims(
    request: Request,
    response: Response,
    principal: Importer,
    engine: EngineDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Import a CSV file: one claim per file, or one per value of a claim-number column.

    All claims of the file are accepted together or none is.
    """
    require_media_type(request, CSV_TYPES)
    try:
        document = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProblemError(
            400, "malformed-csv", "Malformed CSV", "The CSV file must be UTF-8 encoded."
        ) from exc
    receipt = await claims.import_claims(
        engine,
        settings,
        document,
        principal=principal.name,
        organisation=principal.organisation,
        idempotency_key=idempotency_key,
        render=import_receipt,
    )
    return accepted_response(receipt, response)


@router.get(
    "/{claim_id}",
    response_model=ClaimOut,
    summary="Read a claim",
    responses=problem_responses(401, 403, 404),
)
async def read_claim(
    claim_id: str, principal: Reader, engine: EngineDep, settings: SettingsDep
) -> ClaimOut:
    """The claim with its lines, status and adjudication. Every read is audited
    (`audit.access`), in the same transaction as the read. A claim of another organisation
    is 404 unless the caller has a payer role."""
    found = await claims.read_claim(
        engine,
        settings,
        claim_id,
        principal=principal.name,
        organisation=readable_organisation(principal),
    )
    return ClaimOut.model_validate(found)


@router.get(
    "",
    response_model=ClaimPage,
    summary="List claims",
    responses=problem_responses(400, 401, 403, 422),
)
async def list_claims(
    principal: Reader,
    engine: EngineDep,
    settings: SettingsDep,
    status: Annotated[ClaimStatus | None, Query(description="only claims in this status")] = None,
    provider_npi: Annotated[
        str | None, Query(pattern=r"^\d{10}$", description="only claims with a line by this NPI")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> ClaimPage:
    """Newest first, with an opaque cursor for the next page: the caller's organisation's
    claims, or every organisation's for a payer role."""
    listing = await claims.list_claims(
        engine,
        settings,
        principal=principal.name,
        organisation=readable_organisation(principal),
        status=status,
        provider_npi=provider_npi,
        limit=limit,
        cursor=cursor,
    )
    items = [ClaimSummary.model_validate(item) for item in listing.items]
    return ClaimPage(items=items, next_cursor=listing.next_cursor)


# The body is parsed by hand (exact decimals, field-name aliases, every rule at once), so the
# request schema is registered here for the OpenAPI document.
REQUEST_MODELS = (ClaimSubmissionIn,)

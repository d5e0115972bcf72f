"""/v1/claims: submit (JSON or CSV), read one (audited), list."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from claimflow_intake.adapters import repository
from claimflow_intake.adapters.tables import outbox
from claimflow_intake.domain import ValidationPolicy, parse_claims_csv, validate_claim
from claimflow_intake.settings import IntakeSettings
from claimflow_intake.submissions import (
    SOURCE,
    Accepted,
    accept_claims,
    field_errors,
    request_fingerprint,
    today,
    validation_problem,
    validation_problem_from,
)
from claimflow_shared.events import AuditAccessV1, Topics, new_event
from claimflow_shared.outbox import enqueue
from claimflow_shared.outbox.writer import PendingEvent
from claimflow_shared.web.problems import FieldError, ProblemError, problem_responses

from .deps import EngineDep, Reader, SettingsDep, Submitter
from .schemas import (
    ClaimAccepted,
    ClaimOut,
    ClaimPage,
    ClaimStatus,
    ClaimSubmissionIn,
    ClaimSummary,
    ImportAccepted,
)

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

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv", "application/csv")


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _require_media_type(request: Request, accepted: tuple[str, ...]) -> None:
    media = _media_type(request)
    if media not in accepted and not (accepted == JSON_TYPES and media.endswith("+json")):
        raise ProblemError(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            f"Send the body as {' or '.join(accepted)}.",
        )


def _policy(settings: IntakeSettings) -> ValidationPolicy:
    return ValidationPolicy(npi_luhn=settings.validation_npi_luhn, max_lines=settings.max_lines)


def _accepted_response(result: Accepted) -> JSONResponse:
    headers = {"Location": result.location} if result.location else {}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(result.body, status_code=202, headers=headers)


def _parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        # parse_float keeps JSON numbers exact: money never passes through a binary float.
        payload = json.loads(raw, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ProblemError(
            400, "malformed-json", "Malformed JSON", "The request body is not valid JSON."
        ) from exc
    if not isinstance(payload, dict):
        raise validation_problem_from(
            [FieldError(rule="type", message="the body must be a JSON object with 'lines'")]
        )
    return payload


def _canonical(payload: Any) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


@router.post(
    "",
    status_code=202,
    response_model=ClaimAccepted,
    summary="Submit a claim",
    responses=problem_responses(400, 401, 403, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ClaimSubmissionIn"}}
            },
        }
    },
)
async def submit_claim(
    request: Request,
    principal: Submitter,
    engine: EngineDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Validate a claim and queue it for adjudication.

    Every failing rule of every line is reported at once (RFC 9457, `errors`). The claim,
    its `claims.submitted` event and the idempotent response commit together.
    """
    _require_media_type(request, JSON_TYPES)
    payload = _parse_json_object(await request.body())
    result = validate_claim(payload, _policy(settings), today())
    if result.claim is None:
        raise validation_problem(result.violations)
    accepted = await accept_claims(
        engine,
        settings,
        [result.claim],
        principal=principal.name,
        idempotency_key=idempotency_key,
        fingerprint=request_fingerprint("submit", _canonical(payload)),
        as_import=False,
    )
    return _accepted_response(accepted)


@router.post(
    "/import",
    status_code=202,
    response_model=ImportAccepted,
    summary="Import claims from CSV",
    responses=problem_responses(400, 401, 403, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "service date,submitted procedure,quadrant,Plan/Group #,"
                    "Subscriber#,Provider NPI,provider fees,Allowed fees,member coinsurance,"
                    "member copay\n3/28/18 0:00,D0180,,GRP-1000,3730189502,1497775530,"
                    "$100.00 ,$100.00 ,$0.00 ,$0.00 \n",
                }
            },
        }
    },
)
async def import_claims(
    request: Request,
    principal: Submitter,
    engine: EngineDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Import a CSV file: one claim per file, or one per value of a claim-number column.

    All claims of the file are accepted together or none is.
    """
    _require_media_type(request, CSV_TYPES)
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProblemError(
            400, "malformed-csv", "Malformed CSV", "The CSV file must be UTF-8 encoded."
        ) from exc
    parsed = parse_claims_csv(text, max_claims=settings.import_max_claims)
    if parsed.violations:
        raise validation_problem(parsed.violations)
    policy, day = _policy(settings), today()
    claims, errors = [], []
    for index, submission in enumerate(parsed.submissions):
        result = validate_claim(submission, policy, day)
        if result.claim is None:
            errors += field_errors(result.violations, claim=index)
        else:
            claims.append(result.claim)
    if errors:
        raise validation_problem_from(errors)
    accepted = await accept_claims(
        engine,
        settings,
        claims,
        principal=principal.name,
        idempotency_key=idempotency_key,
        fingerprint=request_fingerprint("import", raw),
        as_import=True,
    )
    return _accepted_response(accepted)


_NOT_FOUND = ProblemError(404, "claim-not-found", "Claim not found")


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
    (`audit.access`), in the same transaction as the read."""
    try:
        parsed_id = uuid.UUID(claim_id)
    except ValueError:
        raise _NOT_FOUND from None
    async with engine.begin() as conn:
        found = await repository.fetch_claim(conn, parsed_id)
        if found is None:
            raise _NOT_FOUND
        access = AuditAccessV1(
            claim_id=parsed_id,
            principal=principal.name,
            action="claim.read",
            accessed_at=datetime.now(UTC),
        )
        event = new_event(SOURCE, access, subject=str(parsed_id))
        await enqueue(
            conn,
            outbox,
            [PendingEvent(settings.topic(Topics.AUDIT_ACCESS), str(parsed_id), event)],
        )
    claim, lines = found
    return ClaimOut.model_validate(
        {
            **claim._mapping,
            "totals": {"net_fee": claim.net_fee_total},
            "lines": [dict(line._mapping) for line in lines],
        }
    )


@router.get(
    "",
    response_model=ClaimPage,
    summary="List claims",
    responses=problem_responses(400, 401, 403, 422),
)
async def list_claims(
    principal: Reader,
    engine: EngineDep,
    status: Annotated[ClaimStatus | None, Query(description="only claims in this status")] = None,
    provider_npi: Annotated[
        str | None, Query(pattern=r"^\d{10}$", description="only claims with a line by this NPI")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> ClaimPage:
    """Newest first, with an opaque cursor for the next page."""
    del principal  # authorisation only
    try:
        after = repository.decode_cursor(cursor) if cursor else None
    except repository.BadCursorError as exc:
        raise ProblemError(400, "bad-cursor", "Bad cursor", str(exc)) from None
    async with engine.connect() as conn:
        rows = await repository.list_claims(
            conn, status=status, provider_npi=provider_npi, after=after, limit=limit + 1
        )
    page, more = rows[:limit], len(rows) > limit
    items = [
        ClaimSummary.model_validate({**r._mapping, "totals": {"net_fee": r.net_fee_total}})
        for r in page
    ]
    next_cursor = repository.encode_cursor(page[-1].created_at, page[-1].id) if more else None
    return ClaimPage(items=items, next_cursor=next_cursor)


# The body is parsed by hand (exact decimals, field-name aliases, every rule at once), so the
# request schema is registered here for the OpenAPI document.
REQUEST_MODELS = (ClaimSubmissionIn,)

"""/v1/claims/batch: up to a thousand claims in one request, each accepted or refused on its
own (207 Multi-Status)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from claimflow_intake.domain.errors import RuleFailure
from claimflow_intake.service_layer import bulk
from claimflow_intake.service_layer.claims import invalid
from claimflow_intake.service_layer.receipts import claim_receipt
from claimflow_shared.web.problems import ProblemError, problem_responses
from claimflow_shared.web.ratelimit import RATE_LIMIT_HEADERS

from .bodies import media_type, parse_json, request_body
from .deps import EngineDep, Importer, SettingsDep
from .receipts import outcome_json
from .schemas import BatchAccepted, BatchItemIn

router = APIRouter(prefix="/v1/claims", tags=["claims"])

NDJSON_TYPES = ("application/x-ndjson", "application/jsonl")


def _ndjson(raw: bytes) -> list[Any]:
    """One element per non-blank line; a line that is not JSON is that element's error."""
    elements: list[Any] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            elements.append(json.loads(line, parse_float=Decimal))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            elements.append(
                invalid([RuleFailure(rule="json", message=f"line {number} is not valid JSON")])
            )
    return elements


def _elements(request: Request, raw: bytes) -> list[Any]:
    media = media_type(request)
    if media in NDJSON_TYPES:
        return _ndjson(raw)
    if media == "application/json" or media.endswith("+json"):
        document = parse_json(raw)
        if not isinstance(document, list):
            raise ProblemError(
                422,
                "validation-error",
                "Batch is not valid",
                "The body must be a JSON array of {claim, idempotency_key?} objects.",
            )
        return document
    raise ProblemError(
        415,
        "unsupported-media-type",
        "Unsupported media type",
        "Send the batch as application/json (an array) or application/x-ndjson.",
    )


@router.post(
    "/batch",
    status_code=207,
    response_model=BatchAccepted,
    summary="Submit a batch of claims",
    responses={
        **problem_responses(400, 401, 403, 413, 415, 422, 429),
        207: {"headers": RATE_LIMIT_HEADERS},
    },
    openapi_extra=request_body(
        "application/json",
        {"type": "array", "items": {"$ref": "#/components/schemas/BatchItemIn"}},
    ),
)
async def submit_batch(
    request: Request,
    response: Response,
    principal: Importer,
    engine: EngineDep,
    settings: SettingsDep,
) -> Response:
    """Validate each claim on its own, store every valid one (with its `claims.submitted`
    event) in one transaction, and answer 207 with one result per claim, in order: 202 with
    the claim's id and Location, or the RFC 9457 problem a single submission would get.

    The body is a JSON array or NDJSON (`application/x-ndjson`, one element per line) of
    `{"claim": {...}, "idempotency_key": "..."}`; at most `batch_max_claims` (1,000)
    elements. A claim sent again under its key is not stored again: its result is the first
    answer, with `replayed` true. A batch counts once against the bulk rate limit.
    """
    outcomes = await bulk.submit_batch(
        engine,
        settings,
        _elements(request, await request.body()),
        principal=principal.name,
        organisation=principal.organisation,
        render=claim_receipt,
    )
    results = [{"index": index} | outcome_json(outcome) for index, outcome in enumerate(outcomes)]
    accepted = sum(r["status"] == 202 for r in results)
    body = {"accepted": accepted, "rejected": len(results) - accepted, "results": results}
    return JSONResponse(body, status_code=207, headers=dict(response.headers))


# Read by hand like a single submission (exact decimals); registered for the $ref above.
REQUEST_MODELS = (BatchItemIn,)

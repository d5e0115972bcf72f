"""How accepted claims are answered over HTTP: the 202, its Location and replay headers, and
the CSV import's body (one claim's receipt is service_layer/receipts.py's)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse

from claimflow_intake.service_layer.bulk import Outcome
from claimflow_intake.service_layer.claims import AcceptedClaim, Receipt
from claimflow_intake.service_layer.receipts import accepted_body, location
from claimflow_shared.web.problems import domain_problem

from .errors import PROBLEMS
from .schemas import ImportAccepted


def import_receipt(accepted: Sequence[AcceptedClaim]) -> Receipt:
    body = ImportAccepted(claims=[accepted_body(c) for c in accepted]).model_dump(mode="json")
    return Receipt(body, location(accepted[0]) if len(accepted) == 1 else None)


def accepted_response(result: Receipt, response: Response) -> JSONResponse:
    """The 202, with the headers the dependencies set (the rate limit's) on `response`."""
    headers = dict(response.headers)
    if result.location:
        headers["Location"] = result.location
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(result.body, status_code=202, headers=headers)


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """One claim's result in a bulk answer: 202 with its receipt as stored (new or
    replayed), or the problem a single submission would have got."""
    if isinstance(outcome, Receipt):
        return {
            "status": 202,
            "location": outcome.location,
            "replayed": outcome.replayed,
            "claim": outcome.body,
        }
    problem = domain_problem(outcome, PROBLEMS)
    assert problem is not None, f"{type(outcome).__name__} is missing from api/errors.py"
    return {
        "status": problem.status,
        "problem": problem.model_dump(mode="json", exclude_none=True),
    }

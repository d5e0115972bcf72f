"""The receipt of an accepted claim: the body intake answers for it and replays to a retry,
whichever way the claim came in (the API's routes, `claimflow-intake x12-import`).

A receipt is stored with its retry key, so a claim imported from the command line and sent
again through the API must find the very body the API would have given. Every entry point
renders it here, and the API documents it with these models; pydantic only, so the command
line imports it without FastAPI.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from claimflow_shared.money import Money

from .claims import AcceptedClaim, Receipt

ClaimStatus = Literal["queued", "adjudicated", "rejected", "paid", "payment_failed", "reversed"]


class Totals(BaseModel):
    net_fee: Money = Field(description="sum of the lines' net fees")


class ClaimAccepted(BaseModel):
    id: UUID
    status: ClaimStatus
    external_id: str | None
    created_at: datetime
    line_count: int
    totals: Totals
    location: str = Field(examples=["/v1/claims/7d0e4ae2-5a1f-4c43-9c56-1a1f0e7c2b11"])


def location(claim: AcceptedClaim) -> str:
    return f"/v1/claims/{claim.id}"


def accepted_body(claim: AcceptedClaim) -> ClaimAccepted:
    return ClaimAccepted(
        id=claim.id,
        status="queued",
        external_id=claim.external_id,
        created_at=claim.created_at,
        line_count=claim.line_count,
        totals=Totals(net_fee=claim.net_fee),
        location=location(claim),
    )


def claim_receipt(accepted: Sequence[AcceptedClaim]) -> Receipt:
    """The receipt of one claim: a single submission's, or one of a batch or interchange."""
    (claim,) = accepted
    return Receipt(accepted_body(claim).model_dump(mode="json"), location(claim))

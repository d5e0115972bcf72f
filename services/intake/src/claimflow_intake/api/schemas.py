"""The API's documented shapes: request bodies (for OpenAPI) and every response."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from claimflow_intake.service_layer.receipts import ClaimAccepted, ClaimStatus, Totals
from claimflow_shared.events.catalog import AdjudicatedTotalsV1, LineAmountsV1
from claimflow_shared.money import Money
from claimflow_shared.web.problems import Problem

MoneyIn = Decimal | str


class ClaimLineIn(BaseModel):
    """One service line. Field names are matched case-, space- and punctuation-insensitively,
    so "Plan/Group #", "Subscriber#" and "service date" work as well as these names."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "service_date": "2018-03-28",
                "submitted_procedure": "D4346",
                "quadrant": None,
                "plan_group": "GRP-1000",
                "subscriber_number": "3730189502",
                "provider_npi": "1497775530",
                "provider_fees": "130.00",
                "allowed_fees": "65.00",
                "member_coinsurance": "16.25",
                "member_copay": "0.00",
            }
        }
    )

    service_date: str = Field(description="ISO 8601 date, or M/D/YY[YY] [H:MM]")
    submitted_procedure: str = Field(description="CDT code: D and four digits", examples=["D0180"])
    quadrant: Literal["UR", "UL", "LR", "LL"] | None = None
    plan_group: str = Field(examples=["GRP-1000"])
    subscriber_number: str
    provider_npi: str = Field(description="10-digit NPI with a valid check digit")
    provider_fees: MoneyIn = Field(description='amount: number or string like "$100.00"')
    allowed_fees: MoneyIn
    member_coinsurance: MoneyIn
    member_copay: MoneyIn


class ClaimSubmissionIn(BaseModel):
    external_id: str | None = Field(default=None, max_length=100, examples=["1234"])
    lines: list[ClaimLineIn] = Field(min_length=1, max_length=50)


class LineAdjudication(BaseModel):
    outcome: Literal["approved", "reduced", "denied"]
    reason_codes: list[str] = Field(description="CARC-style codes, e.g. 96 not covered")
    amounts: LineAmountsV1


class ClaimLineOut(BaseModel):
    line_no: int
    service_date: date
    submitted_procedure: str
    quadrant: str | None
    plan_group: str
    subscriber_number: str
    provider_npi: str
    provider_fees: Money
    allowed_fees: Money
    member_coinsurance: Money
    member_copay: Money
    net_fee: Money = Field(
        description="provider fees + member coinsurance + member copay - allowed fees"
    )
    adjudication: LineAdjudication | None = None


class ClaimAdjudication(BaseModel):
    outcome: Literal["complete", "partial", "error"]
    plan_id: str
    plan_version: int
    adjudicated_at: datetime
    totals: AdjudicatedTotalsV1


class _StoredClaim(BaseModel):
    """What a read and a list both show of a stored claim."""

    id: UUID
    external_id: str | None
    organisation: str = Field(description="the submitting organisation, which owns the claim")
    status: ClaimStatus
    created_at: datetime
    updated_at: datetime
    totals: Totals


class ClaimOut(_StoredClaim):
    lines: list[ClaimLineOut]
    adjudication: ClaimAdjudication | None = None


class ImportAccepted(BaseModel):
    claims: list[ClaimAccepted]


class BatchItemIn(BaseModel):
    """One claim of a batch, with its own retry key."""

    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retry-safe per claim: the same key and claim replay the first answer "
        "(shared with POST /v1/claims' Idempotency-Key)",
    )
    claim: ClaimSubmissionIn


class BatchResult(BaseModel):
    """What became of one claim of the batch: accepted (202, maybe replayed) or refused
    (the problem a single submission would have got)."""

    index: int = Field(description="0-based position of the claim in the batch")
    status: int = Field(examples=[202, 422])
    location: str | None = None
    replayed: bool = Field(default=False, description="an earlier request stored this claim")
    claim: ClaimAccepted | None = None
    problem: Problem | None = None


class BatchAccepted(BaseModel):
    accepted: int = Field(description="claims stored by this request or an earlier one")
    rejected: int
    results: list[BatchResult]


class X12ClaimResult(BaseModel):
    """What became of one CLM of an interchange."""

    claim_submitter_id: str | None = Field(description="CLM01")
    transaction: str | None = Field(description="ST02 of the claim's transaction set")
    segment_position: int | None = Field(description="the CLM's position in its set (ST = 1)")
    status: int = Field(examples=[202, 422])
    location: str | None = None
    replayed: bool = False
    claim: ClaimAccepted | None = None
    problem: Problem | None = None


class X12Accepted(BaseModel):
    status: Literal["A", "E", "P", "R"] = Field(
        description="the 999's AK901: accepted, accepted with errors, partially accepted, rejected"
    )
    sender: str | None = Field(description="ISA05:ISA06")
    control_number: str | None = Field(description="ISA13")
    accepted: int
    rejected: int
    ack: str | None = Field(description="the 999 acknowledgment (005010X231A1)")
    results: list[X12ClaimResult]


class ClaimSummary(_StoredClaim):
    line_count: int


class ClaimPage(BaseModel):
    items: list[ClaimSummary]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null at end")

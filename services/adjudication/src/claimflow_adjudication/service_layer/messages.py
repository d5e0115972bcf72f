"""Translation between the event catalog and the domain: claims in, results and saga steps out."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from claimflow_adjudication.domain import ClaimResult, ClaimToAdjudicate, ServiceLine
from claimflow_shared.events import (
    AdjudicatedLineV1,
    ClaimAdjudicatedV1,
    ClaimReversedV1,
    ClaimSubmittedV1,
    LineAmountsV1,
    PaymentRequestedV1,
)
from claimflow_shared.events.catalog import AdjudicatedTotalsV1

SOURCE = "/claimflow/adjudication"
# Payment ids derive from the claim id, so the payments system sees one id per claim however
# often a request is re-sent.
PAYMENT_NAMESPACE = uuid.UUID("6f1c2d7e-0c55-4b8e-9a0e-1b7c4f0f3a52")


def payment_id_for(claim_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(PAYMENT_NAMESPACE, str(claim_id))


def claim_from_event(data: ClaimSubmittedV1) -> ClaimToAdjudicate:
    return ClaimToAdjudicate(
        claim_id=data.claim_id,
        lines=tuple(
            ServiceLine(
                line_no=line.line_no,
                service_date=line.service_date,
                procedure=line.submitted_procedure,
                quadrant=line.quadrant,
                plan_group=line.plan_group,
                subscriber_number=line.subscriber_number,
                provider_npi=line.provider_npi,
                provider_fees=line.provider_fees,
                allowed_fees=line.allowed_fees,
                member_coinsurance=line.member_coinsurance,
                member_copay=line.member_copay,
            )
            for line in data.lines
        ),
    )


def inconsistency(data: ClaimSubmittedV1, claim: ClaimToAdjudicate) -> str | None:
    """Why the event contradicts itself (a producer bug), or None. No PHI in the answer."""
    line_numbers = [line.line_no for line in data.lines]
    if len(set(line_numbers)) != len(line_numbers):
        return "line numbers repeat"
    stated = {line.line_no: line.net_fee for line in data.lines}
    if any(stated[line.line_no] != line.net_fee for line in claim.lines):
        return "a line's net fee differs from provider + coinsurance + copay - allowed"
    if data.totals.net_fee != claim.net_fee:
        return "totals.net_fee differs from the sum of the lines"
    return None


def adjudicated(result: ClaimResult, at: datetime) -> ClaimAdjudicatedV1:
    return ClaimAdjudicatedV1(
        claim_id=result.claim_id,
        status="rejected" if result.rejected else "adjudicated",
        outcome=result.outcome,
        plan_id=result.plan_id,
        plan_version=result.plan_version,
        adjudicated_at=at,
        lines=[
            AdjudicatedLineV1(
                line_no=line.line_no,
                outcome=line.outcome,
                reason_codes=list(line.reason_codes),
                net_fee=line.net_fee,
                amounts=LineAmountsV1(
                    submitted=line.amounts.submitted,
                    eligible=line.amounts.eligible,
                    copay=line.amounts.copay,
                    deductible=line.amounts.deductible,
                    benefit=line.amounts.benefit,
                ),
            )
            for line in result.lines
        ],
        totals=AdjudicatedTotalsV1(
            net_fee=result.totals.net_fee,
            submitted=result.totals.submitted,
            eligible=result.totals.eligible,
            benefit=result.totals.benefit,
        ),
    )


def payment_requested(result: ClaimResult, at: datetime) -> PaymentRequestedV1:
    return PaymentRequestedV1(
        payment_id=payment_id_for(result.claim_id),
        claim_id=result.claim_id,
        provider_npi=result.billing_provider_npi,
        amount=result.totals.benefit,
        requested_at=at,
    )


def reversed_for_payment_failure(
    claim_id: uuid.UUID, net_fee: Decimal, reason: str, at: datetime
) -> ClaimReversedV1:
    return ClaimReversedV1(
        claim_id=claim_id, status="payment_failed", reason=reason, reversed_at=at, net_fee=net_fee
    )

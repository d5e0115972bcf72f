"""X12 837 Dental interchanges: each claim validated and stored on its own, a 999 for the file.

An interchange whose envelope is broken is refused whole: nothing is stored and the 999
rejects it. Otherwise every CLM that is valid X12 and passes claimflow's rules is stored (in
one transaction, through bulk.accept_each), and every other one is reported. A claim's
Idempotency-Key is the interchange's sender, its ISA13 control number and the claim's CLM01,
so a clearinghouse that sends the same interchange again stores nothing twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_intake.domain import validate_claim
from claimflow_intake.domain.errors import (
    InterchangeRejectedError,
    InvalidClaimError,
    RuleFailure,
)
from claimflow_intake.domain.x12_claims import X12Claim, X12ClaimsResult, read_dental_claims
from claimflow_intake.settings import IntakeSettings
from claimflow_shared.x12 import X12Error

from .bulk import Entry, Outcome, accept_each
from .claims import Render, canonical, failures, invalid, policy, request_fingerprint, today


@dataclass(frozen=True)
class X12Receipt:
    """The 999 and what became of each CLM, in file order."""

    read: X12ClaimsResult
    outcomes: tuple[tuple[X12Claim, Outcome], ...]


def idempotency_key(read: X12ClaimsResult, claim: X12Claim) -> str | None:
    """sender + ISA13 + CLM01: the interchange's identity as its sender numbered it. A claim
    without a CLM01 (already refused by the guide) has none."""
    if claim.claim_id is None or read.sender is None or read.control_number is None:
        return None
    return f"x12:{read.sender}:{read.control_number}:{claim.claim_id}"


def _failure(error: X12Error) -> RuleFailure:
    """A guide finding as a rule failure: the segment and element it is about, PHI-free."""
    where = error.segment_id or error.level
    if error.element_position is not None:
        where += f"{error.element_position:02d}"
    position = f" (segment {error.segment_position})" if error.segment_position else ""
    return RuleFailure(
        rule=f"x12-{error.level}-{error.code}", field=where, message=error.message + position
    )


def _checked(
    read: X12ClaimsResult, claim: X12Claim, settings: IntakeSettings
) -> Entry | InvalidClaimError:
    if claim.submission is None:
        return invalid([_failure(e) for e in claim.errors])
    result = validate_claim(claim.submission, policy(settings), today())
    if result.claim is None:
        return invalid(failures(result.violations))
    fingerprint = request_fingerprint("x12", canonical(claim.submission))
    return Entry(result.claim, idempotency_key(read, claim), fingerprint)


async def submit_interchange(
    engine: AsyncEngine,
    settings: IntakeSettings,
    source: str | TextIO,
    *,
    principal: str,
    organisation: str,
    render: Render,
) -> X12Receipt:
    """Read, validate and store an 837D interchange; InterchangeRejectedError (with the 999)
    when its envelope is broken."""
    # pyx12 validates every segment in Python (tens of milliseconds a claim): off the event
    # loop, so other requests are served meanwhile.
    read = await asyncio.to_thread(read_dental_claims, source)
    if not read.storable:
        found = [_failure(e) for e in read.interchange.errors]
        raise InterchangeRejectedError(
            f"The interchange was rejected ({len(found)} envelope or syntax finding(s)); "
            "nothing was stored.",
            failures=found,
            ack=read.ack,
            sender=read.sender,
            control_number=read.control_number,
        )
    checked = [_checked(read, claim, settings) for claim in read.claims]
    outcomes = await accept_each(
        engine,
        settings,
        checked,
        principal=principal,
        organisation=organisation,
        channel="x12",
        render=render,
    )
    return X12Receipt(read, tuple(zip(read.claims, outcomes, strict=True)))

"""Reading an 837 Dental (005010X224A2) interchange into submissions that `validate_claim`
checks, one per CLM, with the implementation-guide findings of each.

This lives in the domain, like csv_import: it turns text the caller already holds (or a
stream it opened) into submissions and touches no database, network or clock. pyx12 is a
parsing library here, as the csv module is there. The interchange is read in one pass, a 2300
claim loop at a time, so a file of many thousands of claims never sits in memory as a tree.

The values are not judged here: a claim that is valid X12 but breaks claimflow's rules (a bad
NPI check digit, a code that is not CDT) becomes a submission that `validate_claim` rejects
with the same findings a JSON or CSV submission would get.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO

from claimflow_intake.domain.csv_import import Submission
from claimflow_intake.domain.fields import (
    ALLOWED_FEES,
    MEMBER_COINSURANCE,
    MEMBER_COPAY,
    PLAN_GROUP,
    PROVIDER_FEES,
    PROVIDER_NPI,
    QUADRANT,
    SERVICE_DATE,
    SUBMITTED_PROCEDURE,
    SUBSCRIBER_NUMBER,
)
from claimflow_shared.x12 import (
    REJECTED,
    InterchangeReader,
    InterchangeResult,
    X12Error,
)

CLAIM_LOOP = "2300"
# SV304 oral cavity designation codes (X12 element 1361) that name one quadrant.
QUADRANT_BY_ORAL_CAVITY: dict[str, str] = {"10": "UR", "20": "UL", "30": "LL", "40": "LR"}
# CAS group PR (patient responsibility) reason codes (CARC): 2 coinsurance, 3 co-payment.
PATIENT_RESPONSIBILITY = "PR"
COINSURANCE_REASON = "2"
COPAY_REASON = "3"
SERVICE_DATE_QUALIFIER = "472"
NPI_QUALIFIER = "XX"


@dataclass(frozen=True, slots=True)
class X12Claim:
    """One CLM: where it is, its submission (None when its X12 is invalid) and its findings.

    line is the CLM's segment number in the file (ISA = 1) and segment_position its
    position in the transaction set (ST = 1), as the 999's IK302 counts; first_line and
    last_line bound the claim's 2300 loop, so any error with a line between them is its own.
    """

    claim_id: str | None
    transaction: str | None
    segment_position: int | None
    line: int
    first_line: int
    last_line: int
    submission: Submission | None
    errors: tuple[X12Error, ...] = ()


@dataclass(frozen=True, slots=True)
class X12ClaimsResult:
    """The interchange's verdict and 999, and its claims in file order."""

    interchange: InterchangeResult
    claims: tuple[X12Claim, ...] = field(default_factory=tuple)

    @property
    def storable(self) -> bool:
        """False when the envelope is broken: store nothing from this interchange."""
        return self.interchange.envelope_ok

    @property
    def status(self) -> str:
        return self.interchange.status

    @property
    def ack(self) -> str | None:
        return self.interchange.ack

    @property
    def sender(self) -> str | None:
        """ISA05:ISA06."""
        return self.interchange.sender

    @property
    def control_number(self) -> str | None:
        """ISA13."""
        return self.interchange.control_number

    def submissions(self) -> list[Submission]:
        """The submissions to validate and store; none at all if the envelope is broken."""
        if not self.storable:
            return []
        return [claim.submission for claim in self.claims if claim.submission is not None]


@dataclass(slots=True)
class _Context:
    """The loops above the claim that a claim line takes values from."""

    billing_npi: str | None = None
    plan_group: str | None = None
    subscriber: str | None = None


def read_dental_claims(source: str | TextIO) -> X12ClaimsResult:
    """Validate an 837D interchange against X224A2 and read each CLM into a submission."""
    reader = InterchangeReader(source, unit_loop=CLAIM_LOOP)
    claims: list[X12Claim] = []
    context = _Context()
    for unit in reader.units():
        tree = unit.tree
        if tree.type == "seg":
            _note(context, unit.loop, tree.seg_data)
            continue
        claims.append(_claim(tree, unit.transaction, unit.first_line, unit.last_line, context))
    result = reader.result
    if result.status == REJECTED and not claims:
        return X12ClaimsResult(result, ())
    finished = []
    for claim in claims:
        errors = tuple(reader.errors_between(claim.first_line, claim.last_line))
        submission = None if errors else claim.submission
        finished.append(replace(claim, errors=errors, submission=submission))
    return X12ClaimsResult(result, tuple(finished))


def _note(context: _Context, loop: str | None, seg: Any) -> None:
    seg_id = seg.get_seg_id()
    if seg_id == "ST":
        context.billing_npi = context.plan_group = context.subscriber = None
    elif loop == "2010AA" and seg_id == "NM1":
        context.billing_npi = _npi(seg)
    elif loop == "2000B" and seg_id == "HL":
        context.plan_group = context.subscriber = None
    elif loop == "2000B" and seg_id == "SBR":
        context.plan_group = _value(seg, "SBR03")
    elif loop == "2010BA" and seg_id == "NM1":
        context.subscriber = _value(seg, "NM109")


def _claim(tree: Any, transaction: str | None, first: int, last: int, ctx: _Context) -> X12Claim:
    clm = _first_segment(tree, "CLM")
    claim_date = _service_date(tree)
    rendering = next(
        (_npi(seg) for loop in _loops(tree, "2310B") for seg in _segments(loop, "NM1")), None
    )
    provider = rendering or ctx.billing_npi
    lines = [_line(loop, claim_date, provider, ctx) for loop in _loops(tree, "2400")]
    claim_id = _value(clm.seg_data, "CLM01") if clm is not None else None
    submission: Submission = {"external_id": claim_id, "lines": lines}
    return X12Claim(
        claim_id=claim_id,
        transaction=transaction,
        segment_position=clm.seg_count if clm is not None else None,
        line=(clm.cur_line_number or first) if clm is not None else first,
        first_line=first,
        last_line=last,
        submission=submission,
    )


def _line(loop: Any, claim_date: str | None, provider: str | None, ctx: _Context) -> dict[str, str]:
    service = next(_segments(loop, "SV3"), None)
    charge = _value(service, "SV302") if service is not None else None
    pricing = next(_segments(loop, "HCP"), None)
    allowed = _value(pricing, "HCP02") if pricing is not None else None
    coinsurance, copay = _patient_responsibility(loop)
    values = {
        SERVICE_DATE: _service_date(loop) or claim_date,
        SUBMITTED_PROCEDURE: _value(service, "SV301-02") if service is not None else None,
        QUADRANT: _quadrant(service) if service is not None else None,
        PLAN_GROUP: ctx.plan_group,
        SUBSCRIBER_NUMBER: ctx.subscriber,
        PROVIDER_NPI: provider,
        PROVIDER_FEES: charge,
        ALLOWED_FEES: allowed or charge,
        MEMBER_COINSURANCE: coinsurance,
        MEMBER_COPAY: copay,
    }
    # Absent values are left out, so validate_claim reports each as required.
    return {name: value for name, value in values.items() if value}


def _patient_responsibility(line: Any) -> tuple[str, str]:
    """Coinsurance and copay from the last 2430 (the payer that adjudicated the line last)."""
    adjudications = list(_loops(line, "2430"))
    coinsurance = copay = Decimal(0)
    if adjudications:
        for cas in _segments(adjudications[-1], "CAS"):
            if _value(cas, "CAS01") != PATIENT_RESPONSIBILITY:
                continue
            # CAS02/03, CAS05/06, ... CAS17/18: up to six reason/amount pairs, looked up
            # only as far as the segment goes (each lookup parses its reference designator).
            for reason_at in range(2, min(len(cas), 17) + 1, 3):
                reason = _value(cas, f"CAS{reason_at:02d}")
                amount = _amount(_value(cas, f"CAS{reason_at + 1:02d}"))
                if reason == COINSURANCE_REASON:
                    coinsurance += amount
                elif reason == COPAY_REASON:
                    copay += amount
    return str(coinsurance), str(copay)


def _amount(text: str | None) -> Decimal:
    if not text:
        return Decimal(0)
    try:
        return Decimal(text)
    except InvalidOperation:
        return Decimal(0)  # pyx12 has already reported a malformed amount (R type)


def _quadrant(service: Any) -> str | None:
    """UR/UL/LL/LR from SV304; several areas are passed on for the quadrant rule to reject."""
    area = service.get("SV304")
    present = min(len(area), 5) if area is not None else 0
    codes = [
        code
        for position in range(1, present + 1)
        if (code := _value(service, f"SV304-{position:02d}")) is not None
    ]
    if not codes:
        return None
    if len(codes) == 1 and codes[0] in QUADRANT_BY_ORAL_CAVITY:
        return QUADRANT_BY_ORAL_CAVITY[codes[0]]
    # claimflow records one quadrant per line; an arch, both sides or several quadrants
    # cannot be stored as one, and the quadrant rule says so.
    return ":".join(codes)


def _service_date(loop: Any) -> str | None:
    """DTP*472 of this loop (not of its children), as an ISO date."""
    for seg in _segments(loop, "DTP"):
        if _value(seg, "DTP01") != SERVICE_DATE_QUALIFIER:
            continue
        text = _value(seg, "DTP03") or ""
        start = text.split("-", 1)[0]  # RD8 is a range; the visit starts on its first day
        if len(start) == 8 and start.isdigit():
            return f"{start[:4]}-{start[4:6]}-{start[6:]}"
        return start or None
    return None


def _npi(seg: Any) -> str | None:
    if _value(seg, "NM108") != NPI_QUALIFIER:
        return None
    return _value(seg, "NM109")


def _value(seg: Any, ref: str) -> str | None:
    value = seg.get_value(ref)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _segments(loop: Any, seg_id: str) -> Iterator[Any]:
    for child in loop.children:
        if child.type == "seg" and child.seg_data.get_seg_id() == seg_id:
            yield child.seg_data


def _first_segment(loop: Any, seg_id: str) -> Any:
    return next(
        (c for c in loop.children if c.type == "seg" and c.seg_data.get_seg_id() == seg_id),
        None,
    )


def _loops(loop: Any, loop_id: str) -> Iterator[Any]:
    for child in loop.children:
        if child.type == "loop" and child.x12_map_node.id == loop_id:
            yield child


__all__ = [
    "QUADRANT_BY_ORAL_CAVITY",
    "X12Claim",
    "X12ClaimsResult",
    "read_dental_claims",
]

"""ASC X12 835 (005010X221A1) health care claim payment/advice: one payee's remittance.

Pure: plain dataclasses in, X12 text out; no I/O, no clock (the caller passes the time).
Segments are written as strings (no X12 writer library exists for Python); the tests check
every generated interchange against pyx12's stock X221A1 map.

What a line's adjustments are (every CAS amount is a part of submitted - paid, so each
service line balances: SVC02 - SVC03 = its CAS amounts, and each claim: CLP03 - CLP04):

- a line denied by a rule: its whole charge, under the denial's CARC and that CARC's group;
- a priced line: CO 45 for submitted - eligible (the allowed fee or the fee schedule cut it;
  the provider writes it off), PR 1 deductible, PR 3 copay, PR 2 coinsurance, and PR 119 for
  what the annual maximum left unpaid.

The group of a CARC says who bears it (GROUPS): CO the provider (contract), PR the member,
OA neither (a duplicate was answered before). A reversal (CLP02 22) repeats the claim as it
was paid, every amount negated, so the pair nets to zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from claimflow_shared.money import CENT, ZERO

from . import reasons
from .adjudicate import ClaimResult, ClaimToAdjudicate, LineAmounts

Group = Literal["CO", "PR", "OA"]

GROUPS: dict[str, Group] = {
    reasons.LACKS_INFORMATION: "CO",  # a billing error: the provider corrects and resubmits
    reasons.DUPLICATE: "OA",  # answered on the first claim: nobody owes it twice
    reasons.BEFORE_COVERAGE: "PR",
    reasons.AFTER_COVERAGE: "PR",
    reasons.EXCEEDS_FEE_SCHEDULE: "CO",
    reasons.NOT_COVERED: "PR",  # dental: the member pays for services the plan excludes
    reasons.BENEFIT_MAXIMUM: "PR",
    reasons.FREQUENCY: "PR",
}
# Member cost-sharing CARCs of a priced line.
DEDUCTIBLE = "1"
COINSURANCE = "2"
COPAY = "3"

PROCESSED_AS_PRIMARY = "1"
# CLP06: a dental PPO, the plans being fee schedules of maximum allowed amounts.
CLAIM_FILING = "12"
REVERSAL = "22"
FORWARDING_BALANCE = "FB"

IMPLEMENTATION = "005010X221A1"
SEPARATORS = "*~:^"
# CAS carries at most six reason/amount/quantity triplets.
CAS_TRIPLETS = 6


@dataclass(frozen=True)
class Adjustment:
    group: Group
    reason: str
    amount: Decimal


@dataclass(frozen=True)
class RemittanceLine:
    line_no: int
    procedure: str
    service_date: date
    outcome: str
    reason_codes: tuple[str, ...]
    amounts: LineAmounts
    # DESIGN's net fee of the line as submitted; not an X12 amount, kept with the line.
    net_fee: Decimal = ZERO

    @property
    def charge(self) -> Decimal:
        return self.amounts.submitted

    @property
    def paid(self) -> Decimal:
        return self.amounts.benefit

    @property
    def adjustments(self) -> tuple[Adjustment, ...]:
        a = self.amounts
        denial = self.outcome == "denied" and reasons.BENEFIT_MAXIMUM not in self.reason_codes
        if denial:
            code = self.reason_codes[0]
            return (Adjustment(GROUPS[code], code, a.submitted),) if a.submitted else ()
        over_maximum = a.eligible - a.deductible - a.copay - a.coinsurance - a.benefit
        parts = (
            Adjustment("CO", reasons.EXCEEDS_FEE_SCHEDULE, a.submitted - a.eligible),
            Adjustment("PR", DEDUCTIBLE, a.deductible),
            Adjustment("PR", COPAY, a.copay),
            Adjustment("PR", COINSURANCE, a.coinsurance),
            Adjustment(GROUPS[reasons.BENEFIT_MAXIMUM], reasons.BENEFIT_MAXIMUM, over_maximum),
        )
        return tuple(p for p in parts if p.amount != ZERO)


@dataclass(frozen=True)
class RemittanceClaim:
    claim_id: UUID
    subscriber_number: str
    lines: tuple[RemittanceLine, ...]
    reversal: bool = False

    def __post_init__(self) -> None:
        if not self.lines:
            raise ValueError("a remitted claim has at least one line")
        for line in self.lines:
            if sum((adj.amount for adj in line.adjustments), start=ZERO) != line.charge - line.paid:
                raise ValueError(f"line {line.line_no}: adjustments do not balance")

    @property
    def sign(self) -> int:
        return -1 if self.reversal else 1

    @property
    def status(self) -> str:
        return REVERSAL if self.reversal else PROCESSED_AS_PRIMARY

    @property
    def charge(self) -> Decimal:
        return self.sign * sum((line.charge for line in self.lines), start=ZERO)

    @property
    def paid(self) -> Decimal:
        return self.sign * sum((line.paid for line in self.lines), start=ZERO)

    @property
    def patient_responsibility(self) -> Decimal:
        return self.sign * sum(
            (adj.amount for line in self.lines for adj in line.adjustments if adj.group == "PR"),
            start=ZERO,
        )

    @property
    def net_fee(self) -> Decimal:
        return self.sign * sum((line.net_fee for line in self.lines), start=ZERO)


def remitted_claim(
    claim: ClaimToAdjudicate, result: ClaimResult, *, reversal: bool = False
) -> RemittanceClaim:
    """The claim as an 835 reports it, from the claim and its adjudication."""
    return RemittanceClaim(
        claim_id=result.claim_id,
        subscriber_number=claim.member.subscriber_number,
        lines=tuple(
            RemittanceLine(
                line_no=r.line_no,
                procedure=r.procedure,
                service_date=line.service_date,
                outcome=r.outcome,
                reason_codes=r.reason_codes,
                amounts=r.amounts,
                net_fee=r.net_fee,
            )
            for line, r in zip(claim.lines, result.lines, strict=True)
        ),
        reversal=reversal,
    )


@dataclass(frozen=True)
class ProviderAdjustment:
    """A PLB amount: positive takes money from the payment, negative adds to it."""

    reason: str
    reference: str
    amount: Decimal


@dataclass(frozen=True)
class Payer:
    name: str
    # The payer's federal tax id (9 digits): TRN03 is "1" + it.
    tin: str
    interchange_id: str
    address: str
    city: str
    state: str
    postal_code: str
    contact_phone: str
    usage: Literal["P", "T"] = "P"


@dataclass(frozen=True)
class Remittance:
    payer: Payer
    payee_npi: str
    control_number: int
    created_at: datetime
    claims: tuple[RemittanceClaim, ...]
    provider_adjustments: tuple[ProviderAdjustment, ...] = field(default=())

    def __post_init__(self) -> None:
        if not 1 <= self.control_number <= 999_999_999:
            raise ValueError("an interchange control number has 1 to 9 digits")
        if self.total < ZERO:
            raise ValueError("the payment is negative: forward the balance (PLB FB) instead")

    @property
    def claims_paid(self) -> Decimal:
        return sum((claim.paid for claim in self.claims), start=ZERO)

    @property
    def total(self) -> Decimal:
        """BPR02: the claims' payments less the provider-level adjustments."""
        return self.claims_paid - sum((p.amount for p in self.provider_adjustments), start=ZERO)

    @property
    def total_charge(self) -> Decimal:
        return sum((claim.charge for claim in self.claims), start=ZERO)

    @property
    def net_fee(self) -> Decimal:
        return sum((claim.net_fee for claim in self.claims), start=ZERO)


def amount(value: Decimal) -> str:
    """An X12 decimal (R): exact cents, no float, trailing zeros after the point dropped."""
    text = f"{value.quantize(CENT):f}"
    text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def forward_balance(
    claims_paid: Decimal, owed: Decimal, reference: str
) -> ProviderAdjustment | None:
    """The PLB FB that keeps BPR02 at or above zero: recover what the payee owes (`owed` > 0,
    from earlier remittances) out of this payment, or forward the shortfall (negative)."""
    if claims_paid < ZERO:
        return ProviderAdjustment(FORWARDING_BALANCE, reference, claims_paid)
    recovered = min(claims_paid, owed)
    if recovered > ZERO:
        return ProviderAdjustment(FORWARDING_BALANCE, reference, recovered)
    return None


def _clean(value: str) -> str:
    if any(sep in value for sep in SEPARATORS):
        raise ValueError("a value holds an X12 separator")
    return value


def _segment(*elements: str | tuple[str, ...]) -> str:
    """One segment; a tuple is a composite element."""
    return "*".join(
        ":".join(_clean(c) for c in e) if isinstance(e, tuple) else _clean(e) for e in elements
    ).rstrip("*")


def _cas(adjustments: Sequence[Adjustment], sign: int) -> list[str]:
    segments: list[str] = []
    for group in ("CO", "PR", "OA"):
        mine = [a for a in adjustments if a.group == group]
        for start in range(0, len(mine), CAS_TRIPLETS):
            triplets: list[str] = []
            for adj in mine[start : start + CAS_TRIPLETS]:
                triplets += [adj.reason, amount(sign * adj.amount), ""]
            segments.append(_segment("CAS", group, *triplets))
    return segments


def _claim(claim: RemittanceClaim) -> list[str]:
    claim_id = str(claim.claim_id)
    segments = [
        _segment(
            "CLP",
            claim_id,
            claim.status,
            amount(claim.charge),
            amount(claim.paid),
            amount(claim.patient_responsibility),
            CLAIM_FILING,
            claim_id,
        ),
        _segment("NM1", "QC", "1", "", "", "", "", "", "MI", claim.subscriber_number),
    ]
    for line in claim.lines:
        segments.append(
            _segment(
                "SVC",
                ("AD", line.procedure),
                amount(claim.sign * line.charge),
                amount(claim.sign * line.paid),
            )
        )
        segments.append(_segment("DTM", "472", line.service_date.strftime("%Y%m%d")))
        segments += _cas(line.adjustments, claim.sign)
        segments.append(_segment("REF", "6R", str(line.line_no)))
    return segments


def build_835(remittance: Remittance) -> str:
    """The interchange (ISA..IEA) holding one 835 transaction set for the payee."""
    payer, npi, when = remittance.payer, remittance.payee_npi, remittance.created_at
    control = f"{remittance.control_number:09d}"
    day = when.strftime("%Y%m%d")
    total = remittance.total
    body = [
        _segment("ST", "835", "0001"),
        # The payments system moved the money claim by claim; this 835 reports it: "I"
        # (remittance information only), or "H" (notification only) when nothing is paid.
        _segment("BPR", "I" if total > ZERO else "H", amount(total), "C", "NON") + "*" * 12 + day,
        _segment("TRN", "1", control, f"1{payer.tin}"),
        _segment("DTM", "405", day),
        _segment("N1", "PR", payer.name),
        _segment("N3", payer.address),
        _segment("N4", payer.city, payer.state, payer.postal_code),
        _segment("PER", "BL", "", "TE", payer.contact_phone),
        _segment("N1", "PE", f"NPI {npi}", "XX", npi),
    ]
    if remittance.claims:
        body.append(_segment("LX", "1"))
        for claim in remittance.claims:
            body += _claim(claim)
    for plb in remittance.provider_adjustments:
        fiscal_year_end = f"{when.year}1231"
        body.append(
            _segment("PLB", npi, fiscal_year_end, (plb.reason, plb.reference), amount(plb.amount))
        )
    body.append(_segment("SE", str(len(body) + 1), "0001"))
    sender = f"{_clean(payer.interchange_id):<15}"
    receiver = f"{npi:<15}"
    envelope_head = [
        "*".join(
            [
                "ISA",
                "00",
                " " * 10,
                "00",
                " " * 10,
                "ZZ",
                sender,
                "ZZ",
                receiver,
                when.strftime("%y%m%d"),
                when.strftime("%H%M"),
                "^",
                "00501",
                control,
                "0",
                payer.usage,
                ":",
            ]
        ),
        _segment(
            "GS",
            "HP",
            payer.interchange_id,
            npi,
            day,
            when.strftime("%H%M"),
            str(remittance.control_number),
            "X",
            IMPLEMENTATION,
        ),
    ]
    envelope_tail = [
        _segment("GE", "1", str(remittance.control_number)),
        _segment("IEA", "1", control),
    ]
    # ISA16 (":") is the component separator and "^" the repetition separator: both written
    # raw into ISA, which _segment would refuse.
    return "".join(f"{s}~\n" for s in (*envelope_head, *body, *envelope_tail))

"""Adjudication: plan + the subscriber's benefit-year history + a claim in, a result per line out.

Pure: no I/O, no clock. Lines are decided in line order, and each granted line becomes
history for the lines after it, so limits hold within a claim exactly as across claims.

Per line, first the denial rules (the first that fires decides), then pricing:

1. eligible   = min(submitted, allowed, fee schedule maximum)  (CARC 45 when the schedule cut it)
2. deductible = min(eligible, deductible left this benefit year)  (unless its category is waived)
3. copay      = min(member copay, eligible - deductible)
4. benefit    = (eligible - deductible - copay) x plan percent, rounded half-up to the cent;
                the member's coinsurance is the remainder, so no cent is lost to rounding
5. benefit    = min(benefit, annual maximum left)  (CARC 119 when it cut it)

The net fee per line is DESIGN's: provider fees + member coinsurance + member copay - allowed
fees, over the values as submitted, whatever the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal
from uuid import UUID

from claimflow_shared.money import CENT, ZERO

from . import reasons
from .cdt import Category, category_of
from .history import EMPTY_HISTORY, BenefitHistory, HistoryKey, PriorService
from .plan import HUNDRED, Plan

LineOutcome = Literal["approved", "reduced", "denied"]
ClaimOutcome = Literal["complete", "partial", "error"]


def _exact_cents(name: str, value: Decimal) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise TypeError(f"{name} must be a finite Decimal")
    if value.quantize(CENT) != value:
        raise ValueError(f"{name} must be exact to the cent")
    return value.quantize(CENT)


@dataclass(frozen=True)
class ServiceLine:
    line_no: int
    service_date: date
    procedure: str
    quadrant: str | None
    plan_group: str
    subscriber_number: str
    provider_npi: str
    provider_fees: Decimal
    allowed_fees: Decimal
    member_coinsurance: Decimal
    member_copay: Decimal

    def __post_init__(self) -> None:
        for name in ("provider_fees", "allowed_fees", "member_coinsurance", "member_copay"):
            object.__setattr__(self, name, _exact_cents(name, getattr(self, name)))

    @property
    def net_fee(self) -> Decimal:
        """provider fees + member coinsurance + member copay - allowed fees (exact, may be < 0)."""
        return self.provider_fees + self.member_coinsurance + self.member_copay - self.allowed_fees

    @property
    def as_service(self) -> PriorService:
        return PriorService(self.procedure, self.service_date, self.quadrant, self.provider_npi)


@dataclass(frozen=True)
class ClaimToAdjudicate:
    claim_id: UUID
    lines: tuple[ServiceLine, ...]

    def __post_init__(self) -> None:
        if not self.lines:
            raise ValueError("a claim has at least one line")
        object.__setattr__(self, "lines", tuple(sorted(self.lines, key=lambda ln: ln.line_no)))

    @property
    def member(self) -> ServiceLine:
        """The first line names the claim's subscriber and plan/group number."""
        return self.lines[0]

    @property
    def billing_provider_npi(self) -> str:
        return self.lines[0].provider_npi

    @property
    def net_fee(self) -> Decimal:
        return sum((line.net_fee for line in self.lines), start=ZERO)


@dataclass(frozen=True)
class LineAmounts:
    """FHIR ClaimResponse adjudication categories, plus the member's coinsurance share."""

    submitted: Decimal
    eligible: Decimal = ZERO
    deductible: Decimal = ZERO
    copay: Decimal = ZERO
    coinsurance: Decimal = ZERO
    benefit: Decimal = ZERO

    @property
    def member_responsibility(self) -> Decimal:
        return self.eligible - self.benefit


@dataclass(frozen=True)
class LineResult:
    line_no: int
    provider_npi: str
    procedure: str
    category: Category | None
    outcome: LineOutcome
    reason_codes: tuple[str, ...]
    net_fee: Decimal
    amounts: LineAmounts
    history_key: HistoryKey


@dataclass(frozen=True)
class ClaimTotals:
    net_fee: Decimal
    submitted: Decimal
    eligible: Decimal
    benefit: Decimal


@dataclass(frozen=True)
class UsageDelta:
    deductible: Decimal = ZERO
    benefit: Decimal = ZERO


@dataclass(frozen=True)
class ClaimResult:
    claim_id: UUID
    plan_id: str
    plan_version: int
    outcome: ClaimOutcome
    lines: tuple[LineResult, ...]
    totals: ClaimTotals
    billing_provider_npi: str
    # The histories after this claim, and what it added to each (the accumulator update).
    histories: Mapping[HistoryKey, BenefitHistory] = field(default_factory=dict)
    usage: Mapping[HistoryKey, UsageDelta] = field(default_factory=dict)

    @property
    def rejected(self) -> bool:
        return self.outcome == "error"

    def net_fee_by_provider(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for line in self.lines:
            totals[line.provider_npi] = totals.get(line.provider_npi, ZERO) + line.net_fee
        return totals


def history_key(plan: Plan, line: ServiceLine) -> HistoryKey:
    return HistoryKey(plan.plan_id, line.subscriber_number, plan.benefit_year(line.service_date))


def history_keys(plan: Plan, claim: ClaimToAdjudicate) -> set[HistoryKey]:
    """Every history the claim can touch: what the caller loads (and locks) before adjudicating."""
    return {history_key(plan, line) for line in claim.lines}


# --- denial rules: each looks at one line in its context and names a CARC, or passes -----


@dataclass(frozen=True)
class LineContext:
    plan: Plan
    claim: ClaimToAdjudicate
    line: ServiceLine
    category: Category | None
    history: BenefitHistory
    earlier_lines: Sequence[ServiceLine]


DenialRule = Callable[[LineContext], str | None]


def _same_member(ctx: LineContext) -> str | None:
    member = ctx.claim.member
    if (ctx.line.subscriber_number, ctx.line.plan_group.upper()) != (
        member.subscriber_number,
        member.plan_group.upper(),
    ):
        return reasons.LACKS_INFORMATION
    return None


def _coverage_period(ctx: LineContext) -> str | None:
    if ctx.line.service_date < ctx.plan.effective_from:
        return reasons.BEFORE_COVERAGE
    if ctx.plan.effective_to is not None and ctx.line.service_date > ctx.plan.effective_to:
        return reasons.AFTER_COVERAGE
    return None


def _duplicate(ctx: LineContext) -> str | None:
    service = ctx.line.as_service
    if ctx.history.has(service) or any(e.as_service == service for e in ctx.earlier_lines):
        return reasons.DUPLICATE
    return None


def _covered(ctx: LineContext) -> str | None:
    if (
        ctx.category is None
        or ctx.category not in ctx.plan.covered
        or ctx.line.procedure in ctx.plan.excluded_codes
    ):
        return reasons.NOT_COVERED
    return None


def _frequency(ctx: LineContext) -> str | None:
    for limit in ctx.plan.frequency_limits:
        if ctx.line.procedure in limit.codes and ctx.history.count_of(limit.codes) >= limit.count:
            return reasons.FREQUENCY
    return None


# Order matters: the first rule that fires is the line's reason.
DENIAL_RULES: tuple[DenialRule, ...] = (
    _same_member,
    _coverage_period,
    _duplicate,
    _covered,
    _frequency,
)


# --- pricing ----------------------------------------------------------------------------


def _price(ctx: LineContext) -> tuple[LineAmounts, tuple[str, ...]]:
    plan, line, history = ctx.plan, ctx.line, ctx.history
    assert ctx.category is not None, "uncategorised lines are denied before pricing"
    codes: list[str] = []
    eligible = min(line.provider_fees, line.allowed_fees)
    scheduled = plan.fee_schedule.get(line.procedure)
    if scheduled is not None and scheduled < eligible:
        eligible = scheduled
        codes.append(reasons.EXCEEDS_FEE_SCHEDULE)
    eligible = max(eligible, ZERO)

    deductible = ZERO
    if ctx.category not in plan.deductible_waived:
        left = max(plan.deductible - history.deductible_applied, ZERO)
        deductible = min(eligible, left)
    copay = min(max(line.member_copay, ZERO), eligible - deductible)
    base = eligible - deductible - copay
    share = (base * plan.plan_pays_percent(ctx.category) / HUNDRED).quantize(
        CENT, rounding=ROUND_HALF_UP
    )
    coinsurance = base - share
    benefit = share
    if plan.annual_maximum is not None:
        left = max(plan.annual_maximum - history.benefits_paid, ZERO)
        if share > left:
            benefit = left
            codes.append(reasons.BENEFIT_MAXIMUM)
    amounts = LineAmounts(
        submitted=line.provider_fees,
        eligible=eligible,
        deductible=deductible,
        copay=copay,
        coinsurance=coinsurance,
        benefit=benefit,
    )
    return amounts, tuple(codes)


def _outcome(amounts: LineAmounts, codes: tuple[str, ...]) -> LineOutcome:
    if reasons.BENEFIT_MAXIMUM in codes and amounts.benefit == ZERO:
        return "denied"
    return "reduced" if codes else "approved"


def _claim_outcome(lines: Sequence[LineResult]) -> ClaimOutcome:
    denied = sum(1 for line in lines if line.outcome == "denied")
    if denied == len(lines):
        return "error"
    return "partial" if denied else "complete"


def adjudicate(
    claim: ClaimToAdjudicate, plan: Plan, histories: Mapping[HistoryKey, BenefitHistory]
) -> ClaimResult:
    """Decide every line of `claim` under `plan`; `histories` holds what history_keys names
    (a missing key means nothing used yet in that benefit year)."""
    current = {key: histories.get(key, EMPTY_HISTORY) for key in history_keys(plan, claim)}
    usage: dict[HistoryKey, UsageDelta] = {}
    results: list[LineResult] = []
    for index, line in enumerate(claim.lines):
        key = history_key(plan, line)
        ctx = LineContext(
            plan=plan,
            claim=claim,
            line=line,
            category=category_of(line.procedure),
            history=current[key],
            earlier_lines=claim.lines[:index],
        )
        denial = next((code for rule in DENIAL_RULES if (code := rule(ctx)) is not None), None)
        if denial is not None:
            amounts = LineAmounts(submitted=line.provider_fees)
            codes: tuple[str, ...] = (denial,)
            outcome: LineOutcome = "denied"
        else:
            amounts, codes = _price(ctx)
            outcome = _outcome(amounts, codes)
        # A line priced but left without benefit by the annual maximum still met the
        # deductible with the member's money, so it counts toward this year's usage.
        if denial is None:
            current[key] = current[key].plus(line.as_service, amounts.deductible, amounts.benefit)
            before = usage.get(key, UsageDelta())
            usage[key] = UsageDelta(
                before.deductible + amounts.deductible, before.benefit + amounts.benefit
            )
        results.append(
            LineResult(
                line_no=line.line_no,
                provider_npi=line.provider_npi,
                procedure=line.procedure,
                category=ctx.category,
                outcome=outcome,
                reason_codes=codes,
                net_fee=line.net_fee,
                amounts=amounts,
                history_key=key,
            )
        )
    lines = tuple(results)
    totals = ClaimTotals(
        net_fee=sum((r.net_fee for r in lines), start=ZERO),
        submitted=sum((r.amounts.submitted for r in lines), start=ZERO),
        eligible=sum((r.amounts.eligible for r in lines), start=ZERO),
        benefit=sum((r.amounts.benefit for r in lines), start=ZERO),
    )
    return ClaimResult(
        claim_id=claim.claim_id,
        plan_id=plan.plan_id,
        plan_version=plan.version,
        outcome=_claim_outcome(lines),
        lines=lines,
        totals=totals,
        billing_provider_npi=claim.billing_provider_npi,
        histories=current,
        usage=usage,
    )

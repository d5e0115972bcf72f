"""Money exactness, by property: every amount is whole cents, totals are the sums of the lines,
no cent is lost to rounding, and limits hold across any sequence of claims."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from claimflow_adjudication.domain import (
    BenefitHistory,
    Category,
    ClaimToAdjudicate,
    FrequencyLimit,
    HistoryKey,
    Plan,
    ServiceLine,
    adjudicate,
)
from claimflow_shared.money import CENT

from .builders import claim

ZERO = Decimal("0.00")
money = st.decimals(min_value=0, max_value=5000, places=2, allow_nan=False, allow_infinity=False)
percent = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False)
codes = st.sampled_from(["D0120", "D0210", "D1110", "D2391", "D2740", "D4341", "D6010", "D8080"])


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    return Plan(
        plan_id="p",
        version=1,
        covered=frozenset(draw(st.sets(st.sampled_from(list(Category)), min_size=1))),
        coinsurance={c: draw(percent) for c in Category},
        deductible=draw(money),
        deductible_waived=frozenset(draw(st.sets(st.sampled_from(list(Category))))),
        annual_maximum=draw(st.none() | money),
        frequency_limits=(FrequencyLimit(frozenset({"D1110", "D0120"}), draw(st.integers(0, 3))),),
        fee_schedule=draw(st.dictionaries(codes, money, max_size=4)),
    )


@st.composite
def lines(draw: st.DrawFn, line_no: int) -> ServiceLine:
    return ServiceLine(
        line_no=line_no,
        service_date=date(2024, 1, 1) + timedelta(days=draw(st.integers(0, 500))),
        procedure=draw(codes),
        quadrant=draw(st.sampled_from([None, "UR", "UL", "LR", "LL"])),
        plan_group="GRP-1",
        subscriber_number="S1",
        provider_npi=draw(st.sampled_from(["1111111111", "2222222222"])),
        provider_fees=draw(money),
        allowed_fees=draw(money),
        member_coinsurance=draw(money),
        member_copay=draw(money),
    )


@st.composite
def claims(draw: st.DrawFn) -> ClaimToAdjudicate:
    count = draw(st.integers(1, 6))
    return claim(*(draw(lines(n)) for n in range(1, count + 1)))


def _whole_cents(value: Decimal) -> bool:
    return value == value.quantize(CENT)


@settings(max_examples=300, deadline=None)
@given(plans(), claims())
def test_every_amount_is_whole_cents_and_the_parts_add_up(plan: Plan, c: ClaimToAdjudicate) -> None:
    result = adjudicate(c, plan, {})
    for r, ln in zip(result.lines, c.lines, strict=True):
        a = r.amounts
        for value in (a.submitted, a.eligible, a.deductible, a.copay, a.coinsurance, a.benefit):
            assert _whole_cents(value)
            assert value >= ZERO
        assert (
            r.net_fee
            == ln.provider_fees + ln.member_coinsurance + ln.member_copay - ln.allowed_fees
        )
        assert a.eligible <= a.submitted
        assert a.benefit <= a.eligible
        # Nothing lost: what the plan pays plus what the member owes is exactly the eligible
        # amount, and short of the maximum the member's parts are deductible, copay, coinsurance.
        parts = a.deductible + a.copay + a.coinsurance + a.benefit
        if "119" in r.reason_codes:
            # The maximum moves part of the plan's share to the member.
            assert parts <= a.eligible
        elif r.outcome != "denied":
            assert parts == a.eligible
        assert a.member_responsibility + a.benefit == a.eligible
        if r.outcome == "denied":
            assert (a.eligible, a.benefit) == (ZERO, ZERO) or r.reason_codes == ("119",)
    assert result.totals.net_fee == sum((r.net_fee for r in result.lines), start=ZERO)
    assert result.totals.submitted == sum((r.amounts.submitted for r in result.lines), start=ZERO)
    assert result.totals.eligible == sum((r.amounts.eligible for r in result.lines), start=ZERO)
    assert result.totals.benefit == sum((r.amounts.benefit for r in result.lines), start=ZERO)
    assert sum(result.net_fee_by_provider().values(), start=ZERO) == result.totals.net_fee


@settings(max_examples=150, deadline=None)
@given(plans(), st.lists(claims(), min_size=1, max_size=6))
def test_deductible_and_maximum_hold_over_any_sequence_of_claims(
    plan: Plan, sequence: list[ClaimToAdjudicate]
) -> None:
    histories: dict[HistoryKey, BenefitHistory] = {}
    paid: dict[HistoryKey, Decimal] = {}
    deducted: dict[HistoryKey, Decimal] = {}
    for c in sequence:
        result = adjudicate(c, plan, histories)
        histories.update(result.histories)
        for r in result.lines:
            paid[r.history_key] = paid.get(r.history_key, ZERO) + r.amounts.benefit
            deducted[r.history_key] = deducted.get(r.history_key, ZERO) + r.amounts.deductible
    for key, total in paid.items():
        if plan.annual_maximum is not None:
            assert total <= plan.annual_maximum
        assert histories[key].benefits_paid == total
        assert deducted[key] <= plan.deductible
        assert histories[key].deductible_applied == deducted[key]

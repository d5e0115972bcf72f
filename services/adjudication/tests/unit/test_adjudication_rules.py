"""Each plan rule alone, then together, then across claims of the same subscriber."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from claimflow_adjudication.domain import (
    BenefitHistory,
    Category,
    FrequencyLimit,
    HistoryKey,
    PriorService,
    adjudicate,
    history_keys,
)
from claimflow_adjudication.domain.adjudicate import ClaimResult, ClaimToAdjudicate

from .builders import NPI, SUBSCRIBER, D, claim, line, plan


def run_in_order(p: object, *claims: ClaimToAdjudicate) -> list[ClaimResult]:
    """Adjudicate claims one after the other, carrying the history forward as the worker does."""
    from claimflow_adjudication.domain import Plan  # noqa: PLC0415

    assert isinstance(p, Plan)
    histories: dict[HistoryKey, BenefitHistory] = {}
    results = []
    for c in claims:
        result = adjudicate(c, p, histories)
        histories.update(result.histories)
        results.append(result)
    return results


def only_line(result: ClaimResult):  # type: ignore[no-untyped-def]
    assert len(result.lines) == 1
    return result.lines[0]


# --- the net fee -------------------------------------------------------------------------


def test_claim_1234_net_fees_and_results_under_the_grp_1000_plan() -> None:
    from pathlib import Path  # noqa: PLC0415

    from claimflow_adjudication.adapters.plans import load_plan_dir  # noqa: PLC0415

    plans = {
        e.plan.plan_id: e.plan
        for e in load_plan_dir(Path(__file__).parents[4] / "k8s" / "examples" / "benefitplans")
    }
    day = date(2018, 3, 28)
    c = claim(
        line(
            1,
            service_date=day,
            procedure="D0180",
            provider_fees=D("100.00"),
            allowed_fees=D("100.00"),
        ),
        line(
            2,
            service_date=day,
            procedure="D0210",
            provider_fees=D("108.00"),
            allowed_fees=D("108.00"),
        ),
        line(
            3,
            service_date=day,
            procedure="D4346",
            provider_fees=D("130.00"),
            allowed_fees=D("65.00"),
            member_coinsurance=D("16.25"),
        ),
        line(
            4,
            service_date=day,
            procedure="D4211",
            quadrant="UR",
            provider_fees=D("178.00"),
            allowed_fees=D("178.00"),
            member_coinsurance=D("35.60"),
        ),
    )
    result = adjudicate(c, plans["grp-1000"], {})
    assert [r.net_fee for r in result.lines] == [D("0.00"), D("0.00"), D("81.25"), D("35.60")]
    assert result.totals.net_fee == D("116.85")
    assert [r.outcome for r in result.lines] == ["reduced", "approved", "approved", "reduced"]
    assert [r.reason_codes for r in result.lines] == [("45",), (), (), ("45",)]
    assert [r.amounts.eligible for r in result.lines] == [
        D("95.00"),
        D("108.00"),
        D("65.00"),
        D("160.00"),
    ]
    # The deductible (25.00, waived for diagnostic) is taken from the first basic line.
    assert [r.amounts.deductible for r in result.lines] == [D(0), D(0), D("25.00"), D(0)]
    assert [r.amounts.benefit for r in result.lines] == [
        D("95.00"),
        D("108.00"),
        D("32.00"),
        D("128.00"),
    ]
    assert result.totals.benefit == D("363.00")
    assert result.outcome == "complete"
    assert (result.plan_id, result.plan_version) == ("grp-1000", 1)


def test_net_fee_is_designs_formula_whatever_the_outcome() -> None:
    ln = line(
        procedure="D8080",
        provider_fees=D("10.00"),
        allowed_fees=D("30.00"),
        member_coinsurance=D("1.10"),
        member_copay=D("2.20"),
    )
    result = adjudicate(claim(ln), plan(covered=frozenset({Category.BASIC})), {})
    assert only_line(result).outcome == "denied"
    assert only_line(result).net_fee == D("-16.70")


# --- each rule alone ---------------------------------------------------------------------


def test_a_covered_line_without_limits_is_approved_in_full() -> None:
    r = only_line(adjudicate(claim(line()), plan(), {}))
    assert r.outcome == "approved"
    assert r.reason_codes == ()
    assert (r.amounts.submitted, r.amounts.eligible, r.amounts.benefit) == (D(100), D(100), D(100))


def test_category_not_covered_is_denied_96() -> None:
    p = plan(covered=frozenset({Category.PREVENTIVE}))
    r = only_line(adjudicate(claim(line(procedure="D2740")), p, {}))
    assert (r.outcome, r.reason_codes) == ("denied", ("96",))
    assert (r.amounts.eligible, r.amounts.benefit) == (D(0), D(0))
    assert r.amounts.submitted == D("100.00")


def test_an_excluded_code_is_denied_96_even_in_a_covered_category() -> None:
    r = only_line(
        adjudicate(claim(line(procedure="D9972")), plan(excluded_codes=frozenset({"D9972"})), {})
    )
    assert (r.outcome, r.reason_codes) == ("denied", ("96",))


def test_a_code_outside_every_cdt_section_is_not_covered() -> None:
    r = only_line(adjudicate(claim(line(procedure="D0050")), plan(), {}))
    assert r.reason_codes == ("96",)


def test_fee_schedule_caps_the_eligible_amount_with_45() -> None:
    p = plan(fee_schedule={"D2391": D("80.00")})
    r = only_line(adjudicate(claim(line(allowed_fees=D("90.00"))), p, {}))
    assert (r.outcome, r.reason_codes) == ("reduced", ("45",))
    assert (r.amounts.eligible, r.amounts.benefit) == (D("80.00"), D("80.00"))


def test_fee_schedule_above_the_allowed_fee_changes_nothing() -> None:
    p = plan(fee_schedule={"D2391": D("120.00")})
    r = only_line(adjudicate(claim(line(allowed_fees=D("90.00"))), p, {}))
    assert (r.outcome, r.reason_codes, r.amounts.eligible) == ("approved", (), D("90.00"))


def test_eligible_never_exceeds_what_was_billed() -> None:
    r = only_line(
        adjudicate(claim(line(provider_fees=D("70.00"), allowed_fees=D("90.00"))), plan(), {})
    )
    assert r.amounts.eligible == D("70.00")


def test_coinsurance_splits_the_eligible_amount_exactly() -> None:
    p = plan(coinsurance={Category.BASIC: D(80)})
    r = only_line(adjudicate(claim(line(allowed_fees=D("33.33"), provider_fees=D("33.33"))), p, {}))
    # 80% of 33.33 = 26.664 -> 26.66 plan, 6.67 member: nothing lost.
    assert (r.amounts.benefit, r.amounts.coinsurance) == (D("26.66"), D("6.67"))
    assert r.amounts.benefit + r.amounts.coinsurance == r.amounts.eligible


def test_copay_comes_off_before_coinsurance() -> None:
    p = plan(coinsurance={Category.BASIC: D(50)})
    r = only_line(adjudicate(claim(line(member_copay=D("20.00"))), p, {}))
    assert (r.amounts.copay, r.amounts.benefit, r.amounts.coinsurance) == (D(20), D(40), D(40))


def test_deductible_applies_first_and_not_to_waived_categories() -> None:
    p = plan(deductible=D("50.00"), deductible_waived=frozenset({Category.PREVENTIVE}))
    preventive = only_line(adjudicate(claim(line(procedure="D1110")), p, {}))
    basic = only_line(adjudicate(claim(line(procedure="D2391")), p, {}))
    assert (preventive.amounts.deductible, preventive.amounts.benefit) == (D(0), D(100))
    assert (basic.amounts.deductible, basic.amounts.benefit) == (D(50), D(50))


def test_annual_maximum_cuts_the_benefit_with_119() -> None:
    r = only_line(adjudicate(claim(line()), plan(annual_maximum=D("60.00")), {}))
    assert (r.outcome, r.reason_codes, r.amounts.benefit) == ("reduced", ("119",), D("60.00"))


def test_annual_maximum_reached_denies_with_119() -> None:
    key = HistoryKey("test", SUBSCRIBER, date(2024, 1, 1))
    history = {key: BenefitHistory(benefits_paid=D("60.00"))}
    r = only_line(adjudicate(claim(line()), plan(annual_maximum=D("60.00")), history))
    assert (r.outcome, r.reason_codes, r.amounts.benefit) == ("denied", ("119",), D(0))


def test_frequency_limit_denies_beyond_the_count_with_151() -> None:
    p = plan(frequency_limits=(FrequencyLimit(frozenset({"D1110", "D1120"}), 2),))
    key = HistoryKey("test", SUBSCRIBER, date(2024, 1, 1))
    done = PriorService("D1120", date(2024, 1, 5), None, NPI)
    one = {key: BenefitHistory(services=(done,))}
    two = {key: BenefitHistory(services=(done, PriorService("D1110", date(2024, 2, 5), None, NPI)))}
    assert only_line(adjudicate(claim(line(procedure="D1110")), p, one)).outcome == "approved"
    r = only_line(adjudicate(claim(line(procedure="D1110")), p, two))
    assert (r.outcome, r.reason_codes) == ("denied", ("151",))


def test_duplicate_of_an_earlier_service_is_denied_18() -> None:
    key = HistoryKey("test", SUBSCRIBER, date(2024, 1, 1))
    same = PriorService("D2391", date(2024, 3, 28), None, NPI)
    r = only_line(adjudicate(claim(line()), plan(), {key: BenefitHistory(services=(same,))}))
    assert (r.outcome, r.reason_codes) == ("denied", ("18",))


def test_same_code_another_day_tooth_area_or_provider_is_no_duplicate() -> None:
    c = claim(
        line(1, quadrant="UR"),
        line(2, quadrant="UL"),
        line(3, quadrant="UR", service_date=date(2024, 3, 29)),
        line(4, quadrant="UR", provider_npi="1234567893"),
        line(5, quadrant="UR"),
    )
    result = adjudicate(c, plan(), {})
    assert [r.reason_codes for r in result.lines] == [(), (), (), (), ("18",)]
    assert result.outcome == "partial"


@pytest.mark.parametrize(
    ("service_date", "code"), [(date(2023, 12, 31), "26"), (date(2025, 1, 1), "27")]
)
def test_services_outside_the_coverage_period_are_denied(service_date: date, code: str) -> None:
    p = plan(effective_from=date(2024, 1, 1), effective_to=date(2024, 12, 31))
    r = only_line(adjudicate(claim(line(service_date=service_date)), p, {}))
    assert (r.outcome, r.reason_codes) == ("denied", (code,))


def test_a_line_of_another_subscriber_is_denied_16() -> None:
    result = adjudicate(claim(line(1), line(2, subscriber_number="999")), plan(), {})
    assert [r.reason_codes for r in result.lines] == [(), ("16",)]


# --- the claim ---------------------------------------------------------------------------


def test_claim_outcome_complete_partial_error() -> None:
    p = plan(covered=frozenset({Category.BASIC}))
    assert adjudicate(claim(line(1), line(2, procedure="D2392")), p, {}).outcome == "complete"
    assert adjudicate(claim(line(1), line(2, procedure="D1110")), p, {}).outcome == "partial"
    rejected = adjudicate(claim(line(1, procedure="D1110")), p, {})
    assert (rejected.outcome, rejected.rejected) == ("error", True)


def test_totals_are_the_sums_of_the_lines() -> None:
    p = plan(coinsurance={Category.BASIC: D(80)}, deductible=D("10.00"))
    result = adjudicate(claim(line(1), line(2, procedure="D2392", allowed_fees=D("55.55"))), p, {})
    assert result.totals.submitted == sum(r.amounts.submitted for r in result.lines)
    assert result.totals.eligible == sum(r.amounts.eligible for r in result.lines)
    assert result.totals.benefit == sum(r.amounts.benefit for r in result.lines)
    assert result.totals.net_fee == sum(r.net_fee for r in result.lines)


def test_rules_combined_first_denial_wins_and_pricing_stacks() -> None:
    p = plan(
        covered=frozenset({Category.PREVENTIVE, Category.BASIC}),
        coinsurance={Category.PREVENTIVE: D(100), Category.BASIC: D(80)},
        deductible=D("50.00"),
        deductible_waived=frozenset({Category.PREVENTIVE}),
        annual_maximum=D("100.00"),
        frequency_limits=(FrequencyLimit(frozenset({"D1110"}), 1),),
        fee_schedule={"D2391": D("90.00")},
    )
    c = claim(
        line(1, procedure="D1110", provider_fees=D("80.00"), allowed_fees=D("80.00")),
        line(2, procedure="D1110", provider_fees=D("80.00"), allowed_fees=D("80.00")),  # 18
        line(
            3,
            procedure="D1110",
            provider_fees=D("80.00"),
            allowed_fees=D("80.00"),
            service_date=date(2024, 4, 2),
        ),  # 151
        line(4, procedure="D2740"),  # major: 96
        line(5, procedure="D2391", provider_fees=D("120.00"), allowed_fees=D("110.00")),
    )
    result = adjudicate(c, p, {})
    codes = [r.reason_codes for r in result.lines]
    assert codes == [(), ("18",), ("151",), ("96",), ("45", "119")]
    last = result.lines[4].amounts
    # 110 -> 90 by the schedule; 50 deductible; 80% of 40 = 32, but only 20 of the 100 max left.
    assert (last.eligible, last.deductible, last.benefit) == (D(90), D(50), D(20))
    assert result.totals.benefit == D("100.00")
    assert result.outcome == "partial"


# --- across claims -----------------------------------------------------------------------


def test_deductible_is_met_once_across_claims_in_a_benefit_year() -> None:
    p = plan(deductible=D("50.00"))
    first, second, third = run_in_order(
        p,
        *(
            claim(line(allowed_fees=D("30.00"), provider_fees=D("30.00"), quadrant=q))
            for q in ("UR", "UL", "LR")
        ),
    )
    assert [only_line(r).amounts.deductible for r in (first, second, third)] == [D(30), D(20), D(0)]
    assert [only_line(r).amounts.benefit for r in (first, second, third)] == [D(0), D(10), D(30)]


def test_a_new_benefit_year_starts_a_new_deductible_and_maximum() -> None:
    p = plan(deductible=D("50.00"), annual_maximum=D("60.00"), benefit_year_start_month=7)
    june, july = run_in_order(
        p,
        claim(line(service_date=date(2024, 6, 30))),
        claim(line(service_date=date(2024, 7, 1))),
    )
    assert only_line(june).amounts.deductible == only_line(july).amounts.deductible == D(50)
    assert only_line(june).amounts.benefit == only_line(july).amounts.benefit == D(50)
    assert only_line(june).history_key.benefit_year == date(2023, 7, 1)
    assert only_line(july).history_key.benefit_year == date(2024, 7, 1)


def test_annual_maximum_holds_across_claims() -> None:
    p = plan(annual_maximum=D("250.00"))
    results = run_in_order(p, *(claim(line(quadrant=q)) for q in ("UR", "UL", "LR", "LL")))
    assert [only_line(r).amounts.benefit for r in results] == [D(100), D(100), D(50), D(0)]
    assert [only_line(r).reason_codes for r in results] == [(), (), ("119",), ("119",)]
    assert sum(r.totals.benefit for r in results) == D("250.00")


def test_frequency_limit_within_one_claim() -> None:
    p = plan(frequency_limits=(FrequencyLimit(frozenset({"D1110"}), 2),))
    c = claim(*(line(n, procedure="D1110", service_date=date(2024, n, 1)) for n in (1, 2, 3)))
    assert [r.reason_codes for r in adjudicate(c, p, {}).lines] == [(), (), ("151",)]


def test_frequency_limit_across_claims_and_denied_lines_do_not_count() -> None:
    p = plan(
        frequency_limits=(FrequencyLimit(frozenset({"D1110"}), 2),),
        effective_from=date(2024, 2, 1),
    )
    results = run_in_order(
        p,
        claim(line(procedure="D1110", service_date=date(2024, 1, 10))),  # 26: not counted
        claim(line(procedure="D1110", service_date=date(2024, 2, 10))),
        claim(line(procedure="D1110", service_date=date(2024, 5, 10))),
        claim(line(procedure="D1110", service_date=date(2024, 9, 10))),
        claim(line(procedure="D1110", service_date=date(2025, 1, 10))),  # next benefit year
    )
    assert [only_line(r).reason_codes for r in results] == [("26",), (), (), ("151",), ()]


def test_history_keys_name_every_benefit_year_the_claim_touches() -> None:
    c = claim(line(1, service_date=date(2023, 12, 31)), line(2, service_date=date(2024, 1, 2)))
    years = {k.benefit_year for k in history_keys(plan(), c)}
    assert years == {date(2023, 1, 1), date(2024, 1, 1)}


def test_usage_reports_what_the_claim_added_per_history() -> None:
    p = plan(deductible=D("10.00"))
    result = adjudicate(claim(line(1), line(2, procedure="D2392")), p, {})
    (key,) = result.usage
    assert result.usage[key].deductible == D("10.00")
    assert result.usage[key].benefit == D("190.00")
    assert result.histories[key].benefits_paid == D("190.00")
    assert len(result.histories[key].services) == 2


def test_money_must_be_exact_to_the_cent() -> None:
    with pytest.raises(ValueError, match="exact to the cent"):
        line(provider_fees=Decimal("1.005"))
    with pytest.raises(TypeError):
        line(provider_fees=1.5)

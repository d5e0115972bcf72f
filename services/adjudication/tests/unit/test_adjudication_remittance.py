"""835s from adjudicated claims: valid for pyx12's stock X221A1 map, balanced, reversals
negated, every CARC under its group."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from claimflow_adjudication.adapters.plans import load_plan_dir
from claimflow_adjudication.domain import Category, FrequencyLimit, adjudicate
from claimflow_adjudication.domain.adjudicate import ClaimToAdjudicate
from claimflow_adjudication.domain.remittance import (
    GROUPS,
    Payer,
    ProviderAdjustment,
    Remittance,
    RemittanceClaim,
    amount,
    build_835,
    forward_balance,
    remitted_claim,
)

from .builders import NPI, SUBSCRIBER, D, claim, line, plan
from .x12 import pyx12_errors, segments

PAYER = Payer(
    name="CLAIMFLOW DENTAL PLAN",
    tin="999999999",
    interchange_id="CLAIMFLOW",
    address="1 CLAIMS WAY",
    city="SPRINGFIELD",
    state="IL",
    postal_code="62701",
    contact_phone="8005550100",
)
AT = datetime(2024, 4, 2, 9, 30, tzinfo=UTC)


def grp_1000():  # type: ignore[no-untyped-def]
    plans = {
        e.plan.plan_id: e.plan
        for e in load_plan_dir(Path(__file__).parents[4] / "k8s" / "examples" / "benefitplans")
    }
    return plans["grp-1000"]


def claim_1234() -> ClaimToAdjudicate:
    day = date(2018, 3, 28)
    return claim(
        line(1, service_date=day, procedure="D0180"),
        line(2, service_date=day, procedure="D0210", provider_fees=D("108.00"),
             allowed_fees=D("108.00")),
        line(3, service_date=day, procedure="D4346", provider_fees=D("130.00"),
             allowed_fees=D("65.00"), member_coinsurance=D("16.25")),
        line(4, service_date=day, procedure="D4211", quadrant="UR", provider_fees=D("178.00"),
             allowed_fees=D("178.00"), member_coinsurance=D("35.60")),
    )  # fmt: skip


def paid_1234(reversal: bool = False) -> RemittanceClaim:
    c = claim_1234()
    return remitted_claim(c, adjudicate(c, grp_1000(), {}), reversal=reversal)


def remittance(*claims: RemittanceClaim, plb: tuple[ProviderAdjustment, ...] = ()) -> Remittance:
    return Remittance(PAYER, NPI, 42, AT, claims, plb)


def money(element: str) -> Decimal:
    return Decimal(element)


def assert_balanced(text: str) -> None:
    """BPR02 = sum CLP04 - sum PLB; each claim and each line: charge - paid = adjustments."""
    (bpr,) = segments(text, "BPR")
    clp = segments(text, "CLP")
    plb = segments(text, "PLB")
    assert money(bpr[2]) == sum((money(s[4]) for s in clp), start=D(0)) - sum(
        (money(s[4]) for s in plb), start=D(0)
    )
    claim_segments: list[list[list[str]]] = []
    for s in segments(text):
        if s[0] == "CLP":
            claim_segments.append([])
        if claim_segments and s[0] not in ("PLB", "SE", "GE", "IEA"):
            claim_segments[-1].append(s)
    for one in claim_segments:
        charge, paid = money(one[0][3]), money(one[0][4])
        cas = sum((money(x) for s in one if s[0] == "CAS" for x in s[3::3]), start=D(0))
        assert charge - paid == cas
        patient = sum(
            (money(x) for s in one if s[0] == "CAS" and s[1] == "PR" for x in s[3::3]),
            start=D(0),
        )
        assert money(one[0][5]) == patient
        svc = [s for s in one if s[0] == "SVC"]
        assert sum((money(s[2]) for s in svc), start=D(0)) == charge
        assert sum((money(s[3]) for s in svc), start=D(0)) == paid


def test_claim_1234_paid_under_grp_1000_is_a_valid_balanced_835() -> None:
    c = paid_1234()
    text = build_835(remittance(c))
    assert pyx12_errors(text) == []
    assert_balanced(text)
    # The net fees of the claim travel with it: DESIGN's figures, not X12 amounts.
    assert [ln.net_fee for ln in c.lines] == [D("0.00"), D("0.00"), D("81.25"), D("35.60")]
    assert c.net_fee == remittance(c).net_fee == D("116.85")
    (clp,) = segments(text, "CLP")
    # Charged 516.00, paid the benefit 363.00, the member owes 25.00 + 8.00 + 32.00.
    assert clp[1:8] == [str(c.claim_id), "1", "516", "363", "65", "12", str(c.claim_id)]
    assert segments(text, "BPR")[0][1:5] == ["I", "363", "C", "NON"]
    assert [s[1:4] for s in segments(text, "SVC")] == [
        ["AD:D0180", "100", "95"],
        ["AD:D0210", "108", "108"],
        ["AD:D4346", "130", "32"],
        ["AD:D4211", "178", "128"],
    ]
    assert segments(text, "CAS") == [
        ["CAS", "CO", "45", "5"],
        ["CAS", "CO", "45", "65"],
        ["CAS", "PR", "1", "25", "", "2", "8"],
        ["CAS", "CO", "45", "18"],
        ["CAS", "PR", "2", "32"],
    ]
    assert [s[1:] for s in segments(text, "DTM") if s[1] == "472"] == [["472", "20180328"]] * 4
    assert segments(text, "NM1")[0] == ["NM1", "QC", "1", "", "", "", "", "", "MI", SUBSCRIBER]


def test_the_envelope_counts_and_control_numbers_agree() -> None:
    text = build_835(remittance(paid_1234(), paid_1234()))
    all_segments = segments(text)
    st = next(i for i, s in enumerate(all_segments) if s[0] == "ST")
    se = next(i for i, s in enumerate(all_segments) if s[0] == "SE")
    assert int(all_segments[se][1]) == se - st + 1
    assert all_segments[se][2] == all_segments[st][2]
    isa, iea = segments(text, "ISA")[0], segments(text, "IEA")[0]
    assert isa[13] == iea[2] == "000000042"
    assert segments(text, "GS")[0][6] == segments(text, "GE")[0][2] == "42"
    assert segments(text, "TRN")[0][1:] == ["1", "000000042", "1999999999"]
    assert len(isa) == 17
    assert all(len(isa[i]) == 15 for i in (6, 8))


def test_a_reversal_negates_every_amount_and_nets_the_payment_to_zero() -> None:
    paid, reversed_ = paid_1234(), paid_1234(reversal=True)
    alone = build_835(remittance(reversed_, plb=(forward_balance(reversed_.paid, D(0), "1"),)))
    assert pyx12_errors(alone) == []
    assert_balanced(alone)
    (clp,) = segments(alone, "CLP")
    assert clp[2:6] == ["22", "-516", "-363", "-65"]
    assert [s[2:4] for s in segments(alone, "SVC")] == [
        ["-100", "-95"],
        ["-108", "-108"],
        ["-130", "-32"],
        ["-178", "-128"],
    ]
    assert ["CAS", "PR", "1", "-25", "", "2", "-8"] in segments(alone, "CAS")
    # Nothing to pay: notification only, the shortfall forwarded (PLB FB, negative).
    assert segments(alone, "BPR")[0][1:3] == ["H", "0"]
    assert segments(alone, "PLB")[0][3:] == ["FB:1", "-363"]
    assert reversed_.net_fee == D("-116.85")

    both = build_835(remittance(paid, reversed_))
    assert pyx12_errors(both) == []
    assert_balanced(both)
    assert segments(both, "BPR")[0][1:3] == ["H", "0"]


def test_a_forwarded_balance_is_recovered_from_the_next_payment() -> None:
    paid = paid_1234()
    recovery = forward_balance(paid.paid, D("100.00"), "2")
    assert recovery == ProviderAdjustment("FB", "2", D("100.00"))
    text = build_835(remittance(paid, plb=(recovery,)))
    assert pyx12_errors(text) == []
    assert_balanced(text)
    assert segments(text, "BPR")[0][2] == "263"
    assert forward_balance(D("50.00"), D("80.00"), "3") == ProviderAdjustment("FB", "3", D("50.00"))
    assert forward_balance(D("50.00"), D(0), "3") is None
    with pytest.raises(ValueError, match="negative"):
        remittance(paid_1234(reversal=True))


def test_every_carc_goes_under_its_group_with_the_lines_whole_charge() -> None:
    p = plan(
        covered=frozenset({Category.DIAGNOSTIC, Category.BASIC}),
        frequency_limits=(FrequencyLimit(frozenset({"D0120"}), 1),),
        effective_from=date(2024, 1, 1),
        annual_maximum=D("150.00"),
    )
    c = claim(
        line(1, procedure="D0120", provider_fees=D("40.00"), allowed_fees=D("40.00")),
        line(2, procedure="D0120", provider_fees=D("40.00"), allowed_fees=D("40.00")),
        line(3, procedure="D8080", provider_fees=D("900.00"), allowed_fees=D("900.00")),
        line(4, procedure="D2391", service_date=date(2023, 5, 1)),
        line(5, procedure="D2391", subscriber_number="OTHER"),
        line(
            6, procedure="D2391", quadrant="UL", provider_fees=D("200.00"), allowed_fees=D("200.00")
        ),
        line(7, procedure="D2392", provider_fees=D("60.00"), allowed_fees=D("60.00")),
    )
    result = adjudicate(c, p, {})
    codes = [r.reason_codes for r in result.lines]
    assert codes == [(), ("18",), ("96",), ("26",), ("16",), ("119",), ("119",)]
    text = build_835(remittance(remitted_claim(c, result)))
    assert pyx12_errors(text) == []
    assert_balanced(text)
    assert segments(text, "CAS") == [
        ["CAS", "OA", "18", "40"],
        ["CAS", "PR", "96", "900"],
        ["CAS", "PR", "26", "100"],
        ["CAS", "CO", "16", "100"],
        ["CAS", "PR", "119", "90"],
        ["CAS", "PR", "119", "60"],
    ]
    assert {GROUPS[code] for code in ("16", "45")} == {"CO"}
    assert GROUPS["27"] == GROUPS["151"] == "PR"


@pytest.mark.parametrize(
    ("value", "text"),
    [(D("116.85"), "116.85"), (D("35.60"), "35.6"), (D("100.00"), "100"), (D("0.00"), "0"),
     (D("-0.50"), "-0.5"), (D("-363.00"), "-363")],
)  # fmt: skip
def test_amounts_are_x12_decimals(value: Decimal, text: str) -> None:
    assert amount(value) == text


def test_a_value_holding_a_separator_is_refused() -> None:
    c = claim_1234()
    bad = remitted_claim(c, adjudicate(c, grp_1000(), {}))
    bad = RemittanceClaim(bad.claim_id, "37*30", bad.lines)
    with pytest.raises(ValueError, match="separator"):
        build_835(remittance(bad))

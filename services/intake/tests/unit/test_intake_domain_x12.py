"""837 Dental interchanges read into submissions: the 999, the envelope, IG and business rules."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from claimflow_intake.domain import ValidationPolicy, validate_claim
from claimflow_intake.domain.x12_claims import X12ClaimsResult, read_dental_claims
from claimflow_shared.x12 import read_interchange
from claimflow_shared.x12.testing import dental_interchange

REPO = Path(__file__).parents[4]
FIXTURES = Path(__file__).parents[1] / "fixtures" / "x12"
TODAY = date(2024, 1, 1)
PHI = ("3730189502", "S000000000", "S000000001", "S000000002", "20180328", "2018-03-28")


def read(name: str) -> X12ClaimsResult:
    path = REPO / "examples" / "x12" / name if name == "claim_1234.837" else FIXTURES / name
    with path.open(encoding="ascii") as stream:
        return read_dental_claims(stream)


@pytest.fixture(scope="module")
def claim_1234() -> X12ClaimsResult:
    return read("claim_1234.837")


def ack_segments(result: X12ClaimsResult) -> list[list[str]]:
    assert result.ack is not None
    return [seg.strip().split("*") for seg in result.ack.split("~") if seg.strip()]


def test_claim_1234_is_accepted_with_its_four_lines(claim_1234: X12ClaimsResult) -> None:
    assert claim_1234.status == "A"
    assert claim_1234.storable
    assert claim_1234.sender == "ZZ:SMILEDENTAL"
    assert claim_1234.control_number == "000000101"
    (claim,) = claim_1234.claims
    assert (claim.claim_id, claim.transaction, claim.segment_position) == ("1234", "0001", 18)
    assert claim.errors == ()
    assert claim.submission is not None
    checked = validate_claim(claim.submission, ValidationPolicy(), TODAY)
    assert checked.claim is not None, checked.violations
    lines = checked.claim.lines
    assert [line.submitted_procedure for line in lines] == ["D0180", "D0210", "D4346", "D4211"]
    assert [line.quadrant for line in lines] == [None, None, None, "UR"]
    assert {line.plan_group for line in lines} == {"GRP-1000"}
    assert {line.subscriber_number for line in lines} == {"3730189502"}
    assert {line.provider_npi for line in lines} == {"1497775530"}
    assert {line.service_date for line in lines} == {date(2018, 3, 28)}
    assert [line.provider_fees for line in lines] == [
        Decimal(v) for v in ("100", "108", "130", "178")
    ]
    assert [line.allowed_fees for line in lines] == [
        Decimal(v) for v in ("100", "108", "65", "178")
    ]
    assert [line.member_coinsurance for line in lines] == [
        Decimal(v) for v in ("0", "0", "16.25", "35.60")
    ]
    assert [line.net_fee for line in lines] == [Decimal(v) for v in ("0", "0", "81.25", "35.60")]
    assert checked.claim.total_net_fee == Decimal("116.85")
    assert checked.claim.external_id == "1234"


def test_the_999_accepts_claim_1234(claim_1234: X12ClaimsResult) -> None:
    segments = ack_segments(claim_1234)
    assert ["AK1", "HC", "101", "005010X224A2"] in segments
    assert ["IK5", "A"] in segments
    assert ["AK9", "A", "1", "1", "1"] in segments


def test_a_multi_claim_interchange_yields_every_claim() -> None:
    result = read("multi_claim.837")
    assert result.status == "A"
    assert [claim.claim_id for claim in result.claims] == ["C000000", "C000001", "C000002"]
    assert len(result.submissions()) == 3
    for submission in result.submissions():
        assert validate_claim(submission, ValidationPolicy(), TODAY).ok


def test_an_envelope_error_rejects_the_whole_interchange() -> None:
    result = read("envelope_se_count.837")
    assert result.status == "R"
    assert not result.storable
    assert result.submissions() == []
    assert [(e.level, e.code) for e in result.interchange.errors] == [("transaction", "4")]
    assert ["IK5", "R", "4"] in ack_segments(result)


def test_an_interchange_control_number_mismatch_is_rejected() -> None:
    text = dental_interchange(1, control=7).replace("IEA*1*000000007", "IEA*1*000000008")
    result = read_dental_claims(text)
    assert result.status == "R"
    assert not result.storable
    assert ("interchange", "001") in {(e.level, e.code) for e in result.interchange.errors}


def test_text_that_is_not_x12_is_rejected_without_an_ack() -> None:
    result = read_dental_claims("claim,amount\n1234,100\n")
    assert result.status == "R"
    assert result.ack is None
    assert result.claims == ()


def test_one_invalid_claim_among_good_ones_is_accepted_with_errors() -> None:
    result = read("one_bad_claim.837")
    assert result.status == "E"
    assert result.storable
    good, bad, other = result.claims
    assert good.errors == other.errors == ()
    assert bad.submission is None
    (error,) = bad.errors
    assert (error.segment_id, error.element_position, error.code, error.loop) == (
        "SV3",
        2,
        "1",
        "2400",
    )
    assert bad.first_line <= error.line <= bad.last_line  # type: ignore[operator]
    assert [claim.claim_id for claim in result.claims if claim.submission] == [
        "C000000",
        "C000002",
    ]
    segments = ack_segments(result)
    assert ["IK3", "SV3", str(error.segment_position), "", "8"] in segments
    assert ["IK4", "2", "782", "1"] in segments
    assert ["IK5", "E", "5"] in segments
    assert segments[segments.index(["IK5", "E", "5"]) + 1][:2] == ["AK9", "E"]
    # The 999 is itself a valid 999 by pyx12's stock X231A1 map.
    assert result.ack is not None
    checked = read_interchange(result.ack)
    assert checked.guide == "005010X231A1"
    assert checked.errors == []


def test_a_claim_valid_in_x12_can_still_fail_claimflows_rules() -> None:
    result = read("business_rule_npi.837")
    assert result.status == "A"
    first, second, _third = (claim.submission for claim in result.claims)
    assert first is not None
    assert second is not None
    assert validate_claim(first, ValidationPolicy(), TODAY).ok
    checked = validate_claim(second, ValidationPolicy(), TODAY)
    assert not checked.ok
    assert {(v.field, v.rule) for v in checked.violations} == {("provider_npi", "npi-luhn")}


def test_a_line_without_a_procedure_charge_or_date_reports_each_field_as_required() -> None:
    text = dental_interchange(1).replace("DTP*472*D8*20180328~\n", "")
    result = read_dental_claims(text)
    (claim,) = result.claims
    assert claim.submission is not None
    checked = validate_claim(claim.submission, ValidationPolicy(), TODAY)
    assert {(v.line, v.field, v.rule) for v in checked.violations} == {
        (index, "service_date", "required") for index in range(4)
    }


@pytest.mark.parametrize(
    ("oral_cavity", "quadrant"),
    [("10", "UR"), ("20", "UL"), ("30", "LL"), ("40", "LR"), ("01", "01"), ("10:20", "10:20")],
)
def test_the_oral_cavity_designation_maps_to_claimflows_quadrants(
    oral_cavity: str, quadrant: str
) -> None:
    text = dental_interchange(1).replace(
        "SV3*AD:D4211*178**10**1", f"SV3*AD:D4211*178**{oral_cavity}**1"
    )
    (claim,) = read_dental_claims(text).claims
    assert claim.submission is not None
    assert claim.submission["lines"][3]["quadrant"] == quadrant


def test_no_error_message_carries_phi() -> None:
    text = (
        dental_interchange(3)
        .replace("DTP*472*D8*20180328", "DTP*472*D8*20181328", 1)
        .replace("NM1*IL*1*DOE*JANE****MI*S000000001", "NM1*IL*1*DOE*JANE****XX*S000000001", 1)
    )
    result = read_dental_claims(text)
    errors = [e for claim in result.claims for e in claim.errors] + result.interchange.errors
    assert len(errors) >= 2
    for error in errors:
        assert not any(value in error.message for value in PHI), error
    assert result.ack is not None
    assert not any(value in result.ack for value in (*PHI, "20181328"))


def test_pyx12s_own_log_which_quotes_the_data_reaches_no_handler() -> None:
    """The services log through handlers on the root logger; pyx12's records (which quote
    the values they are about) must never get there."""
    reached: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = reached.append  # type: ignore[method-assign]
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        result = read("one_bad_claim.837")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert result.status == "E"
    assert [r for r in reached if r.name.startswith("pyx12")] == []


def test_a_set_without_its_convention_in_st03_is_rejected_with_a_valid_999() -> None:
    text = (REPO / "examples" / "x12" / "claim_1234.837").read_text()
    result = read_dental_claims(text.replace("ST*837*0001*005010X224A2~", "ST*837*0001~"))
    assert result.status == "R"
    assert not result.storable
    assert [(e.level, e.code) for e in result.interchange.errors] == [("transaction", "I6")]
    assert ["IK5", "R", "I6"] in ack_segments(result)
    assert ["AK9", "R", "1", "1", "0"] in ack_segments(result)
    assert read_interchange(result.ack or "").errors == []


def test_in_a_file_of_many_bad_claims_each_claim_gets_only_its_own_findings() -> None:
    # Every third claim has an impossible service date in its 2300 loop.
    text = dental_interchange(30)
    claims = text.split("CLM*")
    bad = {index for index in range(30) if index % 3 == 1}
    for index in bad:
        claims[index + 1] = claims[index + 1].replace("DTP*472*D8*20180328", "DTP*472*D8*2018", 1)
    result = read_dental_claims("CLM*".join(claims))
    assert result.status == "E"
    assert len(result.claims) == 30
    for index, claim in enumerate(result.claims):
        if index in bad:
            assert claim.submission is None
            assert [error.segment_id for error in claim.errors] == ["DTP"]
            assert all(claim.first_line <= e.line <= claim.last_line for e in claim.errors)  # type: ignore[operator]
        else:
            assert claim.errors == ()
            assert claim.submission is not None
    lines = [error.line for claim in result.claims for error in claim.errors]
    assert sorted(lines) == sorted(e.line for e in result.interchange.errors)


def test_findings_outside_every_claim_belong_to_no_claim_and_reject_the_set() -> None:
    # An unknown gender code in each subscriber's 2010BA loop: above the 2300 claim loops.
    result = read_dental_claims(
        dental_interchange(5).replace("DMG*D8*19800101*F", "DMG*D8*19800101*Q")
    )
    assert result.status == "R"
    assert len(result.interchange.errors) == 5
    assert {error.loop for error in result.interchange.errors} == {"2010BA"}
    assert all(claim.errors == () for claim in result.claims)

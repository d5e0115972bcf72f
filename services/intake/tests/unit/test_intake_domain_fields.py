import csv
from pathlib import Path

import pytest

from claimflow_intake.domain import (
    CLAIM_NUMBER_ALIASES,
    FIELD_ALIASES,
    LINE_FIELDS,
    MONEY_FIELDS,
    REQUIRED_FIELDS,
    is_claim_number_name,
    normalise_field_name,
)

EXAMPLE_CSV = Path(__file__).resolve().parents[4] / "examples" / "claim_1234.csv"


def test_canonical_order_is_the_documented_one() -> None:
    assert LINE_FIELDS == (
        "service_date",
        "submitted_procedure",
        "quadrant",
        "plan_group",
        "subscriber_number",
        "provider_npi",
        "provider_fees",
        "allowed_fees",
        "member_coinsurance",
        "member_copay",
    )


def test_money_and_required_fields() -> None:
    assert {"provider_fees", "allowed_fees", "member_coinsurance", "member_copay"} == MONEY_FIELDS
    assert set(LINE_FIELDS) - {"quadrant"} == REQUIRED_FIELDS


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("service date", "service_date"),
        ("Service Date", "service_date"),
        ("service_date", "service_date"),
        ("Date of Service", "service_date"),
        ("DOS", "service_date"),
        ("submitted procedure", "submitted_procedure"),
        ("Procedure Code", "submitted_procedure"),
        ("CDT", "submitted_procedure"),
        ("quadrant", "quadrant"),
        ("Quad", "quadrant"),
        ("Plan/Group #", "plan_group"),
        ("plan group", "plan_group"),
        ("Group Number", "plan_group"),
        ("Subscriber#", "subscriber_number"),
        ("subscriber number", "subscriber_number"),
        ("Subscriber ID", "subscriber_number"),
        ("Provider NPI", "provider_npi"),
        ("NPI", "provider_npi"),
        ("provider fees", "provider_fees"),
        ("Allowed fees", "allowed_fees"),
        ("member coinsurance", "member_coinsurance"),
        ("member copay", "member_copay"),
        ("  MEMBER-COPAY  ", "member_copay"),
    ],
)
def test_normalise_field_name_accepts_variants(name: str, expected: str) -> None:
    assert normalise_field_name(name) == expected


@pytest.mark.parametrize("canonical", LINE_FIELDS)
def test_canonical_names_map_to_themselves(canonical: str) -> None:
    assert normalise_field_name(canonical) == canonical


@pytest.mark.parametrize("name", ["", "   ", "#", "claim number", "patient name", "fee schedule"])
def test_normalise_field_name_rejects_unknown(name: str) -> None:
    assert normalise_field_name(name) is None


def test_real_header_of_claim_1234_maps_to_all_fields_in_order() -> None:
    with EXAMPLE_CSV.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert [normalise_field_name(cell) for cell in header] == list(LINE_FIELDS)


@pytest.mark.parametrize(
    "name", ["claim number", "Claim #", "claim_id", "claimnumber", "claimno", "CLAIM NO."]
)
def test_claim_number_aliases(name: str) -> None:
    assert is_claim_number_name(name)
    assert normalise_field_name(name) is None


def test_claim_number_and_field_aliases_do_not_overlap() -> None:
    assert not CLAIM_NUMBER_ALIASES & FIELD_ALIASES.keys()
    assert not is_claim_number_name("service date")

from datetime import date
from pathlib import Path

import pytest

from claimflow_intake.domain import (
    CsvParseResult,
    ValidationPolicy,
    parse_claims_csv,
    validate_claim,
)

EXAMPLE_CSV = Path(__file__).resolve().parents[4] / "examples" / "claim_1234.csv"
HEADER = (
    'service date,"submitted procedure",quadrant,"Plan/Group #",Subscriber#,"Provider NPI",'
    '"provider fees","Allowed fees","member coinsurance","member copay"'
)
ROW = "3/28/18 0:00,D0180,,GRP-1000,3730189502,1497775530,$100.00 ,$100.00 ,$0.00 ,$0.00 "


def found(result: CsvParseResult) -> list[tuple[int | None, str | None, str]]:
    return [(v.line, v.field, v.rule) for v in result.violations]


def test_claim_1234_net_fees() -> None:
    parsed = parse_claims_csv(EXAMPLE_CSV.read_text(encoding="utf-8"))
    assert parsed.ok
    assert len(parsed.submissions) == 1
    submission = parsed.submissions[0]
    assert submission["external_id"] is None
    result = validate_claim(submission, ValidationPolicy(), date(2024, 6, 1))
    assert result.violations == ()
    assert result.claim is not None
    assert [str(line.net_fee) for line in result.claim.lines] == ["0.00", "0.00", "81.25", "35.60"]
    assert str(result.claim.total_net_fee) == "116.85"
    assert [line.quadrant for line in result.claim.lines] == [None, None, None, "UR"]


def test_lines_use_canonical_names_and_raw_values() -> None:
    parsed = parse_claims_csv(f"{HEADER}\n{ROW}\n")
    assert parsed.submissions == [
        {
            "external_id": None,
            "lines": [
                {
                    "service_date": "3/28/18 0:00",
                    "submitted_procedure": "D0180",
                    "quadrant": "",
                    "plan_group": "GRP-1000",
                    "subscriber_number": "3730189502",
                    "provider_npi": "1497775530",
                    "provider_fees": "$100.00 ",
                    "allowed_fees": "$100.00 ",
                    "member_coinsurance": "$0.00 ",
                    "member_copay": "$0.00 ",
                }
            ],
        }
    ]


def test_bom_crlf_blank_lines_and_padding() -> None:
    text = f"\ufeff{HEADER},,\r\n\r\n{ROW}\r\n,,,,\r\n{ROW},,\r\n\r\n"
    parsed = parse_claims_csv(text)
    assert parsed.ok
    assert len(parsed.submissions[0]["lines"]) == 2


def test_quoted_cells_and_unknown_columns() -> None:
    row = ROW.replace("$100.00 ,$100.00", '"$1,100.00","$1,100.00"')
    text = f'{HEADER},notes\n{row},"a, b"\n'
    parsed = parse_claims_csv(text)
    assert parsed.ok
    line = parsed.submissions[0]["lines"][0]
    assert line["provider_fees"] == "$1,100.00"
    assert "notes" not in line


def test_claim_number_column_groups_rows_in_first_seen_order() -> None:
    rows = [f"B-2,{ROW}", f"A-1,{ROW}", f" B-2 ,{ROW.replace('D0180', 'D0210')}"]
    parsed = parse_claims_csv("\n".join([f"Claim #,{HEADER}", *rows]))
    assert parsed.ok
    assert [s["external_id"] for s in parsed.submissions] == ["B-2", "A-1"]
    assert [line["submitted_procedure"] for line in parsed.submissions[0]["lines"]] == [
        "D0180",
        "D0210",
    ]
    for submission in parsed.submissions:
        assert validate_claim(submission, ValidationPolicy(), date(2024, 6, 1)).ok


@pytest.mark.parametrize("name", ["claim number", "claim_id", "claimnumber", "claimno"])
def test_claim_number_aliases(name: str) -> None:
    parsed = parse_claims_csv(f"{HEADER},{name}\n{ROW},C-9\n")
    assert [s["external_id"] for s in parsed.submissions] == ["C-9"]


def test_missing_claim_number_in_a_row() -> None:
    parsed = parse_claims_csv(f"claim number,{HEADER}\nC-1,{ROW}\n  ,{ROW}\n")
    assert found(parsed) == [(1, "external_id", "required")]
    assert parsed.submissions == []


def test_missing_required_columns() -> None:
    header = "service date,quadrant,Subscriber#,provider fees,allowed fees,member copay"
    parsed = parse_claims_csv(f"{header}\n3/28/18,UR,1,1,1,1\n")
    assert found(parsed) == [
        (None, "submitted_procedure", "csv-missing-column"),
        (None, "plan_group", "csv-missing-column"),
        (None, "provider_npi", "csv-missing-column"),
        (None, "member_coinsurance", "csv-missing-column"),
    ]
    assert parsed.submissions == []


def test_missing_quadrant_column_is_fine() -> None:
    header = HEADER.replace("quadrant,", "")
    row = ROW.replace("D0180,,", "D0180,")
    assert parse_claims_csv(f"{header}\n{row}\n").ok


@pytest.mark.parametrize(
    "text", ["", "\ufeff", "\n\n", "  \r\n", f"{HEADER}\n", f"{HEADER}\n,,,\n"]
)
def test_empty(text: str) -> None:
    parsed = parse_claims_csv(text)
    assert [v.rule for v in parsed.violations] == ["csv-empty"]
    assert parsed.submissions == []


def test_row_shape() -> None:
    short = ROW.rsplit(",", 1)[0]
    text = f"{HEADER}\n{ROW}\n\n{short}\n{ROW}\n{ROW},extra\n"
    parsed = parse_claims_csv(text)
    assert found(parsed) == [(1, None, "csv-row-shape"), (3, None, "csv-row-shape")]
    assert parsed.submissions == []


def test_duplicate_column() -> None:
    parsed = parse_claims_csv(f"{HEADER},DOS\n{ROW},3/28/18\n")
    assert found(parsed) == [(None, "service_date", "csv-duplicate-column")]


def test_too_many_claims() -> None:
    rows = [f"C-{n},{ROW}" for n in range(3)]
    text = "\n".join([f"claim_id,{HEADER}", *rows])
    assert parse_claims_csv(text, max_claims=3).ok
    parsed = parse_claims_csv(text, max_claims=2)
    assert found(parsed) == [(None, "external_id", "csv-too-many-claims")]
    assert parsed.submissions == []


def test_default_claim_limit_is_100() -> None:
    rows = [f"C-{n},{ROW}" for n in range(101)]
    parsed = parse_claims_csv("\n".join([f"claim_id,{HEADER}", *rows]))
    assert [v.rule for v in parsed.violations] == ["csv-too-many-claims"]


def test_malformed_csv() -> None:
    parsed = parse_claims_csv(f"{HEADER}\n{'x' * 200_000},{ROW}\n")
    assert [v.rule for v in parsed.violations] == ["csv-format"]


def test_bad_values_are_left_to_validation_with_line_indexes() -> None:
    bad = ROW.replace("D0180", "X").replace("3730189502", "37301895!!")
    parsed = parse_claims_csv(f"{HEADER}\n{ROW}\n{bad}\n")
    assert parsed.ok
    result = validate_claim(parsed.submissions[0], ValidationPolicy(), date(2024, 6, 1))
    assert [(v.line, v.field, v.rule) for v in result.violations] == [
        (1, "submitted_procedure", "procedure-code"),
        (1, "subscriber_number", "subscriber-number-format"),
    ]
    assert all("37301895" not in v.message for v in result.violations)

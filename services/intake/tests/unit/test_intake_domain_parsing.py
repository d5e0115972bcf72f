from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claimflow_intake.domain import (
    ParseError,
    decimal_places,
    normalise_text,
    parse_money,
    parse_service_date,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$100.00 ", "100.00"),
        ("$0.00 ", "0.00"),
        (" 1,234.50", "1234.50"),
        ("100", "100"),
        ("$ 12.5", "12.5"),
        (".50", "0.50"),
        ("1.005", "1.005"),
        ("-5.00", "-5.00"),
        ("-$5.00", "-5.00"),
        ("$-5.00", "-5.00"),
        ("+7", "7"),
        ("1,234,567.89", "1234567.89"),
        (Decimal("12.34"), "12.34"),
        (Decimal("1E+2"), "1E+2"),
        (7, "7"),
        (0, "0"),
    ],
)
def test_parse_money_accepts(raw: object, expected: str) -> None:
    parsed = parse_money(raw)
    assert isinstance(parsed, Decimal)
    assert str(parsed) == expected


@pytest.mark.parametrize("raw", ["-0.00", "-$0", Decimal("-0.00"), "-0"])
def test_parse_money_drops_the_sign_of_zero(raw: object) -> None:
    assert not parse_money(raw).is_signed()


@pytest.mark.parametrize(
    "raw",
    [
        True,
        False,
        1.5,
        float("nan"),
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        "",
        "   ",
        "$",
        "abc",
        "NaN",
        "Infinity",
        "1e5",
        "1,23",
        "12,34.5",
        "1.2.3",
        "--5",
        "-$-5",
        "5-",
        "USD 5",
        "1" * 50,
        None,
        [],
        {"amount": "1.00"},
    ],
)
def test_parse_money_rejects(raw: object) -> None:
    with pytest.raises(ParseError) as excinfo:
        parse_money(raw)
    assert excinfo.value.message


cents = st.decimals(
    min_value=Decimal("-9999999999.99"),
    max_value=Decimal("9999999999.99"),
    places=2,
    allow_nan=False,
    allow_infinity=False,
)


@given(cents)
def test_parse_money_round_trips_formatted_amounts(amount: Decimal) -> None:
    sign = "-" if amount < 0 else ""
    magnitude = abs(amount)
    for text in (f"{amount:.2f}", f"{sign}${magnitude:,.2f} ", f" {sign}{magnitude:,.2f}"):
        parsed = parse_money(text)
        assert parsed == amount
        assert decimal_places(parsed) <= 2


@given(cents)
def test_parse_money_keeps_decimals_exact(amount: Decimal) -> None:
    assert parse_money(amount) == amount


@pytest.mark.parametrize(
    ("value", "places"),
    [
        (Decimal("1"), 0),
        (Decimal("1.5"), 1),
        (Decimal("1.50"), 1),
        (Decimal("1.500"), 1),
        (Decimal("1.05"), 2),
        (Decimal("1.005"), 3),
        (Decimal("0.000"), 0),
        (Decimal("1E+5"), 0),
        (Decimal("1E-30"), 30),
        (Decimal("-2.25"), 2),
    ],
)
def test_decimal_places(value: Decimal, places: int) -> None:
    assert decimal_places(value) == places


MARCH_28 = date(2018, 3, 28)


@pytest.mark.parametrize(
    "raw",
    [
        "2018-03-28",
        " 2018-03-28 ",
        "2018-03-28T00:00:00",
        "2018-03-28T23:59:59Z",
        "2018-03-28T23:30:00-05:00",
        "2018-03-28T00:30:00+09:00",
        "2018-03-28 10:15",
        "3/28/18 0:00",
        "3/28/18",
        "3/28/2018",
        "03/28/2018 13:45",
        "3/28/18 1:45 PM",
        "3/28/18 12:00:59",
        MARCH_28,
        datetime(2018, 3, 28, 23, 0, tzinfo=UTC),
    ],
)
def test_parse_service_date_accepts(raw: object) -> None:
    assert parse_service_date(raw) == MARCH_28


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1/1/00", date(2000, 1, 1)),
        ("1/1/68", date(2068, 1, 1)),
        ("1/1/69", date(1969, 1, 1)),
        ("1/1/99", date(1999, 1, 1)),
        ("2/29/20", date(2020, 2, 29)),
    ],
)
def test_two_digit_years_follow_strptime(raw: str, expected: date) -> None:
    assert parse_service_date(raw) == expected
    assert parse_service_date(raw) == datetime.strptime(raw, "%m/%d/%y").date()  # noqa: DTZ007


@pytest.mark.parametrize("raw", ["2/30/18", "2/29/19", "13/1/2018", "0/1/2018", "2018-02-30"])
def test_impossible_dates_are_rejected_clearly(raw: str) -> None:
    with pytest.raises(ParseError, match="not a real calendar date") as excinfo:
        parse_service_date(raw)
    assert raw not in excinfo.value.message


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "yesterday",
        "28.03.2018",
        "2018/03/28",
        "3/28/18 25:00",
        "3/28/18 13:00 PM",
        "3/28/18 0:60",
        "2018-03-28T25:00",
        "2018-03-28Tnoon",
        "3/28/18 0:00 junk",
        "3/28/180",
        20180328,
        1.0,
        None,
    ],
)
def test_parse_service_date_rejects(raw: object) -> None:
    with pytest.raises(ParseError) as excinfo:
        parse_service_date(raw)
    assert not str(raw) or str(raw) not in excinfo.value.message


@pytest.mark.parametrize(
    ("raw", "expected"), [(" GRP-1000 ", "GRP-1000"), (1497775530, "1497775530"), ("", "")]
)
def test_normalise_text(raw: object, expected: str) -> None:
    assert normalise_text(raw) == expected


@pytest.mark.parametrize("raw", [True, 1.5, Decimal("1497775530"), None, ["a"], {"a": 1}])
def test_normalise_text_rejects(raw: object) -> None:
    with pytest.raises(ParseError):
        normalise_text(raw)

import dataclasses
from datetime import date
from decimal import Decimal

import pytest

from claimflow_intake.domain import Claim, ClaimLine, money


def make_line(
    provider_fees: str = "100.00",
    allowed_fees: str = "100.00",
    member_coinsurance: str = "0.00",
    member_copay: str = "0.00",
    submitted_procedure: str = "D0180",
    quadrant: str | None = None,
) -> ClaimLine:
    return ClaimLine(
        service_date=date(2018, 3, 28),
        submitted_procedure=submitted_procedure,
        quadrant=quadrant,
        plan_group="GRP-1000",
        subscriber_number="3730189502",
        provider_npi="1497775530",
        provider_fees=Decimal(provider_fees),
        allowed_fees=Decimal(allowed_fees),
        member_coinsurance=Decimal(member_coinsurance),
        member_copay=Decimal(member_copay),
    )


@pytest.mark.parametrize(
    ("fees", "expected"),
    [
        (("100.00", "100.00", "0.00", "0.00"), "0.00"),
        (("130.00", "65.00", "16.25", "0.00"), "81.25"),
        (("178.00", "178.00", "35.60", "0.00"), "35.60"),
        (("50.00", "80.00", "0.00", "10.00"), "-20.00"),
        (("100", "0", "0", "5.5"), "105.50"),
    ],
)
def test_net_fee(fees: tuple[str, str, str, str], expected: str) -> None:
    net = make_line(*fees).net_fee
    assert str(net) == expected


def test_total_net_fee_is_the_exact_sum() -> None:
    claim = Claim(
        "CLM-1",
        (
            make_line("130.00", "65.00", "16.25"),
            make_line("178.00", "178.00", "35.60"),
            make_line("50.00", "80.00", "0.00", "10.00"),
        ),
    )
    assert str(claim.total_net_fee) == "96.85"


def test_line_normalises_codes_and_money() -> None:
    line = make_line("100", submitted_procedure="d0180", quadrant="ur")
    assert line.submitted_procedure == "D0180"
    assert line.quadrant == "UR"
    assert str(line.provider_fees) == "100.00"


def test_line_refuses_amounts_finer_than_a_cent() -> None:
    with pytest.raises(ValueError, match="exact to the cent"):
        make_line("100.005")


def test_line_refuses_non_decimal_money() -> None:
    with pytest.raises(TypeError):
        dataclasses.replace(make_line(), provider_fees=100.0)  # type: ignore[arg-type]


def test_claim_needs_a_line() -> None:
    with pytest.raises(ValueError, match="at least one line"):
        Claim(None, ())


def test_claim_and_line_are_frozen() -> None:
    line = make_line()
    with pytest.raises(dataclasses.FrozenInstanceError):
        line.provider_fees = Decimal(1)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(Decimal("1"), "1.00"), (5, "5.00"), ("2.5", "2.50"), ("0.125", "0.12"), ("0.135", "0.14")],
)
def test_money_quantizes_to_cents(raw: Decimal | int | str, expected: str) -> None:
    assert str(money(raw)) == expected


@pytest.mark.parametrize("raw", [1.5, True])
def test_money_refuses_floats_and_bools(raw: object) -> None:
    with pytest.raises(TypeError):
        money(raw)  # type: ignore[arg-type]

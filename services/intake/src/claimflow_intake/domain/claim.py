"""The claim as intake accepted it: typed, validated values and the net fee arithmetic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from claimflow_shared.money import CENT, ZERO


def money(value: Decimal | int | str) -> Decimal:
    """An amount at exactly two places (banker's rounding if it had more)."""
    if isinstance(value, bool | float):
        raise TypeError("money must be a Decimal, int or decimal string, never a float or bool")
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_EVEN)


def _exact_cents(name: str, value: Decimal) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise TypeError(f"{name} must be a finite Decimal")
    cents = money(value)
    if cents != value:
        raise ValueError(f"{name} must be exact to the cent")
    return cents


@dataclass(frozen=True, slots=True)
class ClaimLine:
    service_date: date
    submitted_procedure: str
    quadrant: str | None
    plan_group: str
    subscriber_number: str
    provider_npi: str
    provider_fees: Decimal
    allowed_fees: Decimal
    member_coinsurance: Decimal
    member_copay: Decimal

    def __post_init__(self) -> None:
        # Normalising here keeps every ClaimLine comparable and serialisable the same way,
        # however the caller spelled the values ("d0180", Decimal("100")).
        object.__setattr__(self, "submitted_procedure", self.submitted_procedure.upper())
        if self.quadrant is not None:
            object.__setattr__(self, "quadrant", self.quadrant.upper())
        for name in ("provider_fees", "allowed_fees", "member_coinsurance", "member_copay"):
            object.__setattr__(self, name, _exact_cents(name, getattr(self, name)))

    @property
    def net_fee(self) -> Decimal:
        """provider fees + member coinsurance + member copay - allowed fees; may be negative."""
        raw = self.provider_fees + self.member_coinsurance + self.member_copay - self.allowed_fees
        net = raw.quantize(CENT)
        assert net == raw, "inputs are exact to the cent, so the sum must be too"
        return net


@dataclass(frozen=True, slots=True)
class Claim:
    external_id: str | None
    lines: tuple[ClaimLine, ...]

    def __post_init__(self) -> None:
        if not self.lines:
            raise ValueError("a claim has at least one line")
        object.__setattr__(self, "lines", tuple(self.lines))

    @property
    def total_net_fee(self) -> Decimal:
        return sum((line.net_fee for line in self.lines), start=ZERO)

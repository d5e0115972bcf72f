"""Money as Decimal with two places: the one representation on the wire and in SQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, PlainSerializer

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def to_cents(value: Decimal) -> Decimal:
    """Quantize to two places; callers only pass values that are already exact to the cent."""
    quantized = value.quantize(CENT)
    if quantized != value:
        raise ValueError(f"amount {value} is not exact to the cent")
    return quantized


# JSON carries money as a decimal string ("116.85") so no consumer ever parses it as a float.
Money = Annotated[
    Decimal,
    Field(max_digits=12, decimal_places=2, examples=["116.85"]),
    PlainSerializer(lambda v: str(v.quantize(CENT)), return_type=str, when_used="json"),
]

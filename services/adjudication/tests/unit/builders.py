"""Small builders for claims and plans, so each test states only what it is about."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from claimflow_adjudication.domain import Category, ClaimToAdjudicate, Plan, ServiceLine

D = Decimal
SUBSCRIBER = "3730189502"
NPI = "1497775530"


def line(line_no: int = 1, **overrides: Any) -> ServiceLine:
    values: dict[str, Any] = {
        "line_no": line_no,
        "service_date": date(2024, 3, 28),
        "procedure": "D2391",
        "quadrant": None,
        "plan_group": "GRP-1000",
        "subscriber_number": SUBSCRIBER,
        "provider_npi": NPI,
        "provider_fees": D("100.00"),
        "allowed_fees": D("100.00"),
        "member_coinsurance": D("0.00"),
        "member_copay": D("0.00"),
    }
    values.update(overrides)
    return ServiceLine(**values)


def claim(*lines: ServiceLine) -> ClaimToAdjudicate:
    return ClaimToAdjudicate(uuid.uuid4(), tuple(lines) or (line(),))


def plan(**overrides: Any) -> Plan:
    """A plan that pays 100% of everything, with no deductible, maximum or limits."""
    values: dict[str, Any] = {
        "plan_id": "test",
        "version": 1,
        "coinsurance": {c: D(100) for c in Category},
    }
    values.update(overrides)
    return Plan(**values)

"""The catalogue of validation rules every claim is checked against, registered in RULES."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from claimflow_intake.domain.fields import (
    MONEY_FIELDS,
    PLAN_GROUP,
    PROVIDER_NPI,
    QUADRANT,
    SERVICE_DATE,
    SUBMITTED_PROCEDURE,
    SUBSCRIBER_NUMBER,
)
from claimflow_intake.domain.parsing import decimal_places
from claimflow_intake.domain.rules.registry import (
    EXTERNAL_ID,
    LINES,
    RuleContext,
    RuleRegistry,
)

RULES = RuleRegistry()

# --- money -------------------------------------------------------------------

# NUMERIC(12,2) in the database: ten digits before the point.
MAX_AMOUNT = Decimal("9999999999.99")


@RULES.field_rule("money-precision", fields=MONEY_FIELDS, value_type=Decimal, locked=True)
def _money_precision(value: Decimal, ctx: RuleContext) -> str | None:
    return None if decimal_places(value) <= 2 else "must have at most two decimal places"


@RULES.field_rule("money-non-negative", fields=MONEY_FIELDS, value_type=Decimal)
def _money_non_negative(value: Decimal, ctx: RuleContext) -> str | None:
    return None if value >= 0 else "must not be negative"


@RULES.field_rule("money-range", fields=MONEY_FIELDS, value_type=Decimal, locked=True)
def _money_range(value: Decimal, ctx: RuleContext) -> str | None:
    return None if abs(value) <= MAX_AMOUNT else "must be at most 9,999,999,999.99"


# --- dates -------------------------------------------------------------------


@RULES.field_rule("service-date-not-future", fields=(SERVICE_DATE,), value_type=date)
def _service_date_not_future(value: date, ctx: RuleContext) -> str | None:
    return None if value <= ctx.today else "must not be in the future"


# --- codes and identifiers ---------------------------------------------------

# [0-9], not \d: \d also matches non-ASCII digits such as Arabic-Indic ones.
_PROCEDURE_RE = re.compile(r"[Dd][0-9]{4}")
_NPI_RE = re.compile(r"[0-9]{10}")
_PLAN_GROUP_RE = re.compile(r"[A-Za-z0-9_-]{1,30}")
_SUBSCRIBER_RE = re.compile(r"[A-Za-z0-9-]{1,30}")
QUADRANTS: frozenset[str] = frozenset({"UR", "UL", "LR", "LL"})
NPI_LUHN_PREFIX = "80840"


def luhn_check_digit(digits: str) -> int:
    """The Luhn digit that, appended to `digits`, makes a valid Luhn number."""
    total = 0
    # Walking from the right, the digit next to the (future) check digit is doubled first.
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return (10 - total % 10) % 10


def is_valid_npi(npi: str) -> bool:
    """Ten digits whose last is the Luhn check digit of 80840 + the first nine."""
    if _NPI_RE.fullmatch(npi) is None:
        return False
    return luhn_check_digit(NPI_LUHN_PREFIX + npi[:9]) == int(npi[9])


@RULES.field_rule("procedure-code", fields=(SUBMITTED_PROCEDURE,), value_type=str)
def _procedure_code(value: str, ctx: RuleContext) -> str | None:
    if _PROCEDURE_RE.fullmatch(value):
        return None
    return "must be a CDT code: D followed by 4 digits, e.g. D0180"


@RULES.field_rule("quadrant", fields=(QUADRANT,), value_type=str)
def _quadrant(value: str, ctx: RuleContext) -> str | None:
    return None if value.upper() in QUADRANTS else "must be one of UR, UL, LR, LL"


@RULES.field_rule("npi-format", fields=(PROVIDER_NPI,), value_type=str)
def _npi_format(value: str, ctx: RuleContext) -> str | None:
    return None if _NPI_RE.fullmatch(value) else "must be exactly 10 digits"


@RULES.field_rule("npi-luhn", fields=(PROVIDER_NPI,), value_type=str)
def _npi_luhn(value: str, ctx: RuleContext) -> str | None:
    # A malformed NPI is npi-format's finding; reporting it twice would only add noise.
    if not ctx.policy.npi_luhn or _NPI_RE.fullmatch(value) is None or is_valid_npi(value):
        return None
    return "check digit does not match (Luhn over 80840 + the first 9 digits)"


@RULES.field_rule("plan-group-format", fields=(PLAN_GROUP,), value_type=str)
def _plan_group_format(value: str, ctx: RuleContext) -> str | None:
    if _PLAN_GROUP_RE.fullmatch(value):
        return None
    return "must be 1 to 30 characters of letters, digits, '-' and '_'"


@RULES.field_rule("subscriber-number-format", fields=(SUBSCRIBER_NUMBER,), value_type=str)
def _subscriber_number_format(value: str, ctx: RuleContext) -> str | None:
    if _SUBSCRIBER_RE.fullmatch(value):
        return None
    return "must be 1 to 30 characters of letters, digits and '-'"


# --- the claim as a whole ----------------------------------------------------

MAX_EXTERNAL_ID = 100


@RULES.claim_rule("external-id-format", field=EXTERNAL_ID)
def _external_id_format(payload: Mapping[str, object], ctx: RuleContext) -> str | None:
    value = payload.get(EXTERNAL_ID)
    if value is None:
        return None
    if isinstance(value, str) and 0 < len(value.strip()) <= MAX_EXTERNAL_ID and value.isprintable():
        return None
    return f"must be a non-blank string of at most {MAX_EXTERNAL_ID} printable characters"


@RULES.claim_rule("line-count", field=LINES)
def _line_count(payload: Mapping[str, object], ctx: RuleContext) -> str | None:
    lines = payload.get(LINES)
    if not isinstance(lines, list | tuple):
        return None
    if 1 <= len(lines) <= ctx.policy.max_lines:
        return None
    return f"must hold between 1 and {ctx.policy.max_lines} lines"

"""Turning submitted values (JSON scalars or CSV cells) into typed values.

Error messages describe the expected form only and never repeat the submitted
value, because some of these values (dates of service) are PHI.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal


class ParseError(ValueError):
    """A submitted value does not have the form its field needs."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# Long enough for any real amount with grouping and a currency sign; bounds the work per cell.
_MAX_MONEY_TEXT = 40
_MONEY_RE = re.compile(
    r"(?P<sign>[-+]?)\s*\$?\s*(?P<sign2>[-+]?)"
    r"(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?"
    r"(?:\.(?P<frac>[0-9]*))?",
)
MONEY_FORMAT_HINT = "expected an amount such as 100.00, $1,234.50 or 100"


def parse_money(value: object) -> Decimal:
    """The exact amount of a money value; sign and number of places are left to the rules."""
    if isinstance(value, bool | float):
        # bool is an int and float is inexact: both mean the submitter sent the wrong type.
        raise ParseError(f"{MONEY_FORMAT_HINT}; a decimal string or exact number is required")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        amount = _parse_money_text(value)
    else:
        raise ParseError(MONEY_FORMAT_HINT)
    if not amount.is_finite():
        raise ParseError(f"{MONEY_FORMAT_HINT}; NaN and infinity are not amounts")
    # -0.00 is a spelling of 0.00, and a signed zero would leak into sums and output.
    return amount.copy_abs() if amount.is_zero() else amount


def _parse_money_text(text: str) -> Decimal:
    stripped = text.strip()
    match = _MONEY_RE.fullmatch(stripped) if len(stripped) <= _MAX_MONEY_TEXT else None
    if match is None or (match["int"] is None and not match["frac"]):
        raise ParseError(MONEY_FORMAT_HINT)
    if match["sign"] and match["sign2"]:
        raise ParseError(MONEY_FORMAT_HINT)
    sign = match["sign"] or match["sign2"]
    whole = (match["int"] or "0").replace(",", "")
    fraction = f".{match['frac']}" if match["frac"] else ""
    return Decimal(f"{sign}{whole}{fraction}")


def decimal_places(value: Decimal) -> int:
    """How many places after the point the value needs (1.50 needs 1), exactly, at any size."""
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int), "only finite amounts reach here"
    if not any(digits):
        return 0
    trailing_zeros = len(digits) - len(bytes(digits).rstrip(b"\0"))
    return max(0, -(exponent + trailing_zeros))


DATE_FORMAT_HINT = (
    "expected an ISO 8601 date (YYYY-MM-DD, optionally with a time) "
    "or M/D/YY or M/D/YYYY, optionally followed by a time H:MM"
)
_MAX_DATE_TEXT = 40
_ISO_RE = re.compile(r"(?P<y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})(?P<time>[T ].+)?")
_US_RE = re.compile(
    r"(?P<m>[0-9]{1,2})/(?P<d>[0-9]{1,2})/(?P<y>[0-9]{4}|[0-9]{2})"
    r"(?:\s+(?P<hh>[0-9]{1,2}):(?P<mm>[0-9]{2})(?::(?P<ss>[0-9]{2}))?\s*(?P<ampm>[AaPp][Mm])?)?"
)
# strptime's %y pivot (POSIX): 00-68 are 2000-2068, 69-99 are 1969-1999.
_CENTURY_PIVOT = 69


def parse_service_date(value: object) -> date:
    """The calendar date of a date of service; a time of day, if given, is dropped."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ParseError(DATE_FORMAT_HINT)
    text = value.strip()
    if len(text) <= _MAX_DATE_TEXT:
        if match := _ISO_RE.fullmatch(text):
            return _parse_iso(text, match)
        if match := _US_RE.fullmatch(text):
            return _parse_us(match)
    raise ParseError(DATE_FORMAT_HINT)


def _calendar_date(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise ParseError("not a real calendar date (check the month and day)") from exc


def _parse_iso(text: str, match: re.Match[str]) -> date:
    day = _calendar_date(int(match["y"]), int(match["m"]), int(match["d"]))
    if match["time"] is not None:
        try:
            datetime.fromisoformat(text)
        except ValueError as exc:
            raise ParseError(f"{DATE_FORMAT_HINT}; the time part is not valid") from exc
    # The date as written, not shifted by its offset: a visit happens on its local date.
    return day


def _parse_us(match: re.Match[str]) -> date:
    year = int(match["y"])
    if len(match["y"]) == 2:
        year += 1900 if year >= _CENTURY_PIVOT else 2000
    day = _calendar_date(year, int(match["m"]), int(match["d"]))
    if match["hh"] is not None:
        hour, minute = int(match["hh"]), int(match["mm"])
        second = int(match["ss"] or 0)
        max_hour, min_hour = (12, 1) if match["ampm"] else (23, 0)
        if not (min_hour <= hour <= max_hour and minute <= 59 and second <= 59):
            raise ParseError(f"{DATE_FORMAT_HINT}; the time part is not valid")
    return day


TEXT_FORMAT_HINT = "expected text or a whole number"


def normalise_text(value: object) -> str:
    """A text field as a stripped string; whole numbers are accepted as their digits."""
    if isinstance(value, bool):
        raise ParseError(TEXT_FORMAT_HINT)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError as exc:  # beyond Python's int-to-str digit limit
            raise ParseError(TEXT_FORMAT_HINT) from exc
    raise ParseError(TEXT_FORMAT_HINT)

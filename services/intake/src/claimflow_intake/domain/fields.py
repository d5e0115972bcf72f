"""Canonical names of the fields of a claim line, and the many ways submitters spell them."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

SERVICE_DATE = "service_date"
SUBMITTED_PROCEDURE = "submitted_procedure"
QUADRANT = "quadrant"
PLAN_GROUP = "plan_group"
SUBSCRIBER_NUMBER = "subscriber_number"
PROVIDER_NPI = "provider_npi"
PROVIDER_FEES = "provider_fees"
ALLOWED_FEES = "allowed_fees"
MEMBER_COINSURANCE = "member_coinsurance"
MEMBER_COPAY = "member_copay"

# The order is the API's documented order; violations are reported in it.
LINE_FIELDS: tuple[str, ...] = (
    SERVICE_DATE,
    SUBMITTED_PROCEDURE,
    QUADRANT,
    PLAN_GROUP,
    SUBSCRIBER_NUMBER,
    PROVIDER_NPI,
    PROVIDER_FEES,
    ALLOWED_FEES,
    MEMBER_COINSURANCE,
    MEMBER_COPAY,
)
MONEY_FIELDS: frozenset[str] = frozenset(
    {PROVIDER_FEES, ALLOWED_FEES, MEMBER_COINSURANCE, MEMBER_COPAY}
)
DATE_FIELDS: frozenset[str] = frozenset({SERVICE_DATE})
TEXT_FIELDS: frozenset[str] = frozenset(LINE_FIELDS) - MONEY_FIELDS - DATE_FIELDS
OPTIONAL_FIELDS: frozenset[str] = frozenset({QUADRANT})
REQUIRED_FIELDS: frozenset[str] = frozenset(LINE_FIELDS) - OPTIONAL_FIELDS
# Values that must never be echoed into messages, logs or metric labels.
PHI_FIELDS: frozenset[str] = frozenset({SERVICE_DATE, SUBSCRIBER_NUMBER})

FIELD_ORDER: Mapping[str, int] = {name: index for index, name in enumerate(LINE_FIELDS)}

_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def squash(name: str) -> str:
    """The lookup key of a header: only its ASCII letters and digits, lowercased."""
    return _NOT_ALNUM.sub("", name.lower())


_ALIASES_BY_FIELD: Mapping[str, tuple[str, ...]] = {
    SERVICE_DATE: ("dateofservice", "dos", "date", "svcdate", "servicedt", "datesvc"),
    SUBMITTED_PROCEDURE: (
        "procedure",
        "procedurecode",
        "proccode",
        "submittedprocedurecode",
        "submittedcode",
        "cdt",
        "cdtcode",
    ),
    QUADRANT: ("quad",),
    PLAN_GROUP: (
        "plangroupnumber",
        "plangroupno",
        "plangroupid",
        "plan",
        "group",
        "groupnumber",
        "groupno",
        "groupid",
    ),
    SUBSCRIBER_NUMBER: ("subscriber", "subscriberid", "subscriberno", "subscribernum"),
    PROVIDER_NPI: ("npi", "npinumber", "providernpinumber"),
    PROVIDER_FEES: ("providerfee", "fee", "fees", "billed", "billedfee", "billedfees"),
    ALLOWED_FEES: ("allowedfee", "allowed", "allowedamount"),
    MEMBER_COINSURANCE: ("coinsurance", "patientcoinsurance"),
    MEMBER_COPAY: ("copay", "copayment", "membercopayment", "patientcopay"),
}


def _build_alias_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for field in LINE_FIELDS:
        for alias in (squash(field), *_ALIASES_BY_FIELD.get(field, ())):
            # Two fields claiming one alias would make a header silently mean either.
            assert table.setdefault(alias, field) == field, f"alias {alias!r} is ambiguous"
    return table


FIELD_ALIASES: Mapping[str, str] = _build_alias_table()

# Squashed spellings of a CSV column that groups rows into claims ("Claim #", "claim_id", ...).
CLAIM_NUMBER_ALIASES: frozenset[str] = frozenset(
    {"claimnumber", "claim", "claimid", "claimno", "claimnum", "externalid"}
)
assert not CLAIM_NUMBER_ALIASES & FIELD_ALIASES.keys()


# Submitters send the same few spellings on every line of every claim; bounded, because the
# names are the submitter's to choose.
@functools.lru_cache(maxsize=1024)
def normalise_field_name(name: str) -> str | None:
    """The canonical line field a submitted name means, or None for names we do not know."""
    return FIELD_ALIASES.get(squash(name))


def is_claim_number_name(name: str) -> bool:
    return squash(name) in CLAIM_NUMBER_ALIASES

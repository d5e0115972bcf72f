"""Validation of a submitted claim as a registry of small named rules.

Adding a rule is one function plus a decorator; the engine below never names a
specific registered rule. Every failing rule is reported, per line and field,
so a submitter can fix everything in one round trip.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Generic, Protocol, TypeAlias, TypeVar

from claimflow_intake.domain.claim import Claim, ClaimLine
from claimflow_intake.domain.fields import (
    ALLOWED_FEES,
    DATE_FIELDS,
    LINE_FIELDS,
    MEMBER_COINSURANCE,
    MEMBER_COPAY,
    MONEY_FIELDS,
    PHI_FIELDS,
    PLAN_GROUP,
    PROVIDER_FEES,
    PROVIDER_NPI,
    QUADRANT,
    REQUIRED_FIELDS,
    SERVICE_DATE,
    SUBMITTED_PROCEDURE,
    SUBSCRIBER_NUMBER,
    TEXT_FIELDS,
    normalise_field_name,
)
from claimflow_intake.domain.parsing import (
    ParseError,
    decimal_places,
    normalise_text,
    parse_money,
    parse_service_date,
)

V = TypeVar("V")
T = TypeVar("T")

EXTERNAL_ID = "external_id"
LINES = "lines"

# Rules the engine itself applies while reading the payload. They are not in the
# registry because nothing typed can be built without them, so they cannot be disabled.
REQUIRED = "required"
TYPE = "type"
DUPLICATE_FIELD = "duplicate-field"
MONEY_FORMAT = "money-format"
DATE_FORMAT = "date-format"
TEXT_FORMAT = "text-format"
STRUCTURAL_RULES: frozenset[str] = frozenset(
    {REQUIRED, TYPE, DUPLICATE_FIELD, MONEY_FORMAT, DATE_FORMAT, TEXT_FORMAT}
)


@dataclass(frozen=True, slots=True)
class Violation:
    """One failed rule. `message` never contains a submitted subscriber number or date."""

    line: int | None
    field: str | None
    rule: str
    message: str


@dataclass(frozen=True, slots=True)
class ValidationPolicy:
    npi_luhn: bool = True
    max_lines: int = 50
    disabled_rules: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.max_lines < 1:
            raise ValueError("max_lines must be at least 1")
        object.__setattr__(self, "disabled_rules", frozenset(self.disabled_rules))


@dataclass(frozen=True, slots=True)
class RuleContext:
    policy: ValidationPolicy
    today: date


class Rule(Protocol):
    """A check of one parsed field value; returns a message when the value fails it."""

    @property
    def name(self) -> str: ...

    @property
    def fields(self) -> frozenset[str]: ...

    def run(self, value: object, ctx: RuleContext) -> str | None: ...


FieldCheck: TypeAlias = Callable[[V, RuleContext], str | None]
ClaimCheck: TypeAlias = Callable[[Mapping[str, object], RuleContext], str | None]


@dataclass(frozen=True, slots=True)
class FieldRule(Generic[V]):
    """Adapts a typed check function to the `Rule` protocol."""

    name: str
    fields: frozenset[str]
    value_type: type[V]
    check: FieldCheck[V]

    def run(self, value: object, ctx: RuleContext) -> str | None:
        # A quadrant left out is None, and optional fields are not checked when absent.
        if not isinstance(value, self.value_type):
            return None
        return self.check(value, ctx)


@dataclass(frozen=True, slots=True)
class ClaimRule:
    """A check of the claim as a whole; `field` is the top-level member it reports on."""

    name: str
    field: str
    check: ClaimCheck


class RuleRegistry:
    def __init__(self) -> None:
        self._field_rules: dict[str, Rule] = {}
        self._claim_rules: dict[str, ClaimRule] = {}
        self._locked: set[str] = set()

    def register(self, rule: Rule, *, locked: bool = False) -> Rule:
        """Add a rule object (for rules that are more naturally a class than a function).

        A `locked` rule guards an invariant of `ClaimLine`, so policy cannot disable it.
        """
        self._reserve_name(rule.name, locked=locked)
        unknown = rule.fields - set(LINE_FIELDS)
        if unknown:
            raise ValueError(f"rule {rule.name!r} names unknown fields {sorted(unknown)}")
        self._field_rules[rule.name] = rule
        return rule

    def field_rule(
        self, name: str, *, fields: Iterable[str], value_type: type[V], locked: bool = False
    ) -> Callable[[FieldCheck[V]], FieldCheck[V]]:
        def decorate(check: FieldCheck[V]) -> FieldCheck[V]:
            self.register(FieldRule(name, frozenset(fields), value_type, check), locked=locked)
            return check

        return decorate

    def claim_rule(self, name: str, *, field: str) -> Callable[[ClaimCheck], ClaimCheck]:
        def decorate(check: ClaimCheck) -> ClaimCheck:
            self._reserve_name(name, locked=False)
            self._claim_rules[name] = ClaimRule(name, field, check)
            return check

        return decorate

    def _reserve_name(self, name: str, *, locked: bool) -> None:
        if name in STRUCTURAL_RULES or name in self.names():
            raise ValueError(f"rule name {name!r} is already taken")
        if locked:
            self._locked.add(name)

    def names(self) -> frozenset[str]:
        return frozenset(self._field_rules) | frozenset(self._claim_rules)

    def field_rules(self, field: str) -> tuple[Rule, ...]:
        return tuple(rule for rule in self._field_rules.values() if field in rule.fields)

    def claim_rules(self) -> tuple[ClaimRule, ...]:
        return tuple(self._claim_rules.values())

    def check_policy(self, policy: ValidationPolicy) -> None:
        """Fail fast on a misspelt or undisableable rule name in configuration."""
        unknown = policy.disabled_rules - self.names()
        if unknown:
            raise ValueError(
                f"cannot disable {sorted(unknown)}: not a registered rule "
                f"(can disable: {sorted(self.names() - self._locked)})"
            )
        locked = policy.disabled_rules & self._locked
        if locked:
            raise ValueError(f"cannot disable {sorted(locked)}: a claim line relies on them")

    def locked(self) -> frozenset[str]:
        return frozenset(self._locked)


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


# --- the engine --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldParser:
    rule: str
    parse: Callable[[object], object]


_PARSERS: Mapping[str, FieldParser] = {
    **dict.fromkeys(MONEY_FIELDS, FieldParser(MONEY_FORMAT, parse_money)),
    **dict.fromkeys(DATE_FIELDS, FieldParser(DATE_FORMAT, parse_service_date)),
    **dict.fromkeys(TEXT_FIELDS, FieldParser(TEXT_FORMAT, normalise_text)),
}


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """Either a claim (no violations) or the violations (no claim)."""

    claim: Claim | None
    violations: tuple[Violation, ...]

    @property
    def ok(self) -> bool:
        return self.claim is not None


def validate_claim(
    payload: Mapping[str, object],
    policy: ValidationPolicy,
    today: date,
    *,
    registry: RuleRegistry = RULES,
) -> ValidationResult:
    """Check a submission `{"external_id"?: str, "lines": [{...}, ...]}` against every rule.

    Line keys may use any accepted spelling of a field name; unknown keys are ignored.
    Violations come claim-level first, then by line, then in canonical field order.
    Raises ValueError for a policy that disables an unknown or locked rule.
    """
    registry.check_policy(policy)
    if not isinstance(payload, Mapping):
        return ValidationResult(None, (Violation(None, None, TYPE, "claim: must be an object"),))
    ctx = RuleContext(policy, today)
    violations = _check_lines_member(payload)
    violations += [
        Violation(None, rule.field, rule.name, f"{rule.field}: {message}")
        for rule in registry.claim_rules()
        if rule.name not in policy.disabled_rules
        and (message := rule.check(payload, ctx)) is not None
    ]
    raw_lines = payload.get(LINES)
    if not isinstance(raw_lines, list | tuple):
        return ValidationResult(None, tuple(violations))
    if len(raw_lines) > policy.max_lines and violations:
        # Past the line limit (and already rejected) the lines are not examined, so the work
        # and the size of the error response one request can cause stay bounded.
        return ValidationResult(None, tuple(violations))
    lines: list[ClaimLine] = []
    for index, raw_line in enumerate(raw_lines):
        line, line_violations = _validate_line(index, raw_line, registry, ctx)
        violations += line_violations
        if line is not None:
            lines.append(line)
    if not violations and not lines:
        # Only reachable with line-count disabled; a claim without lines is still meaningless.
        violations.append(Violation(None, LINES, REQUIRED, f"{LINES}: must hold at least 1 line"))
    if violations:
        return ValidationResult(None, tuple(violations))
    return ValidationResult(Claim(_external_id(payload), tuple(lines)), ())


def _check_lines_member(payload: Mapping[str, object]) -> list[Violation]:
    raw_lines = payload.get(LINES)
    if raw_lines is None:
        return [Violation(None, LINES, REQUIRED, f"{LINES}: is required")]
    if not isinstance(raw_lines, list | tuple):
        return [Violation(None, LINES, TYPE, f"{LINES}: must be an array of line objects")]
    return []


def _external_id(payload: Mapping[str, object]) -> str | None:
    value = payload.get(EXTERNAL_ID)
    return (value.strip() or None) if isinstance(value, str) else None


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _same_value(first: object, second: object) -> bool:
    if isinstance(first, str) and isinstance(second, str):
        return first.strip() == second.strip()
    return type(first) is type(second) and first == second


def _collect_fields(raw_line: Mapping[object, object]) -> tuple[dict[str, object], set[str]]:
    """The line's non-blank values by canonical field, and the fields given conflicting values."""
    values: dict[str, object] = {}
    conflicts: set[str] = set()
    for key, value in raw_line.items():
        field = normalise_field_name(key) if isinstance(key, str) else None
        if field is None or _is_blank(value):
            continue
        if field in values and not _same_value(values[field], value):
            conflicts.add(field)
        values.setdefault(field, value)
    return values, conflicts


def _validate_line(
    index: int, raw_line: object, registry: RuleRegistry, ctx: RuleContext
) -> tuple[ClaimLine | None, list[Violation]]:
    if not isinstance(raw_line, Mapping):
        return None, [Violation(index, None, TYPE, f"line {index}: must be an object")]
    values, conflicts = _collect_fields(raw_line)
    parsed: dict[str, object] = {}
    found: list[tuple[str, str, str]] = []  # (field, rule, message)
    for field in LINE_FIELDS:
        raw = values.get(field)
        if field in conflicts:
            found.append((field, DUPLICATE_FIELD, "given more than once with different values"))
        elif raw is None:
            if field in REQUIRED_FIELDS:
                found.append((field, REQUIRED, "is required"))
            parsed[field] = None
        else:
            found += _check_field(field, raw, parsed, registry, ctx)
    phi = _phi_tokens(values, parsed)
    violations = [
        Violation(index, field, rule, _without_phi(field, rule, message, phi))
        for field, rule, message in found
    ]
    if violations:
        return None, violations
    return _build_line(parsed), []


def _check_field(
    field: str, raw: object, parsed: dict[str, object], registry: RuleRegistry, ctx: RuleContext
) -> list[tuple[str, str, str]]:
    parser = _PARSERS[field]
    try:
        value = parser.parse(raw)
    except ParseError as exc:
        return [(field, parser.rule, exc.message)]
    parsed[field] = value
    return [
        (field, rule.name, message)
        for rule in registry.field_rules(field)
        if rule.name not in ctx.policy.disabled_rules
        and (message := rule.run(value, ctx)) is not None
    ]


def _phi_tokens(values: Mapping[str, object], parsed: Mapping[str, object]) -> set[str]:
    tokens: set[str] = set()
    for field in PHI_FIELDS:
        for value in (values.get(field), parsed.get(field)):
            if value is not None and (text := str(value).strip()):
                tokens.add(text)
    return tokens


def _without_phi(field: str, rule: str, message: str, phi: Iterable[str]) -> str:
    """The message as `field: message`, or a generic one should a rule ever echo PHI."""
    text = f"{field}: {message}"
    if any(token in text for token in phi):
        return f"{field}: fails the {rule} rule"
    return text


def _typed(parsed: Mapping[str, object], field: str, kind: type[T]) -> T:
    value = parsed[field]
    assert isinstance(value, kind), f"{field} was checked before the line is built"
    return value


def _build_line(parsed: Mapping[str, object]) -> ClaimLine:
    quadrant = parsed[QUADRANT]
    return ClaimLine(
        service_date=_typed(parsed, SERVICE_DATE, date),
        submitted_procedure=_typed(parsed, SUBMITTED_PROCEDURE, str),
        quadrant=quadrant if isinstance(quadrant, str) else None,
        plan_group=_typed(parsed, PLAN_GROUP, str),
        subscriber_number=_typed(parsed, SUBSCRIBER_NUMBER, str),
        provider_npi=_typed(parsed, PROVIDER_NPI, str),
        provider_fees=_typed(parsed, PROVIDER_FEES, Decimal),
        allowed_fees=_typed(parsed, ALLOWED_FEES, Decimal),
        member_coinsurance=_typed(parsed, MEMBER_COINSURANCE, Decimal),
        member_copay=_typed(parsed, MEMBER_COPAY, Decimal),
    )


def rule_names(registry: RuleRegistry = RULES) -> frozenset[str]:
    """Every rule name a violation can carry, for documentation and clients."""
    return registry.names() | STRUCTURAL_RULES


__all__ = [
    "RULES",
    "STRUCTURAL_RULES",
    "ClaimRule",
    "FieldRule",
    "Rule",
    "RuleContext",
    "RuleRegistry",
    "ValidationPolicy",
    "ValidationResult",
    "Violation",
    "is_valid_npi",
    "luhn_check_digit",
    "rule_names",
    "validate_claim",
]

"""Validation of a submitted claim: reads each field, runs every registered rule, and reports
every failure, per line and field, so a submitter can fix everything in one round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TypeVar

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
    normalise_text,
    parse_money,
    parse_service_date,
)
from claimflow_intake.domain.rules import (
    DATE_FORMAT,
    DUPLICATE_FIELD,
    EXTERNAL_ID,
    LINES,
    MONEY_FORMAT,
    REQUIRED,
    RULES,
    STRUCTURAL_RULES,
    TEXT_FORMAT,
    TYPE,
    RuleContext,
    RuleRegistry,
    ValidationPolicy,
    Violation,
)

T = TypeVar("T")


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
    "ValidationResult",
    "rule_names",
    "validate_claim",
]

"""The rule registry: what a validation rule is, and where rules are registered.

Adding a rule is one function plus a decorator (see catalogue.py); the engine
(domain/validation.py) never names a specific registered rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Generic, Protocol, TypeAlias, TypeVar

from claimflow_intake.domain.fields import LINE_FIELDS

V = TypeVar("V")

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
        # field -> its rules, asked for every field of every line: rebuilt on registration.
        self._by_field: dict[str, tuple[Rule, ...]] = {}

    def register(self, rule: Rule, *, locked: bool = False) -> Rule:
        """Add a rule object (for rules that are more naturally a class than a function).

        A `locked` rule guards an invariant of `ClaimLine`, so policy cannot disable it.
        """
        self._reserve_name(rule.name, locked=locked)
        unknown = rule.fields - set(LINE_FIELDS)
        if unknown:
            raise ValueError(f"rule {rule.name!r} names unknown fields {sorted(unknown)}")
        self._field_rules[rule.name] = rule
        self._by_field = {
            field: tuple(r for r in self._field_rules.values() if field in r.fields)
            for field in LINE_FIELDS
        }
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
        return self._by_field.get(field, ())

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

"""A benefit plan as adjudication applies it, and how a plan/group number finds its plan."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from claimflow_shared.money import ZERO

from .cdt import Category

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class FrequencyLimit:
    """At most `count` services with any of `codes` per subscriber and benefit year."""

    codes: frozenset[str]
    count: int

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("a frequency limit count is never negative")
        if not self.codes:
            raise ValueError("a frequency limit names at least one code")


@dataclass(frozen=True)
class Plan:
    plan_id: str
    version: int
    groups: tuple[str, ...] = ()
    is_default: bool = False
    display_name: str | None = None
    effective_from: date = date(1900, 1, 1)
    effective_to: date | None = None
    benefit_year_start_month: int = 1
    covered: frozenset[Category] = frozenset(Category)
    # Percent of the eligible amount (after deductible and copay) that the plan pays.
    coinsurance: Mapping[Category, Decimal] = field(default_factory=dict)
    deductible: Decimal = ZERO
    deductible_waived: frozenset[Category] = frozenset()
    # None: no annual maximum.
    annual_maximum: Decimal | None = None
    frequency_limits: tuple[FrequencyLimit, ...] = ()
    # Maximum allowed amount per CDT code.
    fee_schedule: Mapping[str, Decimal] = field(default_factory=dict)
    excluded_codes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not 1 <= self.benefit_year_start_month <= 12:
            raise ValueError("benefit_year_start_month is a month number, 1 to 12")
        for category, percent in self.coinsurance.items():
            if not ZERO <= percent <= HUNDRED:
                raise ValueError(f"coinsurance for {category} must be between 0 and 100")
        if self.deductible < ZERO:
            raise ValueError("deductible is never negative")
        if self.annual_maximum is not None and self.annual_maximum < ZERO:
            raise ValueError("annual_maximum is never negative")
        if any(amount < ZERO for amount in self.fee_schedule.values()):
            raise ValueError("fee schedule amounts are never negative")
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")

    def benefit_year(self, service_date: date) -> date:
        """The first day of the benefit year that holds service_date."""
        start = date(service_date.year, self.benefit_year_start_month, 1)
        return start if service_date >= start else start.replace(year=start.year - 1)

    def plan_pays_percent(self, category: Category) -> Decimal:
        return self.coinsurance.get(category, ZERO)


def _literal_chars(pattern: str) -> int:
    return sum(1 for c in pattern if c not in "*?[]")


def _is_pattern(group: str) -> bool:
    return any(c in group for c in "*?[")


class PlanBook:
    """An immutable set of plans, resolved by plan/group number.

    An exact group number wins over a pattern; of several patterns the most specific (most
    literal characters, then the lowest plan id) wins; with no match, the default plan.
    """

    def __init__(self, plans: Iterable[Plan]) -> None:
        self._plans = {p.plan_id: p for p in plans}
        self._exact: dict[str, Plan] = {}
        self._patterns: list[tuple[str, Plan]] = []
        for plan in sorted(self._plans.values(), key=lambda p: p.plan_id):
            for group in plan.groups:
                if _is_pattern(group):
                    self._patterns.append((group.upper(), plan))
                else:
                    self._exact.setdefault(group.upper(), plan)
        self._patterns.sort(key=lambda gp: (-_literal_chars(gp[0]), gp[1].plan_id))
        defaults = sorted(
            (p for p in self._plans.values() if p.is_default), key=lambda p: p.plan_id
        )
        self.default: Plan | None = defaults[0] if defaults else None
        self.ambiguous_defaults = [p.plan_id for p in defaults[1:]]

    def resolve(self, plan_group: str) -> Plan | None:
        group = plan_group.upper()
        exact = self._exact.get(group)
        if exact is not None:
            return exact
        for pattern, plan in self._patterns:
            if fnmatch.fnmatchcase(group, pattern):
                return plan
        return self.default

    def get(self, plan_id: str) -> Plan | None:
        return self._plans.get(plan_id)

    def plans(self) -> list[Plan]:
        return sorted(self._plans.values(), key=lambda p: p.plan_id)

    def __len__(self) -> int:
        return len(self._plans)

"""What a subscriber already used in a benefit year: the state the plan's limits run against."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from claimflow_shared.money import ZERO


@dataclass(frozen=True, order=True)
class HistoryKey:
    """One subscriber's benefit year under one plan. Ordered, so locks are taken in one order."""

    plan_id: str
    subscriber_number: str
    benefit_year: date


@dataclass(frozen=True)
class PriorService:
    """A service already granted (not denied) in the benefit year."""

    procedure: str
    service_date: date
    quadrant: str | None
    provider_npi: str


@dataclass(frozen=True)
class BenefitHistory:
    deductible_applied: Decimal = ZERO
    benefits_paid: Decimal = ZERO
    services: tuple[PriorService, ...] = ()

    def count_of(self, codes: frozenset[str]) -> int:
        return sum(1 for s in self.services if s.procedure in codes)

    def has(self, service: PriorService) -> bool:
        return service in self.services

    def plus(self, service: PriorService, deductible: Decimal, benefit: Decimal) -> BenefitHistory:
        return BenefitHistory(
            self.deductible_applied + deductible,
            self.benefits_paid + benefit,
            (*self.services, service),
        )


EMPTY_HISTORY = BenefitHistory()

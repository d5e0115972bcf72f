"""What a plan's schema cannot say: rules across its fields, and across the plans in force.

Both the operator (before it publishes a custom resource) and every loader of plan files
(adjudication's plans directory, `make run`) apply these, so a plan that would be refused in
a cluster is refused everywhere. Messages name plans, codes and categories, never claims.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from claimflow_shared.events import BenefitPlanSpecV1

from .cdt import category_of


def _is_pattern(group: str) -> bool:
    return any(c in group for c in "*?")


def spec_problems(spec: BenefitPlanSpecV1) -> list[str]:
    """Contradictions inside one plan; empty when it is consistent."""
    problems: list[str] = []
    covered: set[str] = set(spec.covered_categories)
    excluded = set(spec.excluded_codes)
    if not spec.default and not spec.groups:
        problems.append("a plan that is not the default must name at least one group number")
    if spec.effective_from and spec.effective_to and spec.effective_to < spec.effective_from:
        problems.append("effectiveTo is before effectiveFrom")
    for category in spec.covered_categories:
        if category not in spec.coinsurance:
            problems.append(f"covered category {category} has no coinsurance")
    for category in spec.deductible.waived_categories:
        if category not in covered:
            problems.append(f"the deductible is waived for {category}, which is not covered")
    limited: dict[str, int] = {}
    for index, limit in enumerate(spec.frequency_limits):
        for code in limit.codes:
            if code in limited and limited[code] != index:
                problems.append(f"{code} is in frequency limits {limited[code]} and {index}")
            limited[code] = index
            problems.extend(_code_problems(code, "a frequency limit", covered, excluded))
    for code in spec.fee_schedule:
        problems.extend(_code_problems(code, "the fee schedule", covered, excluded))
    for code in excluded:
        if category_of(code) is None:
            problems.append(f"excluded code {code} is in no CDT category")
    return problems


def _code_problems(code: str, where: str, covered: set[str], excluded: set[str]) -> list[str]:
    category = category_of(code)
    if category is None:
        return [f"{where} names {code}, which is in no CDT category"]
    if category not in covered:
        return [f"{where} names {code}, whose category {category} is not covered"]
    if code in excluded:
        return [f"{where} names {code}, which the plan excludes"]
    return []


@dataclass(frozen=True)
class PlanRef:
    """A plan among the plans in force: its topic identity and spec."""

    namespace: str
    name: str
    spec: BenefitPlanSpecV1

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def conflicts(candidate: PlanRef, others: Iterable[PlanRef]) -> list[str]:
    """Why `candidate` cannot be in force next to `others`; empty when it can.

    Adjudication resolves a plan/group number exact-first, so an exact number inside another
    plan's pattern is a deliberate override. Anything else that two plans both match (the same
    exact number, or two patterns with a number in common) would be decided by tie-breaks
    nobody chose, so it is refused, as are a second default plan and a second plan with the
    same name (claims record plans by name).
    """
    problems: list[str] = []
    for other in others:
        if other.key == candidate.key:
            continue
        if other.name == candidate.name:
            problems.append(f"plan name {candidate.name} is already used by {other.key}")
        if candidate.spec.default and other.spec.default:
            problems.append(f"{other.key} is already the default plan")
        for mine in candidate.spec.groups:
            for theirs in other.spec.groups:
                if _ambiguous(mine, theirs):
                    problems.append(f"group number {mine} overlaps {theirs} of {other.key}")
    return problems


def _ambiguous(first: str, second: str) -> bool:
    a, b = first.upper(), second.upper()
    if _is_pattern(a) != _is_pattern(b):
        return False
    if not _is_pattern(a):
        return a == b
    return globs_overlap(a, b)


def globs_overlap(first: str, second: str) -> bool:
    """Whether some string matches both patterns (`*` any run, `?` one character)."""

    @cache
    def match(i: int, j: int) -> bool:
        if i == len(first) and j == len(second):
            return True
        # A star matches nothing, or swallows the other pattern's next item.
        star_first = i < len(first) and first[i] == "*"
        if star_first and (match(i + 1, j) or (j < len(second) and match(i, j + 1))):
            return True
        star_second = j < len(second) and second[j] == "*"
        if star_second and (match(i, j + 1) or (i < len(first) and match(i + 1, j))):
            return True
        if i < len(first) and j < len(second) and "*" not in (first[i], second[j]):
            same = first[i] == second[j] or "?" in (first[i], second[j])
            return same and match(i + 1, j + 1)
        return False

    return match(0, 0)


def plan_set_problems(plans: Iterable[PlanRef]) -> list[str]:
    """Every problem of a set of plans loaded together (files): each against those before it."""
    problems: list[str] = []
    accepted: list[PlanRef] = []
    for plan in plans:
        problems.extend(f"{plan.key}: {p}" for p in spec_problems(plan.spec))
        problems.extend(f"{plan.key}: {p}" for p in conflicts(plan, accepted))
        accepted.append(plan)
    return problems

"""Whether a BenefitPlan may be published: its spec parses, is consistent, and does not clash
with the plans in force. Pure: the resource and the operator's index in, a verdict out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from claimflow_shared.events import BenefitPlanSpecV1
from claimflow_shared.plans import PlanRef, conflicts, spec_problems

# Condition reasons, stable for alerts and `kubectl wait`.
REASON_VALID = "Valid"
REASON_SPEC_INVALID = "SpecInvalid"
REASON_INCONSISTENT = "Inconsistent"
REASON_CONFLICT = "Conflict"


@dataclass(frozen=True)
class IndexedPlan:
    """What the operator remembers of every BenefitPlan it watches (its kopf index)."""

    namespace: str
    name: str
    generation: int
    created: str
    spec: Mapping[str, Any]
    deleting: bool
    # The Valid condition's status, if it was decided for the current generation.
    valid_now: bool | None
    reason: str | None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in status.get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return None


def indexed(body: Mapping[str, Any]) -> IndexedPlan:
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    generation = int(meta.get("generation") or 1)
    valid = _condition(status, "Valid")
    decided = valid is not None and valid.get("observedGeneration") == generation
    return IndexedPlan(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        generation=generation,
        created=str(meta.get("creationTimestamp") or ""),
        spec=dict(body.get("spec") or {}),
        deleting=bool(meta.get("deletionTimestamp")),
        valid_now=(valid.get("status") == "True") if decided and valid is not None else None,
        reason=str(valid.get("reason")) if valid is not None else None,
    )


@dataclass(frozen=True)
class Verdict:
    reason: str
    problems: tuple[str, ...] = ()
    spec: BenefitPlanSpecV1 | None = None

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def message(self) -> str:
        if not self.problems:
            return "the plan is consistent and clashes with no other plan"
        text = "; ".join(self.problems)
        # A condition message is for people: the first problems say enough.
        return text if len(text) <= 1000 else text[:997] + "..."


def parse_spec(spec: Mapping[str, Any]) -> BenefitPlanSpecV1 | list[str]:
    try:
        return BenefitPlanSpecV1.model_validate(spec)
    except ValidationError as exc:
        return [f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]


def _in_force(other: IndexedPlan, candidate: IndexedPlan) -> bool:
    """Whether `other` holds its groups against `candidate`: it is valid now, or it is still
    undecided and older (so of two clashing plans that arrive together the older wins)."""
    if other.deleting:
        return False
    if other.valid_now is not None:
        return other.valid_now
    return (other.created, other.key) < (candidate.created, candidate.key)


def evaluate(candidate: IndexedPlan, index: Iterable[IndexedPlan]) -> Verdict:
    parsed = parse_spec(candidate.spec)
    if isinstance(parsed, list):
        return Verdict(REASON_SPEC_INVALID, tuple(parsed))
    problems = spec_problems(parsed)
    if problems:
        return Verdict(REASON_INCONSISTENT, tuple(problems), parsed)
    others: list[PlanRef] = []
    for other in index:
        if other.key == candidate.key or not _in_force(other, candidate):
            continue
        other_spec = parse_spec(other.spec)
        if isinstance(other_spec, BenefitPlanSpecV1):
            others.append(PlanRef(other.namespace, other.name, other_spec))
    clashes = conflicts(PlanRef(candidate.namespace, candidate.name, parsed), others)
    if clashes:
        return Verdict(REASON_CONFLICT, tuple(clashes), parsed)
    return Verdict(REASON_VALID, (), parsed)

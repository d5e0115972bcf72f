"""The plans in force in this process: from files and the plans topic (the topic wins)."""

from __future__ import annotations

from claimflow_adjudication.adapters.plans import PlanEntry, PlanRegistry
from claimflow_adjudication.domain.errors import PlanNotFoundError


def plans_in_force(registry: PlanRegistry) -> list[PlanEntry]:
    return list(registry.entries())


def plan_in_force(registry: PlanRegistry, plan_id: str) -> PlanEntry:
    entry = next((e for e in registry.entries() if e.plan.plan_id == plan_id), None)
    if entry is None:
        raise PlanNotFoundError("No active plan has this id.")
    return entry

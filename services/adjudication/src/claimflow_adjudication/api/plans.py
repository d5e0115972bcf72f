"""/v1/plans: the benefit plans this service applies now, with their generations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from claimflow_adjudication.adapters.plans import PlanEntry
from claimflow_adjudication.service_layer.plans import plan_in_force, plans_in_force
from claimflow_shared.web.problems import problem_responses

from .deps import PayerReader, PlansDep
from .schemas import PlanList, PlanOut

router = APIRouter(prefix="/v1/plans", tags=["plans"])


def _out(entry: PlanEntry) -> PlanOut:
    return PlanOut(
        plan_id=entry.plan.plan_id,
        namespace=entry.namespace,
        version=entry.plan.version,
        display_name=entry.plan.display_name,
        default=entry.plan.is_default,
        groups=list(entry.plan.groups),
        source=entry.source,
        loaded_at=entry.loaded_at,
        spec=entry.spec.model_dump(mode="json"),
    )


@router.get(
    "", response_model=PlanList, summary="Active plans", responses=problem_responses(401, 403)
)
async def list_plans(_principal: PayerReader, plans: PlansDep) -> PlanList:
    """Every plan this API process applies, from files and the plans topic (topic wins)."""
    return PlanList(plans=[_out(e) for e in plans_in_force(plans)])


@router.get(
    "/{plan_id}",
    response_model=PlanOut,
    summary="One active plan",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_plan(
    _principal: PayerReader,
    plans: PlansDep,
    plan_id: Annotated[str, Path(max_length=63)],
) -> PlanOut:
    return _out(plan_in_force(plans, plan_id))

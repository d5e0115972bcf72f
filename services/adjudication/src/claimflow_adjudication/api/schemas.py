"""The API's documented response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from claimflow_shared.money import Money


class ProviderTotal(BaseModel):
    provider_npi: str = Field(examples=["1497775530"])
    net_fee_total: Money = Field(
        description="sum of the net fees of the provider's standing claims"
    )
    claim_count: int = Field(description="standing claims with at least one line of the provider")


class TopProviders(BaseModel):
    providers: list[ProviderTotal] = Field(
        description="largest net_fee_total first; ties by provider_npi ascending"
    )
    as_of: datetime = Field(description="when these totals were read")


class PlanOut(BaseModel):
    plan_id: str = Field(description="the BenefitPlan's name; results record it")
    namespace: str = Field(description="the BenefitPlan's namespace; key = namespace/plan_id")
    version: int = Field(description="the plan's generation; results record the one applied")
    display_name: str | None
    default: bool
    groups: list[str]
    source: Literal["file", "topic"]
    loaded_at: datetime = Field(description="when this process started applying this version")
    spec: dict[str, Any] = Field(description="the BenefitPlan spec, as published")


class PlanList(BaseModel):
    plans: list[PlanOut]

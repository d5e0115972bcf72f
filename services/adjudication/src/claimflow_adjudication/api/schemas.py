"""The API's documented response shapes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

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


class RemittanceOut(BaseModel):
    """One payee's 835 of one run; the X12 text is at /v1/remittances/{id}."""

    id: UUID
    payee_npi: str = Field(examples=["1497775530"])
    period_from: date = Field(description="first day (UTC) of the run's settlement period")
    period_to: date = Field(description="last day (UTC), included")
    control_number: int = Field(description="ISA13/GS06/TRN02 of the interchange")
    claim_count: int = Field(description="claims (CLP) on the 835: payments and reversals")
    total_charge: Money = Field(description="sum of CLP03")
    total_paid: Money = Field(description="BPR02 = sum of CLP04 - sum of PLB")
    net_fee: Money = Field(description="the claims' net fees (reversals negated)")
    balance_forward: Money = Field(
        description="the PLB FB amount: negative forwards what the payee owes, positive recovers it"
    )
    created_at: datetime


class RemittancePage(BaseModel):
    items: list[RemittanceOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null at end")

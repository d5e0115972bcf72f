"""The event payloads (CloudEvents `data`), one pydantic model per versioned type.

A breaking change makes a new type (`...v2`) next to the old one; consumers accept both
until every producer has moved.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from claimflow_shared.money import Money


class Topics:
    """Topic names before the deployment's prefix is applied."""

    CLAIMS_SUBMITTED = "claims.submitted"
    CLAIMS_ADJUDICATED = "claims.adjudicated"
    CLAIMS_REVERSED = "claims.reversed"
    PAYMENTS_REQUESTED = "payments.requested"
    PAYMENTS_COMPLETED = "payments.completed"
    PAYMENTS_FAILED = "payments.failed"
    AUDIT_ACCESS = "audit.access"
    PLANS = "claimflow.plans"


# Topics whose events carry PHI (subscriber numbers, service dates): kept shorter.
PHI_TOPICS = frozenset({Topics.CLAIMS_SUBMITTED})


class EventData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClaimLineV1(EventData):
    line_no: int = Field(ge=1)
    service_date: date
    submitted_procedure: str = Field(pattern=r"^D\d{4}$")
    quadrant: Literal["UR", "UL", "LR", "LL"] | None = None
    plan_group: str
    subscriber_number: str
    provider_npi: str = Field(pattern=r"^\d{10}$")
    provider_fees: Money
    allowed_fees: Money
    member_coinsurance: Money
    member_copay: Money
    net_fee: Money


class ClaimTotalsV1(EventData):
    net_fee: Money


class ClaimSubmittedV1(EventData):
    """A claim intake accepted; carries what adjudication needs (PHI stays inside Kafka)."""

    claim_id: UUID
    external_id: str | None = None
    submitted_at: datetime
    submitted_by: str
    lines: list[ClaimLineV1] = Field(min_length=1)
    totals: ClaimTotalsV1


class LineAmountsV1(EventData):
    """FHIR ClaimResponse adjudication categories for one line."""

    submitted: Money
    eligible: Money
    copay: Money
    deductible: Money
    benefit: Money


class AdjudicatedLineV1(EventData):
    line_no: int = Field(ge=1)
    outcome: Literal["approved", "reduced", "denied"]
    reason_codes: list[str] = Field(default_factory=list, description="CARC codes, e.g. 96")
    net_fee: Money
    amounts: LineAmountsV1


class AdjudicatedTotalsV1(EventData):
    net_fee: Money
    submitted: Money
    eligible: Money
    benefit: Money


class ClaimAdjudicatedV1(EventData):
    claim_id: UUID
    status: Literal["adjudicated", "rejected"]
    outcome: Literal["complete", "partial", "error"]
    plan_id: str
    plan_version: int = Field(ge=0)
    adjudicated_at: datetime
    lines: list[AdjudicatedLineV1]
    totals: AdjudicatedTotalsV1


class ClaimReversedV1(EventData):
    """A compensation: the claim's effects were taken back (e.g. its payment failed)."""

    claim_id: UUID
    status: Literal["payment_failed", "reversed"]
    reason: str
    reversed_at: datetime
    net_fee: Money


class PaymentRequestedV1(EventData):
    payment_id: UUID
    claim_id: UUID
    provider_npi: str
    amount: Money
    requested_at: datetime


class PaymentCompletedV1(EventData):
    payment_id: UUID
    claim_id: UUID
    amount: Money
    completed_at: datetime


class PaymentFailedV1(EventData):
    payment_id: UUID
    claim_id: UUID
    reason: str
    failed_at: datetime


# claim.read: the claim was read whole; claim.list: it was on a page of a list;
# audit.timeline: a page of its audit timeline was read (recorded by the audit log itself);
# remittance.read: an 835 that carries it was read (recorded by adjudication).
AccessAction = Literal["claim.read", "claim.list", "audit.timeline", "remittance.read"]


class AuditAccessV1(EventData):
    """Someone read PHI: who, which claim, when, how."""

    claim_id: UUID
    principal: str
    action: AccessAction
    accessed_at: datetime


PlanCategory = Literal["diagnostic", "preventive", "basic", "major", "orthodontic"]
CdtCode = Annotated[str, Field(pattern=r"^D\d{4}$")]
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]


class PlanSpecData(EventData):
    """A BenefitPlan custom resource's spec, camelCase as in Kubernetes, on the wire too."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class PlanDeductibleV1(PlanSpecData):
    amount: Money = Decimal("0.00")
    waived_categories: list[PlanCategory] = Field(
        default_factory=list, description="categories the deductible does not apply to"
    )


class PlanFrequencyLimitV1(PlanSpecData):
    codes: list[CdtCode] = Field(min_length=1, description="codes that share the limit")
    count: int = Field(ge=0, description="services allowed per period")
    period: Literal["benefitYear"] = "benefitYear"


class BenefitPlanSpecV1(PlanSpecData):
    display_name: str | None = Field(default=None, max_length=200)
    default: bool = Field(default=False, description="used for plan/group numbers no plan names")
    groups: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_*?-]{1,30}$")]] = Field(
        default_factory=list, description="plan/group numbers, exact or with * and ? wildcards"
    )
    effective_from: date | None = None
    effective_to: date | None = None
    benefit_year_start_month: int = Field(default=1, ge=1, le=12)
    covered_categories: list[PlanCategory] = Field(min_length=1)
    coinsurance: dict[PlanCategory, Percent] = Field(
        description="percent of the eligible amount (after deductible and copay) the plan pays"
    )
    deductible: PlanDeductibleV1 = Field(default_factory=PlanDeductibleV1)
    annual_maximum: Money | None = Field(default=None, description="benefit cap per benefit year")
    frequency_limits: list[PlanFrequencyLimitV1] = Field(default_factory=list)
    fee_schedule: dict[CdtCode, Money] = Field(
        default_factory=dict, description="maximum allowed amount per CDT code"
    )
    excluded_codes: list[CdtCode] = Field(default_factory=list)


class PlanPublishedV1(EventData):
    """The current generation of a BenefitPlan; the compacted plans topic keys it by
    `namespace/plan_id`, the custom resource's namespace and name.

    A null value under the key (a tombstone) withdraws the plan.
    """

    plan_id: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="the BenefitPlan's name; claims record it",
    )
    namespace: str = Field(
        default="default",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="the BenefitPlan's namespace",
    )
    generation: int = Field(ge=1, description="increases with every change of the spec")
    spec: BenefitPlanSpecV1
    published_at: datetime


EVENT_TYPES: dict[str, type[EventData]] = {
    "io.claimflow.claim.submitted.v1": ClaimSubmittedV1,
    "io.claimflow.claim.adjudicated.v1": ClaimAdjudicatedV1,
    "io.claimflow.claim.reversed.v1": ClaimReversedV1,
    "io.claimflow.payment.requested.v1": PaymentRequestedV1,
    "io.claimflow.payment.completed.v1": PaymentCompletedV1,
    "io.claimflow.payment.failed.v1": PaymentFailedV1,
    "io.claimflow.audit.access.v1": AuditAccessV1,
    "io.claimflow.plan.published.v1": PlanPublishedV1,
}
TYPE_OF: dict[type[EventData], str] = {model: name for name, model in EVENT_TYPES.items()}
# The one event type each topic carries. A consumer that acts on events refuses (dead-letters)
# any other type on a topic: a forged `claims.submitted` on `payments.completed` changes nothing.
TOPIC_TYPES: dict[str, str] = {
    Topics.CLAIMS_SUBMITTED: "io.claimflow.claim.submitted.v1",
    Topics.CLAIMS_ADJUDICATED: "io.claimflow.claim.adjudicated.v1",
    Topics.CLAIMS_REVERSED: "io.claimflow.claim.reversed.v1",
    Topics.PAYMENTS_REQUESTED: "io.claimflow.payment.requested.v1",
    Topics.PAYMENTS_COMPLETED: "io.claimflow.payment.completed.v1",
    Topics.PAYMENTS_FAILED: "io.claimflow.payment.failed.v1",
    Topics.AUDIT_ACCESS: "io.claimflow.audit.access.v1",
    Topics.PLANS: "io.claimflow.plan.published.v1",
}

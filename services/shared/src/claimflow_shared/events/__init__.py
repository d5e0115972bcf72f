"""CloudEvents envelope and the versioned event catalog every service speaks."""

from .catalog import (
    EVENT_TYPES,
    AdjudicatedLineV1,
    AuditAccessV1,
    BenefitPlanSpecV1,
    ClaimAdjudicatedV1,
    ClaimLineV1,
    ClaimReversedV1,
    ClaimSubmittedV1,
    ClaimTotalsV1,
    LineAmountsV1,
    PaymentCompletedV1,
    PaymentFailedV1,
    PaymentRequestedV1,
    PlanPublishedV1,
    Topics,
)
from .envelope import CloudEvent, EventDecodeError, decode_event, new_event

__all__ = [
    "EVENT_TYPES",
    "AdjudicatedLineV1",
    "AuditAccessV1",
    "BenefitPlanSpecV1",
    "ClaimAdjudicatedV1",
    "ClaimLineV1",
    "ClaimReversedV1",
    "ClaimSubmittedV1",
    "ClaimTotalsV1",
    "CloudEvent",
    "EventDecodeError",
    "LineAmountsV1",
    "PaymentCompletedV1",
    "PaymentFailedV1",
    "PaymentRequestedV1",
    "PlanPublishedV1",
    "Topics",
    "decode_event",
    "new_event",
]

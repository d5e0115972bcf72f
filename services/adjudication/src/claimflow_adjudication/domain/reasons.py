"""CARC (Claim Adjustment Reason Code) values this service puts on adjudicated lines.

Only adjustments are coded: the member's deductible, copay and coinsurance are amounts in the
result (FHIR ClaimResponse categories), not reasons.
"""

from __future__ import annotations

LACKS_INFORMATION = "16"  # claim/service lacks information or has submission/billing error(s)
DUPLICATE = "18"  # exact duplicate claim/service
BEFORE_COVERAGE = "26"  # expenses incurred prior to coverage
AFTER_COVERAGE = "27"  # expenses incurred after coverage terminated
EXCEEDS_FEE_SCHEDULE = "45"  # charge exceeds fee schedule/maximum allowable
NOT_COVERED = "96"  # non-covered charge(s)
BENEFIT_MAXIMUM = "119"  # benefit maximum for this time period has been reached
FREQUENCY = "151"  # information submitted does not support this many/frequency of services

DESCRIPTIONS: dict[str, str] = {
    LACKS_INFORMATION: "Claim/service lacks information or has submission/billing error(s)",
    DUPLICATE: "Exact duplicate claim/service",
    BEFORE_COVERAGE: "Expenses incurred prior to coverage",
    AFTER_COVERAGE: "Expenses incurred after coverage terminated",
    EXCEEDS_FEE_SCHEDULE: "Charge exceeds fee schedule/maximum allowable",
    NOT_COVERED: "Non-covered charge(s)",
    BENEFIT_MAXIMUM: "Benefit maximum for this time period or occurrence has been reached",
    FREQUENCY: "Frequency of services exceeds what the plan allows",
}

"""intake's business metrics (HTTP RED metrics come from the shared middleware)."""

from prometheus_client import Counter

CLAIMS_ACCEPTED = Counter(
    "claimflow_claims_accepted_total", "Claims accepted for adjudication", ["channel"]
)
VALIDATION_FAILURES = Counter(
    "claimflow_claim_validation_failures_total",
    "Failed validation rules in rejected submissions, by rule",
    ["rule"],
)
STATUS_CHANGES = Counter(
    "claimflow_claim_status_changes_total", "Claim status changes applied by intake", ["status"]
)

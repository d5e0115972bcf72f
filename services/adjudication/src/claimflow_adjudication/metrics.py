"""adjudication's business metrics, all in one place (HTTP RED metrics, consumer lag and the
outbox come from claimflow_shared)."""

from prometheus_client import Counter, Gauge

CLAIMS_ADJUDICATED = Counter(
    "claimflow_claims_adjudicated_total", "Claims adjudicated, by outcome", ["outcome"]
)
LINE_REASONS = Counter(
    "claimflow_adjudication_line_reasons_total", "Adjustment reason codes given to lines", ["carc"]
)
PAYMENTS_REQUESTED = Counter("claimflow_payments_requested_total", "Payments requested")
PAYMENT_RESULTS = Counter(
    "claimflow_payment_results_total",
    "Payment results applied, by result (completed, failed, repeated, conflicting)",
    ["result"],
)
PLAN_GENERATION = Gauge(
    "claimflow_plan_generation", "Generation of each plan this process applies", ["plan", "source"]
)
PLAN_UPDATES_REJECTED = Counter(
    "claimflow_plan_updates_rejected_total", "Plan messages that could not be applied"
)

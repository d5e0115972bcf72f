"""The operator's Prometheus metrics. Labels are reasons, never plan contents."""

from __future__ import annotations

from prometheus_client import Counter

PLANS_PUBLISHED = Counter(
    "claimflow_operator_plans_published_total", "Plan generations published to the plans topic"
)
PLANS_INVALID = Counter(
    "claimflow_operator_plans_invalid_total",
    "Plan generations refused and not published",
    ["reason"],
)
PUBLISH_FAILURES = Counter(
    "claimflow_operator_publish_failures_total",
    "Writes to the plans topic that failed (retried)",
    ["operation"],
)
PLANS_WITHDRAWN = Counter(
    "claimflow_operator_plans_withdrawn_total",
    "Tombstones written: deleted resources, and ones found gone at start",
    ["cause"],
)

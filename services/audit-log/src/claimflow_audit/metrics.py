"""The audit log's Prometheus metrics (consumer lag comes from the shared consumer)."""

from __future__ import annotations

import math

from prometheus_client import Counter, Gauge, Histogram

RECORDS_APPENDED = Counter(
    "claimflow_audit_records_appended_total",
    "Records appended to the audit chain, by kind (event, tombstone, checkpoint) and topic",
    ["kind", "topic"],
)
DUPLICATES_SKIPPED = Counter(
    "claimflow_audit_duplicates_skipped_total",
    "Redelivered events already in the chain, so not appended again",
)
CHAIN_LENGTH = Gauge(
    "claimflow_audit_chain_length", "Records in the audit chain (the head's sequence number)"
)
APPEND_DURATION = Histogram(
    "claimflow_audit_append_duration_seconds",
    "One batch's append transaction: lock, chain, insert, commit",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
APPEND_BATCH_SIZE = Histogram(
    "claimflow_audit_append_batch_records",
    "Records per append transaction",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
VERIFY_DURATION = Histogram(
    "claimflow_audit_verify_duration_seconds",
    "Time to re-walk (part of) the chain",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900),
)
VERIFY_RECORDS = Counter(
    "claimflow_audit_verify_records_total", "Records re-hashed by verification"
)
CHAIN_VALID = Gauge(
    "claimflow_audit_chain_valid",
    "1 when this process's last full verification found the chain intact, 0 when it did not",
)
# NaN until this process has verified: a fresh process must not read as a broken chain (the
# alert is `min(...) == 0`, and min ignores NaN while any process has a verdict).
CHAIN_VALID.set(math.nan)
CHAIN_VERIFIED_SEQ = Gauge(
    "claimflow_audit_chain_verified_seq",
    "Highest seq up to which the worker's scheduled verification found the chain intact",
)
CHAIN_VERIFIED_SEQ.set(math.nan)
VERIFY_RUNS = Counter(
    "claimflow_audit_verify_runs_total",
    "Scheduled verification runs of the worker, by result: ok, broken, error (not finished)",
    ["result"],
)
for _result in ("ok", "broken", "error"):
    # Every series from the start, so increase() sees a run's first occurrence.
    VERIFY_RUNS.labels(_result)
LAST_CHECKPOINT = Gauge(
    "claimflow_audit_last_checkpoint_timestamp_seconds",
    "Unix time of the last checkpoint this process appended",
)

"""adjudication's tables (SQLAlchemy Core); the Alembic migrations create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    Sequence,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from claimflow_shared.db import MONEY
from claimflow_shared.outbox import install_outbox_tables

metadata = MetaData()

# Running sums over many claims outgrow one claim's NUMERIC(12,2); still exact decimals.
MONEY_TOTAL = Numeric(16, 2, asdecimal=True)

claims = Table(
    "claims",
    metadata,
    Column("claim_id", Uuid, primary_key=True),
    Column("event_id", String(64), nullable=False),
    # adjudicated | rejected | paid | payment_failed
    Column("status", String(20), nullable=False),
    # complete | partial | error (FHIR ClaimResponse.outcome)
    Column("outcome", String(10), nullable=False),
    Column("plan_id", String(63), nullable=False),
    Column("plan_version", Integer, nullable=False),
    Column("billing_provider_npi", String(10), nullable=False),
    Column("net_fee", MONEY, nullable=False),
    Column("submitted", MONEY, nullable=False),
    Column("eligible", MONEY, nullable=False),
    Column("benefit", MONEY, nullable=False),
    # The saga: not_required | requested | completed | failed
    Column("payment_status", String(20), nullable=False),
    Column("payment_id", Uuid, nullable=True, unique=True),
    Column("payment_reason", Text, nullable=True),
    # When the payment completed or failed: the instant a remittance run's period selects on.
    Column("settled_at", DateTime(timezone=True), nullable=True),
    Column("adjudicated_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

claim_line_results = Table(
    "claim_line_results",
    metadata,
    Column("claim_id", Uuid, ForeignKey("claims.claim_id", ondelete="CASCADE"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("plan_id", String(63), nullable=False),
    Column("subscriber_number", String(30), nullable=False),
    Column("benefit_year", Date, nullable=False),
    Column("service_date", Date, nullable=False),
    Column("procedure", String(5), nullable=False),
    Column("quadrant", String(2), nullable=True),
    Column("provider_npi", String(10), nullable=False),
    Column("category", String(12), nullable=True),
    Column("outcome", String(10), nullable=False),
    Column("reason_codes", ARRAY(String(4)), nullable=False),
    Column("net_fee", MONEY, nullable=False),
    Column("submitted", MONEY, nullable=False),
    Column("eligible", MONEY, nullable=False),
    Column("deductible", MONEY, nullable=False),
    Column("copay", MONEY, nullable=False),
    Column("coinsurance", MONEY, nullable=False),
    Column("benefit", MONEY, nullable=False),
    # True while the line is part of the subscriber's history (granted, claim not reversed).
    Column("counted", Boolean, nullable=False),
    Index(
        "claim_line_results_history",
        "plan_id",
        "subscriber_number",
        "benefit_year",
        postgresql_where=text("counted"),
    ),
)

benefit_accumulators = Table(
    "benefit_accumulators",
    metadata,
    Column("plan_id", String(63), primary_key=True),
    Column("subscriber_number", String(30), primary_key=True),
    Column("benefit_year", Date, primary_key=True),
    Column("deductible_applied", MONEY, nullable=False),
    Column("benefits_paid", MONEY, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

provider_totals = Table(
    "provider_totals",
    metadata,
    Column("provider_npi", String(10), primary_key=True),
    Column("net_fee_total", MONEY_TOTAL, nullable=False),
    Column("claim_count", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The top-k read walks this index from its start: O(log n + k), never the table.
    Index("provider_totals_rank", text("net_fee_total DESC"), "provider_npi"),
)

# Interchange control numbers (ISA13/GS06/TRN02) of the remittances, unique per sender.
remittance_control_numbers = Sequence(
    "remittance_control_numbers", start=1, maxvalue=999_999_999, cycle=True, metadata=metadata
)

remittances = Table(
    "remittances",
    metadata,
    Column("remittance_id", Uuid, primary_key=True),
    Column("payee_npi", String(10), nullable=False),
    Column("period_from", Date, nullable=False),
    Column("period_to", Date, nullable=False),
    Column("control_number", Integer, nullable=False),
    Column("claim_count", Integer, nullable=False),
    Column("total_charge", MONEY_TOTAL, nullable=False),
    # BPR02: the claims' payments less the provider-level adjustments.
    Column("total_paid", MONEY_TOTAL, nullable=False),
    Column("net_fee", MONEY_TOTAL, nullable=False),
    # The PLB FB amount: negative forwards what the payee owes, positive recovers it.
    Column("balance_forward", MONEY_TOTAL, nullable=False),
    Column("x12", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("remittances_by_payee", "payee_npi", text("created_at DESC"), text("remittance_id DESC")),
    Index("remittances_listing", text("created_at DESC"), text("remittance_id DESC")),
)

# Which claims each remittance carries: a claim's payment and its reversal each once.
remittance_claims = Table(
    "remittance_claims",
    metadata,
    Column("claim_id", Uuid, ForeignKey("claims.claim_id"), primary_key=True),
    # payment | reversal
    Column("kind", String(10), primary_key=True),
    Column(
        "remittance_id",
        Uuid,
        ForeignKey("remittances.remittance_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
)

outbox, processed_events = install_outbox_tables(metadata)

"""intake's tables (SQLAlchemy Core); the Alembic migrations create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from claimflow_shared.db import MONEY
from claimflow_shared.outbox import install_outbox_tables

metadata = MetaData()


claims = Table(
    "claims",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("external_id", String(100), nullable=True),
    Column("status", String(20), nullable=False),
    # Statuses only move forward; events from different topics may arrive in any order.
    Column("status_rank", SmallInteger, nullable=False),
    Column("submitted_by", String(100), nullable=False),
    # Who may read it: the submitting principal's organisation (payer roles read all).
    Column("organisation", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("line_count", Integer, nullable=False),
    Column("net_fee_total", MONEY, nullable=False),
    Column("adjudication", JSONB, nullable=True),
    Index("claims_created", "created_at", "id"),
    Index("claims_status_created", "status", "created_at", "id"),
    Index("claims_organisation_created", "organisation", "created_at", "id"),
)

claim_lines = Table(
    "claim_lines",
    metadata,
    Column("claim_id", Uuid, ForeignKey("claims.id", ondelete="CASCADE"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("service_date", Date, nullable=False),
    Column("submitted_procedure", String(5), nullable=False),
    Column("quadrant", String(2), nullable=True),
    Column("plan_group", String(30), nullable=False),
    Column("subscriber_number", String(30), nullable=False),
    Column("provider_npi", String(10), nullable=False),
    Column("provider_fees", MONEY, nullable=False),
    Column("allowed_fees", MONEY, nullable=False),
    Column("member_coinsurance", MONEY, nullable=False),
    Column("member_copay", MONEY, nullable=False),
    Column("net_fee", MONEY, nullable=False),
    Column("adjudication", JSONB, nullable=True),
    Index("claim_lines_provider", "provider_npi", "claim_id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", String(100), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("response_status", SmallInteger, nullable=True),
    Column("response_body", JSONB, nullable=True),
    Column("location", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

outbox, processed_events = install_outbox_tables(metadata)

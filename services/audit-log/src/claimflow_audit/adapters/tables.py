"""audit-log's table (SQLAlchemy Core); the Alembic migrations create exactly this."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

APPEND_ONLY_TRIGGER = "audit_records_append_only"

audit_records = Table(
    "audit_records",
    metadata,
    # Assigned by the single writer as head + 1, never by a sequence: sequences leave gaps
    # on rollback, and a gap must mean a deleted record.
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", Text, nullable=False, unique=True),
    Column("type", Text, nullable=False),
    Column("source", Text, nullable=True),
    Column("subject", Text, nullable=True),
    Column("actor", Text, nullable=True),
    Column("trace_id", String(32), nullable=True),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("topic", Text, nullable=True),
    Column("kafka_partition", Integer, nullable=True),
    Column("kafka_offset", BigInteger, nullable=True),
    Column("payload_digest", String(64), nullable=True),
    Column("detail", JSONB(none_as_null=True), nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # A claim's timeline: its records in event time order.
    Index("audit_records_subject", "subject", "event_time", "seq"),
    Index("audit_records_recorded_at", "recorded_at", "seq"),
)

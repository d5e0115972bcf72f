"""The outbox and processed-events tables, added to each service's own metadata."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

NOTIFY_CHANNEL = "claimflow_outbox"


def install_outbox_tables(metadata: MetaData) -> tuple[Table, Table]:
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("topic", String(249), nullable=False),
        Column("key", Text, nullable=True),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True), nullable=True),
        # The relay's work queue is the small set of unpublished rows, in insertion order.
        Index("outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
        Index(
            "outbox_published_at", "published_at", postgresql_where=text("published_at IS NOT NULL")
        ),
    )
    processed = Table(
        "processed_events",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    return outbox, processed


# Statement-level, so a transaction that writes many rows wakes the relay once.
NOTIFY_TRIGGER_SQL = [
    f"""
    CREATE OR REPLACE FUNCTION claimflow_outbox_notify() RETURNS trigger AS $$
    BEGIN
      PERFORM pg_notify('{NOTIFY_CHANNEL}', '');
      RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION claimflow_outbox_notify()
    """,
]
DROP_NOTIFY_TRIGGER_SQL = [
    "DROP TRIGGER IF EXISTS outbox_notify ON outbox",
    "DROP FUNCTION IF EXISTS claimflow_outbox_notify()",
]

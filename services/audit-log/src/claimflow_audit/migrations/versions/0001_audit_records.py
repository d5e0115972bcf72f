"""The audit chain table and the trigger that makes it append-only.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

HEX64 = "'^[0-9a-f]{64}$'"

# Statement-level and BEFORE: the statement fails before it touches a row, whoever runs it
# (owner and superuser included). Only an owner or superuser can disable the trigger, and the
# service's role is neither; the hash chain is what catches those who can.
APPEND_ONLY_FUNCTION = """
CREATE FUNCTION audit_records_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit_records is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'Audit records are never changed or removed; archive with claimflow-audit export.';
END
$$ LANGUAGE plpgsql
"""
APPEND_ONLY_TRIGGER = """
CREATE TRIGGER audit_records_append_only
BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_records
FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only()
"""


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=True),
        sa.Column("subject", sa.Text, nullable=True),
        sa.Column("actor", sa.Text, nullable=True),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("topic", sa.Text, nullable=True),
        sa.Column("kafka_partition", sa.Integer, nullable=True),
        sa.Column("kafka_offset", sa.BigInteger, nullable=True),
        sa.Column("payload_digest", sa.String(64), nullable=True),
        sa.Column("detail", JSONB, nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("event_id", name="audit_records_event_id_key"),
        sa.CheckConstraint("seq >= 1", name="audit_records_seq_positive"),
        sa.CheckConstraint(f"hash ~ {HEX64}", name="audit_records_hash_hex"),
        sa.CheckConstraint(f"prev_hash ~ {HEX64}", name="audit_records_prev_hash_hex"),
        sa.CheckConstraint(
            f"payload_digest IS NULL OR payload_digest ~ {HEX64}",
            name="audit_records_payload_digest_hex",
        ),
        sa.CheckConstraint("trace_id ~ '^[0-9a-f]{32}$'", name="audit_records_trace_id_hex"),
    )
    op.create_index("audit_records_subject", "audit_records", ["subject", "event_time", "seq"])
    op.create_index("audit_records_recorded_at", "audit_records", ["recorded_at", "seq"])
    op.execute("REVOKE ALL ON audit_records FROM PUBLIC")
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(APPEND_ONLY_TRIGGER)


def downgrade() -> None:
    # Dropping the table is the one way to remove records, and deliberately only by hand.
    raise RuntimeError("the audit trail is never downgraded: archive it and drop it by hand")

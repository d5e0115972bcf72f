"""Claims, their lines, idempotency keys, the outbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from claimflow_shared.outbox.migration import create_outbox_tables, drop_outbox_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

MONEY = sa.Numeric(12, 2)


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("external_id", sa.String(100), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_rank", sa.SmallInteger, nullable=False),
        sa.Column("submitted_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("line_count", sa.Integer, nullable=False),
        sa.Column("net_fee_total", MONEY, nullable=False),
        sa.Column("adjudication", JSONB, nullable=True),
    )
    op.create_index("claims_created", "claims", ["created_at", "id"])
    op.create_index("claims_status_created", "claims", ["status", "created_at", "id"])
    op.create_table(
        "claim_lines",
        sa.Column(
            "claim_id",
            sa.Uuid,
            sa.ForeignKey("claims.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("line_no", sa.Integer, primary_key=True),
        sa.Column("service_date", sa.Date, nullable=False),
        sa.Column("submitted_procedure", sa.String(5), nullable=False),
        sa.Column("quadrant", sa.String(2), nullable=True),
        sa.Column("plan_group", sa.String(30), nullable=False),
        sa.Column("subscriber_number", sa.String(30), nullable=False),
        sa.Column("provider_npi", sa.String(10), nullable=False),
        sa.Column("provider_fees", MONEY, nullable=False),
        sa.Column("allowed_fees", MONEY, nullable=False),
        sa.Column("member_coinsurance", MONEY, nullable=False),
        sa.Column("member_copay", MONEY, nullable=False),
        sa.Column("net_fee", MONEY, nullable=False),
        sa.Column("adjudication", JSONB, nullable=True),
    )
    op.create_index("claim_lines_provider", "claim_lines", ["provider_npi", "claim_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(100), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("response_status", sa.SmallInteger, nullable=True),
        sa.Column("response_body", JSONB, nullable=True),
        sa.Column("location", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    create_outbox_tables()


def downgrade() -> None:
    drop_outbox_tables()
    op.drop_table("idempotency_keys")
    op.drop_table("claim_lines")
    op.drop_table("claims")

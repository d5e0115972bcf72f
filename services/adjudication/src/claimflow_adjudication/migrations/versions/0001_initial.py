"""Claims and their line results, benefit accumulators, provider totals, the outbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

from claimflow_shared.outbox.migration import create_outbox_tables, drop_outbox_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

MONEY = sa.Numeric(12, 2)
MONEY_TOTAL = sa.Numeric(16, 2)


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("claim_id", sa.Uuid, primary_key=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("plan_id", sa.String(63), nullable=False),
        sa.Column("plan_version", sa.Integer, nullable=False),
        sa.Column("billing_provider_npi", sa.String(10), nullable=False),
        sa.Column("net_fee", MONEY, nullable=False),
        sa.Column("submitted", MONEY, nullable=False),
        sa.Column("eligible", MONEY, nullable=False),
        sa.Column("benefit", MONEY, nullable=False),
        sa.Column("payment_status", sa.String(20), nullable=False),
        sa.Column("payment_id", sa.Uuid, nullable=True, unique=True),
        sa.Column("payment_reason", sa.Text, nullable=True),
        sa.Column("adjudicated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_table(
        "claim_line_results",
        sa.Column(
            "claim_id",
            sa.Uuid,
            sa.ForeignKey("claims.claim_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("line_no", sa.Integer, primary_key=True),
        sa.Column("plan_id", sa.String(63), nullable=False),
        sa.Column("subscriber_number", sa.String(30), nullable=False),
        sa.Column("benefit_year", sa.Date, nullable=False),
        sa.Column("service_date", sa.Date, nullable=False),
        sa.Column("procedure", sa.String(5), nullable=False),
        sa.Column("quadrant", sa.String(2), nullable=True),
        sa.Column("provider_npi", sa.String(10), nullable=False),
        sa.Column("category", sa.String(12), nullable=True),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("reason_codes", ARRAY(sa.String(4)), nullable=False),
        sa.Column("net_fee", MONEY, nullable=False),
        sa.Column("submitted", MONEY, nullable=False),
        sa.Column("eligible", MONEY, nullable=False),
        sa.Column("deductible", MONEY, nullable=False),
        sa.Column("copay", MONEY, nullable=False),
        sa.Column("coinsurance", MONEY, nullable=False),
        sa.Column("benefit", MONEY, nullable=False),
        sa.Column("counted", sa.Boolean, nullable=False),
    )
    op.create_index(
        "claim_line_results_history",
        "claim_line_results",
        ["plan_id", "subscriber_number", "benefit_year"],
        postgresql_where=sa.text("counted"),
    )
    op.create_table(
        "benefit_accumulators",
        sa.Column("plan_id", sa.String(63), primary_key=True),
        sa.Column("subscriber_number", sa.String(30), primary_key=True),
        sa.Column("benefit_year", sa.Date, primary_key=True),
        sa.Column("deductible_applied", MONEY, nullable=False),
        sa.Column("benefits_paid", MONEY, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_table(
        "provider_totals",
        sa.Column("provider_npi", sa.String(10), primary_key=True),
        sa.Column("net_fee_total", MONEY_TOTAL, nullable=False),
        sa.Column("claim_count", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    )
    op.create_index(
        "provider_totals_rank",
        "provider_totals",
        [sa.text("net_fee_total DESC"), "provider_npi"],
    )
    create_outbox_tables()


def downgrade() -> None:
    drop_outbox_tables()
    op.drop_table("provider_totals")
    op.drop_table("benefit_accumulators")
    op.drop_index("claim_line_results_history", table_name="claim_line_results")
    op.drop_table("claim_line_results")
    op.drop_table("claims")

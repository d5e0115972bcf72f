"""Remittances (835) and the claims each carries; when a claim's payment settled.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MONEY_TOTAL = sa.Numeric(16, 2)


def upgrade() -> None:
    op.add_column("claims", sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True))
    # Claims settled before this revision: their last update was the settlement.
    op.execute(
        "UPDATE claims SET settled_at = updated_at WHERE payment_status IN ('completed', 'failed')"
    )
    op.execute(
        sa.schema.CreateSequence(
            sa.Sequence("remittance_control_numbers", start=1, maxvalue=999_999_999, cycle=True)
        )
    )
    op.create_table(
        "remittances",
        sa.Column("remittance_id", sa.Uuid, primary_key=True),
        sa.Column("payee_npi", sa.String(10), nullable=False),
        sa.Column("period_from", sa.Date, nullable=False),
        sa.Column("period_to", sa.Date, nullable=False),
        sa.Column("control_number", sa.Integer, nullable=False),
        sa.Column("claim_count", sa.Integer, nullable=False),
        sa.Column("total_charge", MONEY_TOTAL, nullable=False),
        sa.Column("total_paid", MONEY_TOTAL, nullable=False),
        sa.Column("net_fee", MONEY_TOTAL, nullable=False),
        sa.Column("balance_forward", MONEY_TOTAL, nullable=False),
        sa.Column("x12", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "remittances_by_payee",
        "remittances",
        ["payee_npi", sa.text("created_at DESC"), sa.text("remittance_id DESC")],
    )
    op.create_index(
        "remittances_listing",
        "remittances",
        [sa.text("created_at DESC"), sa.text("remittance_id DESC")],
    )
    op.create_table(
        "remittance_claims",
        sa.Column("claim_id", sa.Uuid, sa.ForeignKey("claims.claim_id"), primary_key=True),
        sa.Column("kind", sa.String(10), primary_key=True),
        sa.Column(
            "remittance_id",
            sa.Uuid,
            sa.ForeignKey("remittances.remittance_id", ondelete="CASCADE"),
            nullable=False,
        ),
    )
    op.create_index("ix_remittance_claims_remittance_id", "remittance_claims", ["remittance_id"])


def downgrade() -> None:
    op.drop_table("remittance_claims")
    op.drop_table("remittances")
    op.execute(sa.schema.DropSequence(sa.Sequence("remittance_control_numbers")))
    op.drop_column("claims", "settled_at")

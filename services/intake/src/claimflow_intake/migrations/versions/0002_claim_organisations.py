"""Claims belong to the organisation that submitted them.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("claims", sa.Column("organisation", sa.String(100), nullable=True))
    # Before organisations, each API key's principal acted on its own: the principal is the
    # organisation a key without one is given (claimflow_shared.settings.ApiKey).
    op.execute("UPDATE claims SET organisation = submitted_by")
    op.alter_column("claims", "organisation", nullable=False)
    # Every non-payer list is filtered by organisation, newest first.
    op.create_index("claims_organisation_created", "claims", ["organisation", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("claims_organisation_created", table_name="claims")
    op.drop_column("claims", "organisation")

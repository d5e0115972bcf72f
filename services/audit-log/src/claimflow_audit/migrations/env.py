"""Alembic environment of the audit-log database."""

from alembic import context

from claimflow_audit.adapters.tables import metadata
from claimflow_shared.migrate import run_env

run_env(context.config.attributes["database_url"], metadata, context.configure)

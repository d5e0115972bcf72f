"""Alembic environment of the adjudication database."""

from alembic import context

from claimflow_adjudication.adapters.tables import metadata
from claimflow_shared.migrate import run_env

run_env(context.config.attributes["database_url"], metadata, context.configure)

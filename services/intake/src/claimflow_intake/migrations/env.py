"""Alembic environment of the intake database."""

from alembic import context

from claimflow_intake.adapters.tables import metadata
from claimflow_shared.migrate import run_env

run_env(context.config.attributes["database_url"], metadata, context.configure)

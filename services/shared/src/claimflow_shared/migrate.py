"""Running a service's Alembic migrations from code (CLI, Helm hook Job, tests)."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from claimflow_shared.dburl import async_url

MIGRATION_LOCK = zlib.crc32(b"claimflow.migrations")


def alembic_config(script_location: str, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["database_url"] = database_url
    return config


def upgrade(script_location: str, database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(script_location, database_url), revision)


def run_env(database_url: str, metadata: MetaData, configure: Callable[..., None]) -> None:
    """Body of a service's migrations/env.py: online migrations over asyncpg, serialised."""

    def migrate(connection: Connection) -> None:
        # Two replicas (or a hook Job and a developer) migrating at once must not interleave.
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        configure(connection=connection, target_metadata=metadata)
        from alembic import context  # noqa: PLC0415 - only valid inside an Alembic run

        context.run_migrations()

    async def run() -> None:
        # Callers may pass a platform's postgresql:// URL straight through (tests, tools).
        engine = create_async_engine(async_url(database_url), poolclass=pool.NullPool)
        async with engine.begin() as conn:
            await conn.run_sync(migrate)
        await engine.dispose()

    asyncio.run(run())

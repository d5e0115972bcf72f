"""The async SQLAlchemy engine every service builds the same way, and the SQL type of money."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Numeric
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from claimflow_shared.settings import ServiceSettings

# One claim's or line's amount: exact decimals to the cent, read back as Decimal.
MONEY = Numeric(12, 2, asdecimal=True)


def connect_args(
    settings: ServiceSettings, application_name: str, **server_settings: str
) -> dict[str, Any]:
    """asyncpg's connect() arguments every engine of a service shares: the connect timeout,
    and session settings applied as each connection starts (no extra round trip)."""
    return {
        "timeout": settings.database_connect_timeout_seconds,
        "server_settings": {
            # Names the service in pg_stat_activity, so a DBA sees who holds each connection.
            "application_name": application_name,
            "statement_timeout": str(settings.database_statement_timeout_ms),
            **server_settings,
        },
    }


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    return create_async_engine(
        settings.database_url.get_secret_value(),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
        pool_pre_ping=settings.database_pre_ping,
        connect_args=connect_args(settings, settings.service_name),
    )


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.exec_driver_sql("SELECT 1")

"""The async SQLAlchemy engine every service builds the same way, and the SQL type of money."""

from __future__ import annotations

from sqlalchemy import Numeric
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from claimflow_shared.settings import ServiceSettings

# One claim's or line's amount: exact decimals to the cent, read back as Decimal.
MONEY = Numeric(12, 2, asdecimal=True)


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    return create_async_engine(
        settings.database_url.get_secret_value(),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=settings.database_pre_ping,
        # Names the service in pg_stat_activity, so a DBA sees who holds each connection.
        connect_args={"server_settings": {"application_name": settings.service_name}},
    )


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.exec_driver_sql("SELECT 1")

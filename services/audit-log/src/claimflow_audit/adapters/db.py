"""The audit-log's engine: the shared one's settings, plus custom plans for every statement.

asyncpg prepares every statement, and PostgreSQL switches a prepared statement to a generic
plan after five runs, costed on the table as it was then. The append's duplicate check
(`event_id = ANY($1)`) planned while the table was small keeps a sequential scan that, once
the chain has grown, compares every row with every id of the batch: half a second for a
batch of 1,000 on a table of 40,000 records, where the index answers in 5 ms. Custom plans
cost a little planning per statement and keep every query on its index whatever the size.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from claimflow_shared.db import connect_args
from claimflow_shared.settings import ServiceSettings


def create_engine(
    settings: ServiceSettings, *, single_connection: bool = False, role: str = ""
) -> AsyncEngine:
    """single_connection: a pool of one, for a background task that must never take the
    connections the request or consumer path needs; role names it in pg_stat_activity."""
    return create_async_engine(
        settings.database_url.get_secret_value(),
        pool_size=1 if single_connection else settings.database_pool_size,
        max_overflow=0 if single_connection else settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
        pool_pre_ping=settings.database_pre_ping,
        connect_args=connect_args(
            settings,
            "-".join(filter(None, (settings.service_name, role))),
            plan_cache_mode="force_custom_plan",
        ),
    )

"""A database that drops the API's connections is an outage (503 + Retry-After), not a 500."""

from __future__ import annotations

import asyncpg
import httpx

from claimflow_intake.settings import IntakeSettings
from claimflow_shared.dburl import libpq_dsn

from .conftest import auth


async def _terminate_api_connections(settings: IntakeSettings) -> int:
    dsn = libpq_dsn(settings.database_url.get_secret_value())
    conn = await asyncpg.connect(dsn)
    try:
        # What a PostgreSQL restart or failover does to every pooled connection.
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await conn.close()


async def test_dropped_connections_answer_503_then_the_pool_recovers(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    warm = await client.get("/v1/claims", headers=auth())
    assert warm.status_code == 200
    assert await _terminate_api_connections(settings) >= 1

    during = await client.get("/v1/claims", headers=auth())
    assert during.status_code == 503, during.text
    assert during.headers["content-type"] == "application/problem+json"
    assert during.headers["retry-after"] == "1"
    assert during.json()["type"].endswith("/service-unavailable")

    after = await client.get("/v1/claims", headers=auth())
    assert after.status_code == 200

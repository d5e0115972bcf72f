"""The audit-log API answers every kind of database unavailability with 503 + Retry-After
(problem+json), never 500; a read-only server (a standby) still serves the trail."""

from __future__ import annotations

import httpx

from claimflow_audit.adapters.db import create_engine
from claimflow_audit.main import create_app
from claimflow_audit.settings import AuditSettings
from claimflow_devstack import db_faults
from claimflow_devstack.testing import in_process

from ..conftest import auth

CLAIM = "7d1c1c3e-2f0a-4a8b-9a1e-0f3c2b1a9d8e"
ROUTES = (f"/v1/audit/claims/{CLAIM}", "/v1/audit/verify", "/v1/audit/head")


async def _assert_every_route_unavailable(client: httpx.AsyncClient) -> None:
    await db_faults.assert_routes_unavailable(client, ROUTES, auth())


async def _assert_every_route_serves(client: httpx.AsyncClient) -> None:
    assert (await client.get(ROUTES[0], headers=auth())).status_code == 404
    for path in ROUTES[1:]:
        assert (await client.get(path, headers=auth())).status_code == 200


async def test_refused_connections_answer_503(settings: AuditSettings) -> None:
    # The API checks its role's privileges at startup, so it starts against the database,
    # which then goes away: its engine now points at a port that refuses every connect.
    app = create_app(settings)
    async with in_process(app, "audit") as client:
        started = app.state.engine
        url = db_faults.closed_port_url(settings.database_url.get_secret_value())
        app.state.engine = create_engine(db_faults.with_settings(settings, database_url=url))
        await started.dispose()
        await _assert_every_route_unavailable(client)


async def test_terminated_sessions_answer_503_then_the_pool_recovers(
    client: httpx.AsyncClient, settings: AuditSettings, database_url: str
) -> None:
    await db_faults.assert_each_route_survives_terminated_sessions(
        client,
        ROUTES,
        auth(),
        database_url=database_url,
        application_name=settings.service_name,
        serves=lambda: _assert_every_route_serves(client),
    )


async def test_an_exhausted_pool_answers_503(settings: AuditSettings) -> None:
    one = db_faults.with_settings(
        settings, database_pool_size=1, database_max_overflow=0, database_pool_timeout_seconds=0.2
    )
    app = create_app(one)
    async with in_process(app, "audit") as client, app.state.engine.connect() as held:
        await held.exec_driver_sql("SELECT 1")
        await _assert_every_route_unavailable(client)


async def test_a_statement_timeout_answers_503(settings: AuditSettings, database_url: str) -> None:
    quick = db_faults.with_settings(settings, database_statement_timeout_ms=200)
    async with in_process(create_app(quick), "audit") as client:
        async with db_faults.table_locked(database_url, "audit_records"):
            await _assert_every_route_unavailable(client)
        await _assert_every_route_serves(client)


async def test_a_read_only_server_still_serves_the_trail(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await db_faults.make_read_only(database_url)
    # The first request meets the sessions make_read_only ended; read-only ones follow.
    db_faults.assert_unavailable(await client.get(ROUTES[1], headers=auth()))
    await _assert_every_route_serves(client)

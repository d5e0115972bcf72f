"""The adjudication API answers every kind of database unavailability with 503 +
Retry-After (problem+json), never 500; a read-only server (a standby) still serves reads."""

from __future__ import annotations

import httpx

from claimflow_adjudication.main import create_app
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_devstack import db_faults
from claimflow_devstack.testing import in_process

from .conftest import auth

NPI = "1497775530"
ROUTES = (f"/v1/providers/{NPI}", "/v1/providers/top")


async def _assert_every_route_unavailable(client: httpx.AsyncClient) -> None:
    await db_faults.assert_routes_unavailable(client, ROUTES, auth())


async def _assert_every_route_serves(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"/v1/providers/{NPI}", headers=auth())).status_code == 404
    assert (await client.get("/v1/providers/top", headers=auth())).status_code == 200


async def test_refused_connections_answer_503(settings: AdjudicationSettings) -> None:
    url = db_faults.closed_port_url(settings.database_url.get_secret_value())
    async with in_process(
        create_app(db_faults.with_settings(settings, database_url=url)), "adj"
    ) as client:
        await _assert_every_route_unavailable(client)


async def test_terminated_sessions_answer_503_then_the_pool_recovers(
    client: httpx.AsyncClient, settings: AdjudicationSettings
) -> None:
    await db_faults.assert_each_route_survives_terminated_sessions(
        client,
        ROUTES,
        auth(),
        database_url=settings.database_url.get_secret_value(),
        application_name=settings.service_name,
        serves=lambda: _assert_every_route_serves(client),
    )


async def test_an_exhausted_pool_answers_503(settings: AdjudicationSettings) -> None:
    one = db_faults.with_settings(
        settings, database_pool_size=1, database_max_overflow=0, database_pool_timeout_seconds=0.2
    )
    app = create_app(one)
    async with in_process(app, "adj") as client, app.state.engine.connect() as held:
        await held.exec_driver_sql("SELECT 1")
        await _assert_every_route_unavailable(client)


async def test_a_statement_timeout_answers_503(settings: AdjudicationSettings) -> None:
    url = settings.database_url.get_secret_value()
    quick = db_faults.with_settings(settings, database_statement_timeout_ms=200)
    async with in_process(create_app(quick), "adj") as client:
        async with db_faults.table_locked(url, "provider_totals"):
            await _assert_every_route_unavailable(client)
        await _assert_every_route_serves(client)


async def test_a_read_only_server_still_serves_reads(
    client: httpx.AsyncClient, settings: AdjudicationSettings
) -> None:
    await _assert_every_route_serves(client)
    await db_faults.make_read_only(settings.database_url.get_secret_value())
    # The first request meets the sessions make_read_only ended; read-only ones follow.
    db_faults.assert_unavailable(await client.get(ROUTES[0], headers=auth()))
    await _assert_every_route_serves(client)

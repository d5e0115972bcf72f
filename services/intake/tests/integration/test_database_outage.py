"""Every way the database can be unavailable answers 503 + Retry-After (problem+json), never
500: refused connections, terminated sessions, an exhausted pool, a statement timeout, a
read-only server and a server shutting down, each provoked for real; and under a burst of
concurrent submissions while sessions are being terminated, every answer is 202 or 503 and
every claim is stored exactly once."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from claimflow_devstack import db_faults
from claimflow_devstack.postgres import PostgresServer
from claimflow_devstack.testing import claim_body, in_process
from claimflow_intake.cli import MIGRATIONS
from claimflow_intake.main import create_app
from claimflow_intake.settings import IntakeSettings
from claimflow_shared.migrate import upgrade

from .conftest import auth

BURST = 200


async def _submit(client: httpx.AsyncClient, key: str | None = None) -> httpx.Response:
    headers = auth() | ({"Idempotency-Key": key} if key else {})
    return await client.post("/v1/claims", json=claim_body(), headers=headers)


async def _stored_claim(client: httpx.AsyncClient) -> str:
    accepted = await _submit(client)
    assert accepted.status_code == 202, accepted.text
    claim_id: str = accepted.json()["id"]
    return claim_id


async def _assert_every_route_unavailable(client: httpx.AsyncClient, claim_id: str) -> None:
    db_faults.assert_unavailable(await _submit(client))
    db_faults.assert_unavailable(await _submit(client, key=f"k-{uuid.uuid4()}"))
    db_faults.assert_unavailable(await client.get(f"/v1/claims/{claim_id}", headers=auth()))
    db_faults.assert_unavailable(await client.get("/v1/claims", headers=auth()))


async def test_refused_connections_answer_503(settings: IntakeSettings) -> None:
    closed = db_faults.with_settings(
        settings,
        database_url=db_faults.closed_port_url(settings.database_url.get_secret_value()),
    )
    async with in_process(create_app(closed), "intake") as client:
        await _assert_every_route_unavailable(client, str(uuid.uuid4()))
        ready = await client.get("/readyz")
        assert ready.status_code == 503


async def test_dropped_connections_answer_503_then_the_pool_recovers(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    url = settings.database_url.get_secret_value()
    claim_id = await _stored_claim(client)
    for request in (
        lambda: _submit(client),
        lambda: _submit(client, key=f"k-{uuid.uuid4()}"),
        lambda: client.get(f"/v1/claims/{claim_id}", headers=auth()),
        lambda: client.get("/v1/claims", headers=auth()),
    ):
        warm = await client.get("/v1/claims", headers=auth())
        assert warm.status_code == 200
        # What a PostgreSQL restart or failover does to every pooled connection.
        assert await db_faults.terminate_backends(url, settings.service_name) >= 1
        db_faults.assert_unavailable(await request())
    assert (await client.get(f"/v1/claims/{claim_id}", headers=auth())).status_code == 200
    assert (await _submit(client)).status_code == 202


@pytest.mark.parametrize("route", ["submit", "submit-idempotent", "read"])
async def test_a_session_terminated_mid_request_answers_503(
    client: httpx.AsyncClient, settings: IntakeSettings, route: str
) -> None:
    url = settings.database_url.get_secret_value()
    claim_id = await _stored_claim(client)
    tables = {"submit": ["claims"], "submit-idempotent": ["idempotency_keys"], "read": ["outbox"]}
    async with db_faults.table_locked(url, *tables[route]):
        if route == "read":
            pending = asyncio.create_task(client.get(f"/v1/claims/{claim_id}", headers=auth()))
        else:
            key = f"k-{uuid.uuid4()}" if route == "submit-idempotent" else None
            pending = asyncio.create_task(_submit(client, key))
        # The request's statement is on the server, waiting: terminate its session now.
        await db_faults.wait_for_lock_waiter(url, settings.service_name)
        assert await db_faults.terminate_backends(url, settings.service_name) >= 1
        response = await pending
    db_faults.assert_unavailable(response)


async def test_an_exhausted_pool_answers_503(settings: IntakeSettings) -> None:
    one = db_faults.with_settings(
        settings,
        database_pool_size=1,
        database_max_overflow=0,
        database_pool_timeout_seconds=0.2,
    )
    app = create_app(one)
    async with in_process(app, "intake") as client:
        claim_id = await _stored_claim(client)
        # Another checkout holds the pool's only connection for the whole request.
        async with app.state.engine.connect() as held:
            await held.exec_driver_sql("SELECT 1")
            await _assert_every_route_unavailable(client, claim_id)
        assert (await client.get(f"/v1/claims/{claim_id}", headers=auth())).status_code == 200


async def test_a_statement_timeout_answers_503(settings: IntakeSettings) -> None:
    quick = db_faults.with_settings(settings, database_statement_timeout_ms=200)
    url = settings.database_url.get_secret_value()
    async with in_process(create_app(quick), "intake") as client:
        claim_id = await _stored_claim(client)
        # Every statement of every route waits for these locks until the timeout cancels it.
        async with db_faults.table_locked(url, "claims", "outbox", "idempotency_keys"):
            await _assert_every_route_unavailable(client, claim_id)
        assert (await client.get(f"/v1/claims/{claim_id}", headers=auth())).status_code == 200


async def test_a_read_only_server_refuses_writes_and_audited_reads_with_503(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    claim_id = await _stored_claim(client)
    await db_faults.make_read_only(settings.database_url.get_secret_value())
    db_faults.assert_unavailable(await _submit(client))
    db_faults.assert_unavailable(await _submit(client, key=f"k-{uuid.uuid4()}"))
    # Reading a claim, or listing it, records the access (outbox rows): writes a standby
    # refuses, and a read that cannot be audited is not served.
    db_faults.assert_unavailable(await client.get(f"/v1/claims/{claim_id}", headers=auth()))
    db_faults.assert_unavailable(await client.get("/v1/claims", headers=auth()))
    # A page without claims shows no PHI, so there is nothing to record: still served.
    empty = await client.get("/v1/claims", params={"status": "paid"}, headers=auth())
    assert (empty.status_code, empty.json()["items"]) == (200, [])


# --- a server of the test's own, shut down and restarted --------------------------------


@pytest.fixture
def own_postgres(devstack_dir: Path) -> Iterator[PostgresServer]:
    """A PostgreSQL server for this test only: stopping it disturbs no other test."""
    data = devstack_dir / f"own-postgres-{secrets.token_hex(4)}"
    server = PostgresServer.start(data, fast=True)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


async def test_a_server_shutting_down_then_restarting_answers_503_then_recovers(
    own_postgres: PostgresServer, settings: IntakeSettings
) -> None:
    url = own_postgres.create_database("intake")
    await asyncio.to_thread(upgrade, MIGRATIONS, url)
    own = db_faults.with_settings(settings, database_url=url)
    async with in_process(create_app(own), "intake") as client:
        claim_id = await _stored_claim(client)
        # A smart shutdown (SIGTERM) waits for open sessions and refuses new ones meanwhile:
        # "the database system is shutting down" (57P03, CannotConnectNowError). The app's
        # sessions end first, as a restart ends them; one open session keeps the server there.
        lingering = await db_faults.connect(url)
        try:
            assert await db_faults.terminate_backends(url, own.service_name) >= 1
            own_postgres.request_smart_shutdown()
            with pytest.raises(asyncpg.CannotConnectNowError):
                await (await db_faults.connect(url)).close()
            await _assert_every_route_unavailable(client, claim_id)
        finally:
            await lingering.close()
        own_postgres.stop()
        # Stopped: every connect is refused.
        await _assert_every_route_unavailable(client, claim_id)
        await asyncio.to_thread(own_postgres.restart)
        assert (await client.get(f"/v1/claims/{claim_id}", headers=auth())).status_code == 200
        assert (await _submit(client)).status_code == 202


# --- under load ---------------------------------------------------------------------------


async def _until_accepted(http: httpx.AsyncClient, key: str, attempts: int = 5) -> str:
    for _ in range(attempts):
        answer = await _submit(http, key)
        if answer.status_code == 202:
            claim_id: str = answer.json()["id"]
            return claim_id
        db_faults.assert_unavailable(answer)
        await asyncio.sleep(int(answer.headers["retry-after"]))
    raise AssertionError(f"{key} still not accepted after {attempts} attempts")


@pytest.fixture
async def served_app(settings: IntakeSettings) -> AsyncIterator[tuple[FastAPI, str]]:
    # A burst of hundreds from one principal: the outage is under test, not the rate limit.
    app = create_app(settings.model_copy(update={"submission_rate_limit": "100000/minute"}))
    async with app.router.lifespan_context(app), db_faults.served(app) as base_url:
        yield app, base_url


async def test_a_burst_while_sessions_are_terminated_answers_only_202_or_503(
    served_app: tuple[FastAPI, str], settings: IntakeSettings
) -> None:
    _app, base_url = served_app
    url = settings.database_url.get_secret_value()
    keys = [f"burst-{n}" for n in range(BURST)]
    done = asyncio.Event()
    killed = 0

    async def terminator() -> None:
        nonlocal killed
        while not done.is_set():
            killed += await db_faults.terminate_backends(url, settings.service_name)
            await asyncio.sleep(0.01)

    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60.0) as http:
        assert (await http.get("/v1/claims", headers=auth())).status_code == 200
        # The pooled connection dies before the burst, so some request surely meets it.
        killed = await db_faults.terminate_backends(url, settings.service_name)
        killing = asyncio.create_task(terminator())
        try:
            answers = await asyncio.gather(*(_submit(http, key) for key in keys))
        finally:
            done.set()
            await killing
        statuses = [a.status_code for a in answers]
        assert set(statuses) <= {202, 503}, sorted(set(statuses))
        assert killed >= 1
        assert statuses.count(503) >= 1, "no request met a terminated session"
        for answer in answers:
            if answer.status_code == 503:
                db_faults.assert_unavailable(answer)
        accepted = {
            k: a.json()["id"] for k, a in zip(keys, answers, strict=True) if a.status_code == 202
        }

        # The client retries what answered 503, with the same key, as Retry-After asks,
        # once the faults stopped (the first retries may still meet a session killed last).
        retries = [k for k in keys if k not in accepted]
        for key, claim_id in zip(
            retries, await asyncio.gather(*(_until_accepted(http, k) for k in retries)), strict=True
        ):
            accepted[key] = claim_id

    conn = await db_faults.connect(url)
    try:
        stored = await conn.fetch("SELECT id::text AS id FROM claims")
        events = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE topic LIKE '%claims.submitted'"
        )
    finally:
        await conn.close()
    ids = [r["id"] for r in stored]
    # Exactly once: one claim per request, each answered id stored once, one event each.
    assert sorted(ids) == sorted(accepted.values())
    assert len(set(ids)) == BURST
    assert events == BURST

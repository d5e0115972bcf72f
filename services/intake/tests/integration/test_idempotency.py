"""Idempotency-Key: replays, conflicts, and one claim under concurrent retries."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from claimflow_devstack.testing import claim_body
from claimflow_intake.adapters.tables import claims, outbox
from claimflow_intake.settings import IntakeSettings

from .conftest import READER_KEY, auth


async def _counts(settings: IntakeSettings) -> tuple[int, int]:
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            n_claims = await conn.scalar(select(func.count()).select_from(claims))
            n_events = await conn.scalar(select(func.count()).select_from(outbox))
            return int(n_claims or 0), int(n_events or 0)
    finally:
        await engine.dispose()


async def test_same_key_same_body_replays_the_first_response(client: httpx.AsyncClient) -> None:
    headers = auth() | {"Idempotency-Key": "order-1"}
    first = await client.post("/v1/claims", json=claim_body(), headers=headers)
    again = await client.post("/v1/claims", json=claim_body(), headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"


async def test_same_key_different_body_is_rejected(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    headers = auth() | {"Idempotency-Key": "order-2"}
    assert (await client.post("/v1/claims", json=claim_body(), headers=headers)).status_code == 202
    response = await client.post("/v1/claims", json=claim_body(lines=2), headers=headers)
    assert response.status_code == 422
    assert response.json()["type"].endswith("/idempotency-key-reused")
    assert await _counts(settings) == (1, 1)


async def test_keys_are_scoped_to_the_principal(client: httpx.AsyncClient) -> None:
    # A reader cannot submit, so scope is shown through two submit calls that differ by key.
    a = await client.post(
        "/v1/claims", json=claim_body(), headers=auth() | {"Idempotency-Key": "a"}
    )
    b = await client.post(
        "/v1/claims", json=claim_body(), headers=auth() | {"Idempotency-Key": "b"}
    )
    assert a.json()["id"] != b.json()["id"]
    assert (await client.get("/v1/claims", headers=auth(READER_KEY))).status_code == 200


async def test_twenty_concurrent_requests_with_one_key_make_exactly_one_claim(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    headers = auth() | {"Idempotency-Key": "storm"}
    responses = await asyncio.gather(
        *(client.post("/v1/claims", json=claim_body(lines=3), headers=headers) for _ in range(20))
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await _counts(settings) == (1, 1)

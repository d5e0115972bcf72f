"""POST /v1/claims end to end: rows, outbox, and the event on a real Kafka topic."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from claimflow_devstack.testing import claim_body, eventually, read_topic
from claimflow_intake.adapters.tables import claim_lines, claims, outbox
from claimflow_intake.settings import IntakeSettings
from claimflow_intake.worker import create_worker_app

from .conftest import READER_KEY, auth, decode

EXAMPLE = Path(__file__).parents[4] / "examples" / "claim_1234.csv"


async def _count(settings: IntakeSettings, table: Any, *where: Any) -> int:
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            return int(
                await conn.scalar(select(func.count()).select_from(table).where(*where)) or 0
            )
    finally:
        await engine.dispose()


async def test_post_stores_claim_lines_and_outbox_then_relay_publishes_with_traceparent(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    response = await client.post("/v1/claims", json=claim_body(lines=2), headers=auth())

    assert response.status_code == 202, response.text
    body = response.json()
    claim_id = body["id"]
    assert response.headers["location"] == f"/v1/claims/{claim_id}"
    assert body["status"] == "queued"
    assert body["totals"] == {"net_fee": "162.50"}
    assert await _count(settings, claims, claims.c.id == uuid.UUID(claim_id)) == 1
    assert await _count(settings, claim_lines, claim_lines.c.claim_id == uuid.UUID(claim_id)) == 2
    assert await _count(settings, outbox, outbox.c.published_at.is_(None)) == 1

    app = create_worker_app(settings)
    async with app.router.lifespan_context(app):
        topic = settings.topic("claims.submitted")
        messages = await asyncio.to_thread(read_topic, settings.kafka_bootstrap_servers, topic, 1)
        await eventually(
            lambda: _zero(settings, outbox, outbox.c.published_at.is_(None)), within=10
        )

    assert len(messages) == 1
    message = messages[0]
    assert message.key.decode() == claim_id
    headers = dict(message.headers)
    assert headers["traceparent"].decode().startswith("00-")
    event = decode(message)
    assert event["specversion"] == "1.0"
    assert event["type"] == "io.claimflow.claim.submitted.v1"
    assert event["subject"] == claim_id
    assert [line["net_fee"] for line in event["data"]["lines"]] == ["81.25", "81.25"]
    assert event["data"]["totals"]["net_fee"] == "162.50"


async def _zero(settings: IntakeSettings, table: Any, *where: Any) -> bool:
    return await _count(settings, table, *where) == 0


async def test_import_of_claim_1234_gives_the_expected_net_fees(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/claims/import",
        content=EXAMPLE.read_bytes(),
        headers=auth() | {"Content-Type": "text/csv"},
    )
    assert response.status_code == 202, response.text
    accepted = response.json()["claims"]
    assert len(accepted) == 1
    assert accepted[0]["totals"]["net_fee"] == "116.85"

    claim = (await client.get(accepted[0]["location"], headers=auth())).json()
    assert [line["net_fee"] for line in claim["lines"]] == ["0.00", "0.00", "81.25", "35.60"]
    assert claim["totals"]["net_fee"] == "116.85"
    assert claim["lines"][3]["quadrant"] == "UR"
    assert claim["lines"][0]["service_date"] == "2018-03-28"
    assert claim["lines"][2]["member_coinsurance"] == "16.25"


async def test_import_groups_rows_by_claim_number_all_or_nothing(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    rows = EXAMPLE.read_text().splitlines()
    header, data = rows[0], rows[1:]
    csv = "\n".join(
        ["Claim #," + header] + [f"A-1,{r}" for r in data[:2]] + [f"B-2,{r}" for r in data[2:]]
    )
    response = await client.post(
        "/v1/claims/import", content=csv, headers=auth() | {"Content-Type": "text/csv"}
    )
    assert response.status_code == 202, response.text
    totals = {c["external_id"]: c["totals"]["net_fee"] for c in response.json()["claims"]}
    assert totals == {"A-1": "0.00", "B-2": "116.85"}

    bad = csv.replace("D4211", "X4211")
    response = await client.post(
        "/v1/claims/import", content=bad, headers=auth() | {"Content-Type": "text/csv"}
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors == [
        {
            "claim": 1,
            "line": 1,
            "field": "submitted_procedure",
            "rule": "procedure-code",
            "message": errors[0]["message"],
        }
    ]
    assert await _count(settings, claims) == 2


async def test_read_and_list(client: httpx.AsyncClient) -> None:
    ids = []
    for npi in ("1497775530", "1234567893"):
        response = await client.post(
            "/v1/claims", json=claim_body(provider_npi=npi), headers=auth()
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])

    page = (await client.get("/v1/claims?limit=1", headers=auth(READER_KEY))).json()
    assert [item["id"] for item in page["items"]] == [ids[1]]
    assert page["next_cursor"]
    second = await client.get(
        "/v1/claims", params={"limit": 1, "cursor": page["next_cursor"]}, headers=auth()
    )
    assert [item["id"] for item in second.json()["items"]] == [ids[0]]
    assert second.json()["next_cursor"] is None

    by_npi = await client.get("/v1/claims", params={"provider_npi": "1234567893"}, headers=auth())
    assert [item["id"] for item in by_npi.json()["items"]] == [ids[1]]
    queued = await client.get("/v1/claims", params={"status": "paid"}, headers=auth())
    assert queued.json()["items"] == []

    claim = await client.get(f"/v1/claims/{ids[0]}", headers=auth(READER_KEY))
    assert claim.status_code == 200
    assert claim.json()["lines"][0]["provider_npi"] == "1497775530"
    assert claim.json()["adjudication"] is None


async def test_reading_a_claim_publishes_audit_access(
    client: httpx.AsyncClient, settings: IntakeSettings, worker: Any
) -> None:
    posted = await client.post("/v1/claims", json=claim_body(), headers=auth())
    claim_id = posted.json()["id"]
    assert (await client.get(f"/v1/claims/{claim_id}", headers=auth(READER_KEY))).status_code == 200

    messages = await asyncio.to_thread(
        read_topic, settings.kafka_bootstrap_servers, settings.topic("audit.access"), 1
    )
    event = decode(messages[0])
    assert event["type"] == "io.claimflow.audit.access.v1"
    assert event["data"]["claim_id"] == claim_id
    assert event["data"]["principal"] == "dashboard"
    assert event["data"]["action"] == "claim.read"

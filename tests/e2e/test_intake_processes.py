"""intake as real processes: a SIGKILLed worker loses no event and invents none."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from kafka import KafkaConsumer

from claimflow_shared.dburl import libpq_dsn

from .conftest import API_KEY

EXAMPLE = Path(__file__).parents[2] / "examples" / "claim_1234.csv"
HEADERS = {"Authorization": f"Bearer {API_KEY}"}
# With one row per relay batch, publishing takes hundreds of broker round trips: long enough
# for the kill to land in the middle.
CLAIMS = 300


def _read(
    bootstrap: str, topic: str, until: Callable[[list[Any]], bool], timeout: float
) -> list[Any]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=500,
    )
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while not until(seen) and time.monotonic() < deadline:
            seen.extend(consumer)
    finally:
        consumer.close()
    return seen


def _published(database_url: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(libpq_dsn(database_url))
        try:
            return int(
                await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
            )
        finally:
            await conn.close()

    return asyncio.run(count())


def test_worker_killed_mid_relay_then_restarted_publishes_every_claim_once_per_event_id(
    intake_processes: Any, kafka_broker: Any, topic_prefix: str, database_url: str
) -> None:
    intake_processes("api")
    base = intake_processes.base_url
    claim_ids = []
    with httpx.Client(base_url=base, headers=HEADERS, timeout=10) as client:
        csv = EXAMPLE.read_bytes()
        for n in range(CLAIMS):
            response = client.post(
                "/v1/claims/import",
                content=csv,
                headers={"Content-Type": "text/csv", "Idempotency-Key": f"batch-{n}"},
            )
            assert response.status_code == 202, response.text
            claim_ids.append(response.json()["claims"][0]["id"])
        # A client retry after the fact replays, it does not add a claim.
        again = client.post(
            "/v1/claims/import",
            content=csv,
            headers={"Content-Type": "text/csv", "Idempotency-Key": "batch-0"},
        )
        assert again.json()["claims"][0]["id"] == claim_ids[0]

    topic = f"{topic_prefix}claims.submitted"
    intake_processes("worker")
    deadline = time.monotonic() + 60
    while _published(database_url) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    intake_processes.group.kill("worker")
    published_at_kill = _published(database_url)
    assert 0 < published_at_kill < len(claim_ids), "the kill should land while the relay is mid-way"

    intake_processes("worker")
    messages = _read(
        kafka_broker.bootstrap_servers,
        topic,
        lambda seen: {m.key.decode() for m in seen} >= set(claim_ids),
        90,
    )
    event_ids: dict[str, set[str]] = {}
    for message in messages:
        event_ids.setdefault(message.key.decode(), set()).add(json.loads(message.value)["id"])
    assert set(event_ids) == set(claim_ids)
    assert all(len(ids) == 1 for ids in event_ids.values())

    with httpx.Client(base_url=base, headers=HEADERS, timeout=10) as client:
        claim = client.get(f"/v1/claims/{claim_ids[-1]}").json()
        assert claim["totals"]["net_fee"] == "116.85"
        assert client.get(f"/v1/claims/{uuid.uuid4()}").status_code == 404
        listed = client.get("/v1/claims", params={"limit": 100}).json()
        assert len(listed["items"]) == 100
        assert listed["next_cursor"]


def test_failed_authentications_are_throttled_per_client_behind_a_trusted_proxy(
    intake_processes: Any,
) -> None:
    """Behind the Ingress every request comes from the proxy: the client is the address the
    proxy (here loopback, trusted by default) names in X-Forwarded-For."""
    intake_processes("api", auth_failure_limit="3/minute")
    guesser = {"X-Forwarded-For": "203.0.113.7"}
    with httpx.Client(base_url=intake_processes.base_url, timeout=10) as client:
        for n in range(3):
            wrong = client.get("/v1/claims", headers={**guesser, "Authorization": f"Bearer {n}"})
            assert wrong.status_code == 401
        assert client.get("/v1/claims", headers={**guesser, **HEADERS}).status_code == 429
        other = client.get("/v1/claims", headers={"X-Forwarded-For": "203.0.113.8", **HEADERS})
        assert other.status_code == 200

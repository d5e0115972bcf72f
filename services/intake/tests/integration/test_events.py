"""The worker against real Kafka: status events, redelivery, dead letters, relay failures."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from claimflow_devstack.testing import claim_body, eventually, read_topic
from claimflow_intake.adapters.tables import outbox
from claimflow_intake.settings import IntakeSettings
from claimflow_shared.db import create_engine
from claimflow_shared.events import (
    AdjudicatedLineV1,
    ClaimAdjudicatedV1,
    ClaimReversedV1,
    LineAmountsV1,
    PaymentCompletedV1,
    new_event,
)
from claimflow_shared.events.catalog import AdjudicatedTotalsV1
from claimflow_shared.kafka.producer import OutgoingMessage, Publisher
from claimflow_shared.outbox import OutboxRelay

from .conftest import auth, decode

D = Decimal


def adjudicated(claim_id: str, status: str = "adjudicated") -> Any:
    amounts = LineAmountsV1(
        submitted=D("130.00"),
        eligible=D("65.00"),
        copay=D("0.00"),
        deductible=D("0.00"),
        benefit=D("52.00"),
    )
    return ClaimAdjudicatedV1(
        claim_id=uuid.UUID(claim_id),
        status=status,  # type: ignore[arg-type]
        outcome="complete",
        plan_id="default",
        plan_version=3,
        adjudicated_at=datetime.now(UTC),
        lines=[
            AdjudicatedLineV1(
                line_no=1,
                outcome="reduced",
                reason_codes=["45"],
                net_fee=D("81.25"),
                amounts=amounts,
            )
        ],
        totals=AdjudicatedTotalsV1(
            net_fee=D("81.25"), submitted=D("130.00"), eligible=D("65.00"), benefit=D("52.00")
        ),
    )


def publish(settings: IntakeSettings, topic: str, *messages: tuple[str | None, bytes]) -> None:
    publisher = Publisher(settings)
    try:
        publisher.publish([OutgoingMessage(settings.topic(topic), k, v) for k, v in messages])
    finally:
        publisher.close()


async def _status(client: httpx.AsyncClient, claim_id: str) -> str:
    status: str = (await client.get(f"/v1/claims/{claim_id}", headers=auth())).json()["status"]
    return status


async def test_adjudicated_then_paid_moves_status_and_redelivery_is_harmless(
    client: httpx.AsyncClient, settings: IntakeSettings, worker: Any
) -> None:
    claim_id = (await client.post("/v1/claims", json=claim_body(), headers=auth())).json()["id"]
    event = new_event("/claimflow/adjudication", adjudicated(claim_id), subject=claim_id).to_json()
    await asyncio.to_thread(
        publish, settings, "claims.adjudicated", (claim_id, event), (claim_id, event)
    )

    async def adjudicated_now() -> bool:
        return await _status(client, claim_id) == "adjudicated"

    await eventually(adjudicated_now)
    claim = (await client.get(f"/v1/claims/{claim_id}", headers=auth())).json()
    assert claim["adjudication"]["plan_version"] == 3
    assert claim["adjudication"]["totals"]["benefit"] == "52.00"
    assert claim["lines"][0]["adjudication"]["reason_codes"] == ["45"]
    assert claim["lines"][0]["adjudication"]["amounts"]["eligible"] == "65.00"

    paid = PaymentCompletedV1(
        payment_id=uuid.uuid4(),
        claim_id=uuid.UUID(claim_id),
        amount=D("81.25"),
        completed_at=datetime.now(UTC),
    )
    await asyncio.to_thread(
        publish,
        settings,
        "payments.completed",
        (claim_id, new_event("/payments", paid, subject=claim_id).to_json()),
    )

    async def paid_now() -> bool:
        return await _status(client, claim_id) == "paid"

    await eventually(paid_now)
    # A late redelivery of the adjudication never moves the claim backwards.
    late = new_event("/claimflow/adjudication", adjudicated(claim_id), subject=claim_id).to_json()
    await asyncio.to_thread(publish, settings, "claims.adjudicated", (claim_id, late))
    reversed_ = ClaimReversedV1(
        claim_id=uuid.UUID(claim_id),
        status="reversed",
        reason="chargeback",
        reversed_at=datetime.now(UTC),
        net_fee=D("81.25"),
    )
    await asyncio.to_thread(
        publish,
        settings,
        "claims.reversed",
        (claim_id, new_event("/claimflow/adjudication", reversed_, subject=claim_id).to_json()),
    )

    async def reversed_now() -> bool:
        return await _status(client, claim_id) == "reversed"

    await eventually(reversed_now)


async def test_poison_messages_go_to_the_dead_letter_topic_and_the_worker_goes_on(
    client: httpx.AsyncClient, settings: IntakeSettings, worker: Any
) -> None:
    claim_id = (await client.post("/v1/claims", json=claim_body(), headers=auth())).json()["id"]
    unknown = str(uuid.uuid4())
    good = new_event("/claimflow/adjudication", adjudicated(claim_id), subject=claim_id).to_json()
    foreign = new_event("/claimflow/adjudication", adjudicated(unknown), subject=unknown).to_json()
    await asyncio.to_thread(
        publish,
        settings,
        "claims.adjudicated",
        (claim_id, b"not json at all"),
        (
            claim_id,
            b'{"specversion": "1.0", "id": "x", "source": "/s", "type": "nope", '
            b'"time": "2024-01-01T00:00:00Z", "data": {}}',
        ),
        (unknown, foreign),
        (claim_id, good),
    )

    async def adjudicated_now() -> bool:
        return await _status(client, claim_id) == "adjudicated"

    await eventually(adjudicated_now)
    dead = await asyncio.to_thread(
        read_topic, settings.kafka_bootstrap_servers, settings.dead_letter_topic, 3
    )
    reasons = sorted(dict(m.headers)["dlq.reason"].decode() for m in dead)
    assert len(dead) == 3
    assert reasons[0].startswith("event names a claim intake does not hold")
    assert reasons[1].startswith("not a CloudEvents 1.0 envelope")
    assert reasons[2] == "unknown event type 'nope'"
    assert {dict(m.headers)["dlq.source.topic"].decode() for m in dead} == {
        settings.topic("claims.adjudicated")
    }
    assert (await worker_ready(worker)) == 200


async def worker_ready(worker: Any) -> int:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=worker), base_url="http://worker"
    ) as c:
        return (await c.get("/readyz")).status_code


class DyingPublisher:
    """Publishes the first messages of a batch for real, then dies before the rows are marked:
    the same state a SIGKILL between publish and commit leaves behind."""

    def __init__(self, real: Publisher, survive: int) -> None:
        self.real = real
        self.survive = survive

    def publish(self, messages: list[OutgoingMessage]) -> None:
        self.real.publish(messages[: self.survive])
        raise ConnectionError("relay killed mid-batch")


async def test_relay_killed_mid_batch_publishes_everything_with_stable_event_ids(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    ids = [
        (await client.post("/v1/claims", json=claim_body(), headers=auth())).json()["id"]
        for _ in range(30)
    ]
    engine = create_engine(settings)
    publisher = await asyncio.to_thread(Publisher, settings)
    try:
        dying = OutboxRelay(
            engine, outbox, DyingPublisher(publisher, 12), service="t", batch_size=20
        )  # type: ignore[arg-type]
        with pytest.raises(ConnectionError):
            await dying.relay_once()
        relay = OutboxRelay(engine, outbox, publisher, service="t", batch_size=20)
        while await relay.relay_once():
            pass
        async with engine.connect() as conn:
            unsent = await conn.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
        assert unsent == 0
    finally:
        await asyncio.to_thread(publisher.close)
        await engine.dispose()

    messages = await asyncio.to_thread(
        read_topic, settings.kafka_bootstrap_servers, settings.topic("claims.submitted"), 42
    )
    assert len(messages) == 42  # 12 published twice
    per_claim: dict[str, set[str]] = {}
    for m in messages:
        per_claim.setdefault(m.key.decode(), set()).add(decode(m)["id"])
    assert set(per_claim) == set(ids)
    assert all(len(event_ids) == 1 for event_ids in per_claim.values())
    copies = Counter(m.key.decode() for m in messages)
    assert sorted(copies.values()).count(2) == 12


async def test_concurrent_relays_publish_each_row_once_in_order(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    ids = [
        (await client.post("/v1/claims", json=claim_body(), headers=auth())).json()["id"]
        for _ in range(60)
    ]
    engine = create_engine(settings)
    publisher = await asyncio.to_thread(Publisher, settings)
    try:
        relays = [
            OutboxRelay(engine, outbox, publisher, service="t", batch_size=7) for _ in range(3)
        ]

        async def drain(relay: OutboxRelay) -> None:
            for _ in range(200):
                await relay.relay_once()
                await asyncio.sleep(0)

        await asyncio.gather(*(drain(r) for r in relays))
    finally:
        await asyncio.to_thread(publisher.close)
        await engine.dispose()
    messages = await asyncio.to_thread(
        read_topic, settings.kafka_bootstrap_servers, settings.topic("claims.submitted"), 60
    )
    assert sorted(m.key.decode() for m in messages) == sorted(ids)
    by_partition: dict[int, list[str]] = {}
    for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
        by_partition.setdefault(m.partition, []).append(m.key.decode())
    for keys in by_partition.values():
        assert keys == [i for i in ids if i in set(keys)]

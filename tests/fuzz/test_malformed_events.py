"""Malformed messages on every topic each worker consumes: dead-lettered, and the worker lives.

For each consumer (intake's status consumer, adjudication's claims and payments consumer,
audit-log's consumer of every topic) the test publishes, on each of its topics, garbage bytes,
broken JSON, JSON that is no CloudEvent, a CloudEvent of an unknown type, one of the topic's
type with data that does not fit it, a record without a value, and a valid event of another
topic's type (a forgery: acting consumers refuse it, whatever its data). What the consumer must
refuse lands on the dead-letter topic with `dlq.reason` and `dlq.source.topic`; then a valid
event, sent after all of them, is still processed.

audit-log records whatever is a CloudEvent, known type or not, and tombstones (its contract:
the trail holds everything that was on the topics), so only the first three go to its
dead-letter topic.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from kafka import KafkaProducer
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from claimflow_adjudication import worker as adjudication_worker
from claimflow_adjudication.cli import MIGRATIONS as ADJUDICATION_MIGRATIONS
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_audit import worker as audit_worker
from claimflow_audit.cli import migrate as migrate_audit
from claimflow_audit.settings import AuditSettings
from claimflow_devstack.paths import example_plans_dir
from claimflow_devstack.testing import (
    api_key,
    bearer,
    claim_body,
    claim_line,
    eventually,
    in_process,
    read_topic,
    submitted,
)
from claimflow_intake import worker as intake_worker
from claimflow_intake.cli import MIGRATIONS as INTAKE_MIGRATIONS
from claimflow_intake.main import create_app as create_intake_app
from claimflow_intake.settings import IntakeSettings
from claimflow_shared.events import (
    PaymentCompletedV1,
    Topics,
    new_event,
)
from claimflow_shared.events.catalog import TOPIC_TYPES
from claimflow_shared.migrate import upgrade
from claimflow_shared.settings import ServiceSettings

KEY = "malformed-events-key"
KEYS = [api_key(KEY, "fuzzer", {"submitter", "reader", "auditor", "payer-reader"})]
D = Decimal


def _cloudevent(type_: str, data: Any) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/fuzz",
            "type": type_,
            "time": "2024-05-01T12:00:00Z",
            "subject": str(uuid.uuid4()),
            "datacontenttype": "application/json",
            "data": data,
        }
    ).encode()


ACCESS_TYPE = TOPIC_TYPES[Topics.AUDIT_ACCESS]


def _forged(topic_type: str) -> bytes:
    """A valid event of a type that does not belong where it is sent."""
    claim_id = str(uuid.uuid4())
    if topic_type != ACCESS_TYPE:
        return _cloudevent(
            ACCESS_TYPE,
            {
                "claim_id": claim_id,
                "principal": "forger",
                "action": "claim.read",
                "accessed_at": "2024-05-01T12:00:00Z",
            },
        )
    return _cloudevent(
        TOPIC_TYPES[Topics.PAYMENTS_FAILED],
        {
            "payment_id": str(uuid.uuid4()),
            "claim_id": claim_id,
            "reason": "forged",
            "failed_at": "2024-05-01T12:00:00Z",
        },
    )


def poison(topic_type: str) -> dict[str, bytes | None]:
    """Name -> record value; None is a record without a value (a tombstone)."""
    return {
        "garbage": b"\x00\xff\xfe\x80 not even text",
        "broken-json": b'{"id": "x", "type": ',
        "not-a-cloudevent": b'{"hello": "world", "lines": []}',
        "unknown-type": _cloudevent("io.example.unknown.v1", {}),
        "bad-data": _cloudevent(topic_type, {"claim_id": "not-a-uuid", "amount": "NaN"}),
        "tombstone": None,
        # A valid event of another topic's type: a forgery an acting consumer must not act on.
        "wrong-topic": _forged(topic_type),
    }


STRICT = frozenset(poison("x"))
ENVELOPE_ONLY = frozenset({"garbage", "broken-json", "not-a-cloudevent"})


@dataclass
class Consumer:
    """A worker under test: its settings, the topics it consumes and the type each carries,
    which poison it must dead-letter, and a probe that a valid event is still processed."""

    settings: ServiceSettings
    worker: FastAPI
    # Prefixed topic -> the event type that belongs on it.
    topics: dict[str, str]
    dead_lettered: frozenset[str]
    send_valid: Callable[[], Awaitable[Callable[[], Awaitable[bool]]]]


def _produce(bootstrap: str, records: Sequence[tuple[str, bytes | None]]) -> None:
    # kafka-python directly: the project's publisher never sends a record without a value.
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for topic, value in records:
            producer.send(topic, key=str(uuid.uuid4()).encode(), value=value)
        producer.flush(30)
    finally:
        producer.close(5)


def _topics(consumed: Sequence[str], prefix: str) -> dict[str, str]:
    return {t: TOPIC_TYPES[t.removeprefix(prefix)] for t in consumed}


@asynccontextmanager
async def intake(database_url: str, bootstrap: str, prefix: str) -> AsyncIterator[Consumer]:
    await asyncio.to_thread(upgrade, INTAKE_MIGRATIONS, database_url)
    settings = IntakeSettings(
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        kafka_topic_prefix=prefix,
        api_keys=KEYS,
        consumer_group=f"intake-{prefix}",
    )
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(in_process(create_intake_app(settings), "intake"))
        worker = intake_worker.create_worker_app(settings)
        await stack.enter_async_context(worker.router.lifespan_context(worker))

        async def send_valid() -> Callable[[], Awaitable[bool]]:
            response = await client.post("/v1/claims", json=claim_body(), headers=bearer(KEY))
            claim_id = response.json()["id"]
            paid = PaymentCompletedV1(
                payment_id=uuid.uuid4(),
                claim_id=uuid.UUID(claim_id),
                amount=D("81.25"),
                completed_at=datetime.now(UTC),
            )
            event = new_event("/payments", paid, subject=claim_id)
            topic = settings.topic(Topics.PAYMENTS_COMPLETED)
            await asyncio.to_thread(_produce, bootstrap, [(topic, event.to_json())])

            async def applied() -> bool:
                page = await client.get(
                    "/v1/claims", params={"status": "paid"}, headers=bearer(KEY)
                )
                return claim_id in {item["id"] for item in page.json()["items"]}

            return applied

        topics = _topics(intake_worker.consumed_topics(settings), prefix)
        yield Consumer(settings, worker, topics, STRICT, send_valid)


@asynccontextmanager
async def adjudication(database_url: str, bootstrap: str, prefix: str) -> AsyncIterator[Consumer]:
    await asyncio.to_thread(upgrade, ADJUDICATION_MIGRATIONS, database_url)
    settings = AdjudicationSettings(
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        kafka_topic_prefix=prefix,
        plans_dir=example_plans_dir(),
        api_keys=KEYS,
        consumer_group=f"adjudication-{prefix}",
    )
    worker = adjudication_worker.create_worker_app(settings)
    async with worker.router.lifespan_context(worker):

        async def send_valid() -> Callable[[], Awaitable[bool]]:
            event = submitted(claim_line())
            topic = settings.topic(Topics.CLAIMS_SUBMITTED)
            await asyncio.to_thread(_produce, bootstrap, [(topic, event.to_json())])

            async def adjudicated() -> bool:
                out = await asyncio.to_thread(
                    read_topic, bootstrap, settings.topic(Topics.CLAIMS_ADJUDICATED), 1, 2.0
                )
                return any(json.loads(m.value)["subject"] == event.subject for m in out)

            return adjudicated

        topics = _topics(adjudication_worker.consumed_topics(settings), prefix)
        yield Consumer(settings, worker, topics, STRICT, send_valid)


@asynccontextmanager
async def audit(database_url: str, bootstrap: str, prefix: str) -> AsyncIterator[Consumer]:
    settings = AuditSettings(
        # Migrated by the owner, run as the restricted application role, as in production.
        database_url=make_url(database_url)
        .set(username="claimflow_audit_app")
        .render_as_string(hide_password=False),
        migration_database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        kafka_topic_prefix=prefix,
        api_keys=KEYS,
        consumer_group=f"audit-log-{prefix}",
    )
    await asyncio.to_thread(migrate_audit, settings)
    worker = audit_worker.create_worker_app(settings)
    engine = create_async_engine(database_url)
    try:
        async with worker.router.lifespan_context(worker):

            async def send_valid() -> Callable[[], Awaitable[bool]]:
                event = submitted(claim_line())
                topic = settings.topic(Topics.CLAIMS_SUBMITTED)
                await asyncio.to_thread(_produce, bootstrap, [(topic, event.to_json())])

                async def recorded() -> bool:
                    async with engine.connect() as conn:
                        found = await conn.scalar(
                            text("SELECT count(*) FROM audit_records WHERE event_id = :id"),
                            {"id": event.id},
                        )
                    return bool(found)

                return recorded

            topics = _topics(audit_worker.audited_topics(settings), prefix)
            yield Consumer(settings, worker, topics, ENVELOPE_ONLY, send_valid)
    finally:
        await engine.dispose()


async def _exercise(consumer: Consumer, bootstrap: str) -> None:
    settings = consumer.settings
    records = []
    expected: set[tuple[str, bytes]] = set()
    for topic, type_ in consumer.topics.items():
        for name, value in poison(type_).items():
            records.append((topic, value))
            if name in consumer.dead_lettered:
                expected.add((topic, value or b""))
    await asyncio.to_thread(_produce, bootstrap, records)
    applied = await consumer.send_valid()
    await eventually(applied, within=120)

    dead = await asyncio.to_thread(
        read_topic, bootstrap, settings.dead_letter_topic, len(expected), 60.0
    )
    landed = {(dict(m.headers)["dlq.source.topic"].decode(), m.value or b"") for m in dead}
    assert landed == expected
    for message in dead:
        headers = dict(message.headers)
        assert headers["dlq.reason"].decode(), "a dead letter without its reason"
    # Alive and ready: the consumer thread polls, the database answers.
    transport = httpx.ASGITransport(app=consumer.worker)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as worker:
        ready = await worker.get("/readyz")
    assert ready.status_code == 200, ready.text


async def test_intake_status_consumer(
    database_url: str, kafka_broker: Any, topic_prefix: str
) -> None:
    async with intake(database_url, kafka_broker.bootstrap_servers, topic_prefix) as consumer:
        await _exercise(consumer, kafka_broker.bootstrap_servers)


async def test_adjudication_claims_and_payments_consumer(
    database_url: str, kafka_broker: Any, topic_prefix: str
) -> None:
    async with adjudication(database_url, kafka_broker.bootstrap_servers, topic_prefix) as c:
        await _exercise(c, kafka_broker.bootstrap_servers)


async def test_audit_log_consumer_of_every_topic(
    database_url: str, kafka_broker: Any, topic_prefix: str
) -> None:
    async with audit(database_url, kafka_broker.bootstrap_servers, topic_prefix) as consumer:
        await _exercise(consumer, kafka_broker.bootstrap_servers)

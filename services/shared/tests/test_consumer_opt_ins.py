"""EventConsumer on real Kafka: the strict default, and the opt-ins for everything-consumers."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer

from claimflow_shared.events import AuditAccessV1, new_event
from claimflow_shared.events.envelope import UncheckedData, decode_envelope
from claimflow_shared.kafka.admin import ensure_topics
from claimflow_shared.kafka.consumer import (
    Consumed,
    ConsumedEvent,
    ConsumedTombstone,
    EventConsumer,
)
from claimflow_shared.kafka.producer import OutgoingMessage, Publisher
from claimflow_shared.settings import ServiceSettings

TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _raw(type_: str, data: Any) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/test",
            "type": type_,
            "time": "2024-05-01T12:00:00Z",
            "data": data,
        }
    ).encode()


def _messages(topic: str) -> list[OutgoingMessage]:
    claim = uuid.uuid4()
    valid = new_event(
        "/test",
        AuditAccessV1(
            claim_id=claim, principal="p", action="claim.read", accessed_at=datetime.now(UTC)
        ),
        subject=str(claim),
    ).to_json()
    return [
        OutgoingMessage(topic, "k", _raw("com.example.future.v1", {"x": 1})),
        OutgoingMessage(topic, "k", _raw("io.claimflow.audit.access.v1", {"wrong": True})),
        OutgoingMessage(topic, "k", None, [("traceparent", TRACEPARENT)]),  # type: ignore[arg-type]
        OutgoingMessage(topic, "k", b"garbage"),
        OutgoingMessage(topic, "k", valid),
    ]


def _dead_letters(settings: ServiceSettings, count: int) -> list[Any]:
    consumer = KafkaConsumer(
        settings.dead_letter_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
    )
    found: list[Any] = []
    deadline = time.monotonic() + 30
    try:
        while len(found) < count and time.monotonic() < deadline:
            found.extend(consumer)
    finally:
        consumer.close()
    return found


async def _consume(
    settings: ServiceSettings, topic: str, group: str, count: int, **options: Any
) -> list[Consumed]:
    received: list[Consumed] = []
    enough = asyncio.Event()

    async def handle(batch: Sequence[Consumed]) -> None:
        received.extend(batch)
        if len(received) >= count:
            enough.set()

    publisher = Publisher(settings)
    consumer = EventConsumer(
        settings,
        group_id=group,
        topics=[topic],
        handler=handle,
        loop=asyncio.get_running_loop(),
        dead_letters=publisher,
        **options,
    )
    consumer.start()
    try:
        await asyncio.wait_for(enough.wait(), 30)
    finally:
        await consumer.stop()
        publisher.close()
    return received


async def test_strict_by_default_and_everything_in_order_when_opted_in(
    kafka_broker: Any, topic_prefix: str
) -> None:
    settings = ServiceSettings(
        kafka_bootstrap_servers=kafka_broker.bootstrap_servers, kafka_topic_prefix=topic_prefix
    )
    topic = settings.topic("opt-ins")
    await asyncio.to_thread(ensure_topics, settings, [topic], partitions=1)
    publisher = Publisher(settings)
    await asyncio.to_thread(publisher.publish, _messages(topic))
    publisher.close()

    strict = await _consume(settings, topic, "strict", 1)
    assert [c.event.type for c in strict if isinstance(c, ConsumedEvent)] == [
        "io.claimflow.audit.access.v1"
    ]
    dead = await asyncio.to_thread(_dead_letters, settings, 4)
    reasons = sorted(dict(m.headers)["dlq.reason"].decode() for m in dead)
    assert len(reasons) == 4
    assert reasons[0] == "empty message"
    assert "unknown event type" in reasons[-1]

    everything = await _consume(
        settings, topic, "everything", 4, decoder=decode_envelope, tombstones=True
    )
    assert [c.offset for c in everything] == [0, 1, 2, 4]
    future, wrong, tombstone, valid = everything
    assert isinstance(future, ConsumedEvent)
    assert future.event.data == UncheckedData(value={"x": 1})
    assert isinstance(wrong, ConsumedEvent)
    assert wrong.event.type == "io.claimflow.audit.access.v1"
    assert isinstance(tombstone, ConsumedTombstone)
    assert (tombstone.key, tombstone.headers) == ("k", (("traceparent", TRACEPARENT),))
    assert tombstone.timestamp is not None
    assert isinstance(valid, ConsumedEvent)
    assert valid.timestamp is not None
    # Only the bytes that are no CloudEvent at all were dead-lettered this time.
    assert len(await asyncio.to_thread(_dead_letters, settings, 5)) == 5

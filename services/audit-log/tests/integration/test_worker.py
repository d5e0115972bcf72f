"""The worker against real Kafka: every topic, every type, tombstones, redelivery, replicas."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import rfc8785
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_audit.adapters import store
from claimflow_audit.service_layer.recording import TOMBSTONE_TYPE
from claimflow_audit.service_layer.verification import verify_chain
from claimflow_audit.settings import AuditSettings
from claimflow_audit.worker import AUDITED_TOPICS, create_worker_app
from claimflow_devstack.testing import eventually, publish
from claimflow_shared.events import AuditAccessV1, Topics, new_event
from claimflow_shared.kafka.producer import OutgoingMessage

from ..conftest import auth, chain_length

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def traceparent(trace_id: str = TRACE) -> list[tuple[str, bytes]]:
    return [("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01".encode())]


def raw_event(type_: str, subject: str | None, data: Any, event_id: str | None = None) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": event_id or str(uuid.uuid4()),
            "source": "/test",
            "type": type_,
            "time": datetime.now(UTC).isoformat(),
            "subject": subject,
            "data": data,
        }
    ).encode()


def access(claim_id: str, principal: str = "dashboard") -> bytes:
    data = AuditAccessV1(
        claim_id=uuid.UUID(claim_id),
        principal=principal,
        action="claim.read",
        accessed_at=datetime.now(UTC),
    )
    return new_event("/claimflow/intake", data, subject=claim_id).to_json()


async def send(settings: AuditSettings, *messages: OutgoingMessage) -> None:
    await asyncio.to_thread(publish, settings, list(messages))


async def until_length(engine: AsyncEngine, count: int) -> None:
    async def reached() -> bool:
        return await chain_length(engine) >= count

    await eventually(reached)


async def test_every_topic_every_type_and_tombstones_are_recorded(
    settings: AuditSettings, engine: AsyncEngine, worker: FastAPI
) -> None:
    claim = str(uuid.uuid4())
    on = settings.topic
    unknown = {"whatever": [1, 2.5, "three"], "nested": {"b": None, "a": True}}
    messages = [
        OutgoingMessage(on(topic), claim, raw_event(f"io.test.{topic}.v9", claim, {"n": i}))
        for i, topic in enumerate(AUDITED_TOPICS)
        if topic not in (Topics.AUDIT_ACCESS, Topics.PLANS)
    ]
    messages += [
        OutgoingMessage(on(Topics.AUDIT_ACCESS), claim, access(claim), traceparent()),
        OutgoingMessage(
            on(Topics.PLANS),
            "dental/gold",
            raw_event("io.claimflow.plan.published.v1", "dental/gold", {"plan": "gold"}),
        ),
        OutgoingMessage(on(Topics.PLANS), "dental/gold", None, traceparent()),  # type: ignore[arg-type]
        OutgoingMessage(
            on(Topics.CLAIMS_SUBMITTED), claim, raw_event("com.example.new", claim, unknown)
        ),
        OutgoingMessage(on(Topics.CLAIMS_SUBMITTED), claim, b"not a cloudevent"),
    ]
    await send(settings, *messages)
    await until_length(engine, len(messages) - 1)

    async with engine.connect() as conn:
        records = await store.timeline(conn, claim)
        plan = await store.timeline(conn, "dental/gold")
    assert {r.topic for r in records} == {on(t) for t in AUDITED_TOPICS if t != Topics.PLANS}
    read = next(r for r in records if r.type == "io.claimflow.audit.access.v1")
    assert (read.actor, read.trace_id) == ("dashboard", TRACE)
    novel = next(r for r in records if r.type == "com.example.new")
    assert novel.payload_digest == hashlib.sha256(rfc8785.dumps(unknown)).hexdigest()
    assert [r.type for r in plan] == ["io.claimflow.plan.published.v1", TOMBSTONE_TYPE]
    assert plan[1].trace_id == TRACE
    assert (await verify_chain(engine)).valid
    # The one thing that is not a CloudEvent was dead-lettered, not recorded.
    assert await chain_length(engine) == len(messages) - 1


async def test_order_per_claim_is_kept_across_partitions_and_batches(
    settings: AuditSettings, engine: AsyncEngine, worker: FastAPI, client: httpx.AsyncClient
) -> None:
    claims = [str(uuid.uuid4()) for _ in range(6)]
    sent: dict[str, list[str]] = {c: [] for c in claims}
    messages = []
    for round_ in range(10):
        for claim in claims:
            raw = access(claim, principal=f"reader-{round_}")
            sent[claim].append(json.loads(raw)["id"])
            messages.append(OutgoingMessage(settings.topic(Topics.AUDIT_ACCESS), claim, raw))
    await send(settings, *messages)
    await until_length(engine, len(messages))
    for claim in claims:
        timeline = (await client.get(f"/v1/audit/claims/{claim}", headers=auth())).json()
        assert [e["event_id"] for e in timeline["events"]] == sent[claim]
        seqs = [e["seq"] for e in timeline["events"]]
        assert seqs == sorted(seqs)


async def test_redelivery_of_everything_appends_nothing(
    settings: AuditSettings, engine: AsyncEngine
) -> None:
    claim = str(uuid.uuid4())
    events = [access(claim) for _ in range(5)]
    topic = settings.topic(Topics.AUDIT_ACCESS)
    first = create_worker_app(settings)
    async with first.router.lifespan_context(first):
        await send(settings, *(OutgoingMessage(topic, claim, e) for e in events))
        await until_length(engine, 5)
        # The same events again, as a producer retry or a relay restart would send them.
        await send(settings, *(OutgoingMessage(topic, claim, e) for e in events))
    # Then the whole topic again, as a consumer that lost its offsets would read it. One
    # key, one partition: once the marker sent last is in, everything before it was read.
    rereader = create_worker_app(
        settings.model_copy(update={"consumer_group": f"{settings.consumer_group}-rereader"})
    )
    marker = access(claim)
    async with rereader.router.lifespan_context(rereader):
        await send(settings, OutgoingMessage(topic, claim, marker))
        await until_length(engine, 6)
    async with engine.connect() as conn:
        records = await store.timeline(conn, claim)
    assert [r.event_id for r in records] == [json.loads(e)["id"] for e in [*events, marker]]
    assert (await verify_chain(engine)).valid


async def test_two_replicas_share_the_partitions_and_one_chain(
    settings: AuditSettings, engine: AsyncEngine
) -> None:
    claims = [str(uuid.uuid4()) for _ in range(30)]
    topic = settings.topic(Topics.AUDIT_ACCESS)
    replicas = [create_worker_app(settings), create_worker_app(settings)]
    async with (
        replicas[0].router.lifespan_context(replicas[0]),
        replicas[1].router.lifespan_context(replicas[1]),
    ):
        for _ in range(4):
            await send(settings, *(OutgoingMessage(topic, c, access(c)) for c in claims))
        await until_length(engine, 4 * len(claims))
    result = await verify_chain(engine)
    assert (result.valid, result.checked) == (True, 120)

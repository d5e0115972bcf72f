"""One trace from the HTTP request through the outbox relay into the Kafka headers."""

from __future__ import annotations

import asyncio

import httpx
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from claimflow_devstack.testing import claim_body, read_topic
from claimflow_intake.adapters.tables import outbox
from claimflow_intake.settings import IntakeSettings
from claimflow_shared.db import create_engine
from claimflow_shared.kafka.producer import Publisher
from claimflow_shared.outbox import OutboxRelay
from claimflow_shared.telemetry import setup_tracing

from .conftest import auth


async def test_http_span_is_parent_of_publish_span_whose_context_travels_in_headers(
    client: httpx.AsyncClient, settings: IntakeSettings
) -> None:
    exporter = InMemorySpanExporter()
    setup_tracing(settings.service_name, None, (SimpleSpanProcessor(exporter),))

    response = await client.post("/v1/claims", json=claim_body(), headers=auth())
    assert response.status_code == 202
    claim_id = response.json()["id"]

    engine = create_engine(settings)
    publisher = await asyncio.to_thread(Publisher, settings)
    try:
        assert await OutboxRelay(engine, outbox, publisher, service="intake").relay_once() == 1
    finally:
        await asyncio.to_thread(publisher.close)
        await engine.dispose()

    spans = exporter.get_finished_spans()
    server = next(s for s in spans if s.kind == SpanKind.SERVER and s.name == "POST /v1/claims")
    publish = next(s for s in spans if s.kind == SpanKind.PRODUCER)
    assert publish.name == f"{settings.topic('claims.submitted')} publish"
    assert publish.parent is not None
    assert publish.context.trace_id == server.context.trace_id
    assert publish.parent.span_id == server.context.span_id
    assert publish.attributes is not None
    assert publish.attributes["messaging.system"] == "kafka"
    assert publish.attributes["messaging.destination.name"] == settings.topic("claims.submitted")
    for span in spans:
        values = " ".join(str(v) for v in (span.attributes or {}).values())
        assert "3730189502" not in values, f"PHI in attributes of {span.name}"

    (message,) = await asyncio.to_thread(
        read_topic, settings.kafka_bootstrap_servers, settings.topic("claims.submitted"), 1
    )
    assert message.key.decode() == claim_id
    traceparent = dict(message.headers)["traceparent"].decode()
    _version, trace_id, parent_id, _flags = traceparent.split("-")
    assert trace_id == format(server.context.trace_id, "032x")
    assert parent_id == format(publish.context.span_id, "016x")

"""The intake worker: relays the outbox to Kafka and moves claim statuses from events.

Runs as its own process (and Deployment), serving only health and metrics over HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from claimflow_intake.adapters import repository
from claimflow_intake.adapters.tables import outbox, processed_events
from claimflow_intake.settings import IntakeSettings
from claimflow_shared.db import create_engine
from claimflow_shared.events import (
    ClaimAdjudicatedV1,
    ClaimReversedV1,
    PaymentCompletedV1,
    Topics,
)
from claimflow_shared.kafka.admin import ensure_topics
from claimflow_shared.kafka.consumer import ConsumedEvent, EventConsumer, UnprocessableEvent
from claimflow_shared.kafka.producer import Publisher
from claimflow_shared.kafka.tracing import messaging_attributes
from claimflow_shared.logs import configure_logging
from claimflow_shared.outbox import OutboxRelay, mark_processed
from claimflow_shared.web.app import build_app
from claimflow_shared.web.health import worker_checks

# Processed-event ids are recorded under this name, whatever the Kafka consumer group is.
PROCESSED_AS = "claimflow-intake"

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

STATUS_CHANGES = Counter(
    "claimflow_claim_status_changes_total", "Claim status changes applied by intake", ["status"]
)


def consumed_topics(settings: IntakeSettings) -> list[str]:
    return [
        settings.topic(t)
        for t in (Topics.CLAIMS_ADJUDICATED, Topics.CLAIMS_REVERSED, Topics.PAYMENTS_COMPLETED)
    ]


def produced_topics(settings: IntakeSettings) -> list[str]:
    return [settings.topic(t) for t in (Topics.CLAIMS_SUBMITTED, Topics.AUDIT_ACCESS)]


async def _apply(conn: AsyncConnection, consumed: ConsumedEvent) -> None:
    data = consumed.event.data
    status: str
    if isinstance(data, ClaimAdjudicatedV1):
        claim_adjudication: dict[str, Any] = data.model_dump(
            mode="json", include={"outcome", "plan_id", "plan_version", "adjudicated_at", "totals"}
        )
        line_results = {
            line.line_no: line.model_dump(
                mode="json", include={"outcome", "reason_codes", "amounts"}
            )
            for line in data.lines
        }
        await repository.record_adjudication(conn, data.claim_id, claim_adjudication, line_results)
        claim_id, status = data.claim_id, data.status
    elif isinstance(data, ClaimReversedV1):
        claim_id, status = data.claim_id, data.status
    elif isinstance(data, PaymentCompletedV1):
        claim_id, status = data.claim_id, "paid"
    else:
        raise UnprocessableEvent(consumed, f"intake does not handle {consumed.event.type}")
    if not await repository.advance_status(conn, claim_id, status):
        raise UnprocessableEvent(consumed, "event names a claim intake does not hold")
    STATUS_CHANGES.labels(status).inc()
    log.info("claim %s: %s applied", claim_id, status)


def status_handler(engine: AsyncEngine) -> Any:
    async def handle(batch: Sequence[ConsumedEvent]) -> None:
        # One transaction per batch: effects and processed-event ids commit together, and the
        # consumer commits offsets only after this returns.
        async with engine.begin() as conn:
            for consumed in batch:
                with tracer.start_as_current_span(
                    f"{consumed.topic} process",
                    context=consumed.parent,
                    kind=SpanKind.CONSUMER,
                    attributes=messaging_attributes(
                        consumed.topic, "process", key=consumed.key, partition=consumed.partition
                    ),
                ):
                    if await mark_processed(
                        conn, processed_events, PROCESSED_AS, consumed.event.id
                    ):
                        await _apply(conn, consumed)

    return handle


def create_worker_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    configure_logging(settings.service_name + "-worker", settings.log_level)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        await asyncio.to_thread(
            ensure_topics, settings, produced_topics(settings) + consumed_topics(settings)
        )
        publisher = await asyncio.to_thread(Publisher, settings)
        relay = OutboxRelay.for_service(engine, outbox, publisher, settings)
        consumer = EventConsumer(
            settings,
            group_id=settings.consumer_group,
            topics=consumed_topics(settings),
            handler=status_handler(engine),
            loop=asyncio.get_running_loop(),
            dead_letters=publisher,
        )
        stop = asyncio.Event()
        relay_task = asyncio.create_task(relay.run(stop), name="outbox-relay")
        consumer.start()
        state.update(engine=engine, relay=relay, consumer=consumer)
        try:
            yield
        finally:
            stop.set()
            await consumer.stop()
            await relay_task
            await asyncio.to_thread(publisher.close)
            await engine.dispose()

    return build_app(
        settings,
        title="claimflow intake worker",
        description="Outbox relay and claim-status consumer of the intake service.",
        version="1.0.0",
        lifespan=lifespan,
        checks=worker_checks(state),
    )

"""The intake worker: relays the outbox to Kafka and moves claim statuses from events.

Runs as its own process (and Deployment), serving only health and metrics over HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from claimflow_intake.adapters import repository
from claimflow_intake.adapters.tables import outbox, processed_events
from claimflow_intake.settings import IntakeSettings
from claimflow_shared.events import (
    ClaimAdjudicatedV1,
    ClaimReversedV1,
    PaymentCompletedV1,
    Topics,
)
from claimflow_shared.kafka.consumer import BatchHandler, ConsumedEvent, UnprocessableEvent
from claimflow_shared.kafka.spans import process_span
from claimflow_shared.outbox import first_seen
from claimflow_shared.runtime import WorkerRuntime, build_worker_app

# Processed-event ids are recorded under this name, whatever the Kafka consumer group is.
PROCESSED_AS = "claimflow-intake"

log = logging.getLogger(__name__)

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


def status_handler(engine: AsyncEngine) -> BatchHandler:
    async def handle(batch: Sequence[ConsumedEvent]) -> None:
        # One transaction per batch: effects and processed-event ids commit together, and the
        # consumer commits offsets only after this returns.
        async with engine.begin() as conn:
            fresh = await first_seen(
                conn, processed_events, PROCESSED_AS, [c.event.id for c in batch]
            )
            for consumed in batch:
                if consumed.event.id not in fresh:
                    continue
                fresh.discard(consumed.event.id)  # the same event twice in one batch
                with process_span(consumed):
                    await _apply(conn, consumed)

    return handle


def create_worker_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()

    async def compose(runtime: WorkerRuntime) -> None:
        engine = await runtime.open_engine()
        await runtime.ensure_topics(produced_topics(settings) + consumed_topics(settings))
        await runtime.start_relay(outbox)
        await runtime.start_consumer(
            settings.consumer_group, consumed_topics(settings), status_handler(engine)
        )

    return build_worker_app(
        settings,
        title="claimflow intake worker",
        description="Outbox relay and claim-status consumer of the intake service.",
        compose=compose,
    )

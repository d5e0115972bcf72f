"""Claim statuses: the pipeline's events move a claim along (adjudicated or rejected, paid,
reversed), each applied once.

A batch is one transaction: its effects and its processed-event ids commit together, and
the consumer commits the offsets only after this returns, so a redelivered event changes
nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from claimflow_intake.adapters import repository
from claimflow_intake.adapters.tables import processed_events
from claimflow_intake.metrics import STATUS_CHANGES
from claimflow_shared.events import ClaimAdjudicatedV1, ClaimReversedV1, PaymentCompletedV1
from claimflow_shared.kafka.consumer import ConsumedEvent, UnprocessableEvent
from claimflow_shared.kafka.spans import process_span
from claimflow_shared.outbox import first_seen

# Processed-event ids are recorded under this name, whatever the Kafka consumer group is.
PROCESSED_AS = "claimflow-intake"

log = logging.getLogger(__name__)


async def apply_status_events(engine: AsyncEngine, batch: Sequence[ConsumedEvent]) -> None:
    """Apply the batch's events not seen before, in one transaction."""
    async with engine.begin() as conn:
        fresh = await first_seen(conn, processed_events, PROCESSED_AS, [c.event.id for c in batch])
        for consumed in batch:
            if consumed.event.id not in fresh:
                continue
            fresh.discard(consumed.event.id)  # the same event twice in one batch
            with process_span(consumed):
                await apply_status_event(conn, consumed)


async def apply_status_event(conn: AsyncConnection, consumed: ConsumedEvent) -> None:
    """One event's status change (with the adjudication it carries), in the caller's
    transaction; UnprocessableEvent for an event intake cannot apply."""
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

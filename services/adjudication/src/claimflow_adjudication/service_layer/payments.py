"""Payments: the saga's second half: `payments.completed` settles a claim, `payments.failed`
compensates it. See the service README for the states and the failure cases.

A claim's payment moves requested -> completed (claim `paid`) or requested -> failed (claim
`payment_failed`, its effects taken back, `claims.reversed` emitted). A result for a claim that
already left `requested` changes nothing: a repeat is the same answer again, and a
contradicting answer (completed after failed, or the reverse) is counted and logged, never
applied, because a reversal that was announced cannot be silently undone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow_adjudication.adapters import repository as repo
from claimflow_adjudication.adapters.tables import outbox, processed_events
from claimflow_adjudication.metrics import PAYMENT_RESULTS
from claimflow_adjudication.service_layer import messages
from claimflow_adjudication.service_layer.adjudication import CONSUMER
from claimflow_shared.events import PaymentCompletedV1, PaymentFailedV1, Topics, new_event
from claimflow_shared.kafka.consumer import ConsumedEvent, UnprocessableEvent
from claimflow_shared.kafka.spans import process_span
from claimflow_shared.outbox import enqueue, first_seen
from claimflow_shared.outbox.writer import PendingEvent
from claimflow_shared.settings import ServiceSettings

log = logging.getLogger(__name__)

MAX_REASON = 500


async def apply_payment_results(
    conn: AsyncConnection, settings: ServiceSettings, batch: Sequence[ConsumedEvent]
) -> list[str]:
    """Apply the batch inside the caller's transaction; returns the result of each event."""
    fresh = await first_seen(conn, processed_events, CONSUMER, [c.event.id for c in batch])
    todo = [c for c in batch if c.event.id in fresh]
    for consumed in todo:
        if not isinstance(consumed.event.data, PaymentCompletedV1 | PaymentFailedV1):
            raise UnprocessableEvent(consumed, f"{consumed.event.type} is not a payment result")
    rows = await repo.lock_claims(conn, [_data(c).claim_id for c in todo])
    state = {claim_id: row.payment_status for claim_id, row in rows.items()}
    outcomes: list[str] = []
    failing: list[tuple[ConsumedEvent, PaymentFailedV1, Decimal]] = []
    for consumed in todo:
        data = _data(consumed)
        row = rows.get(data.claim_id)
        if row is None:
            raise UnprocessableEvent(consumed, "payment result for a claim adjudication never saw")
        if row.payment_id != data.payment_id:
            raise UnprocessableEvent(consumed, "payment id is not the one requested for the claim")
        current = state[data.claim_id]
        wanted = repo.COMPLETED if isinstance(data, PaymentCompletedV1) else repo.FAILED
        if current == wanted:
            outcomes.append("repeated")
            continue
        if current != repo.REQUESTED:
            log.warning(
                "claim %s: payment %s after it was %s; not applied", data.claim_id, wanted, current
            )
            outcomes.append("conflicting")
            continue
        state[data.claim_id] = wanted
        if isinstance(data, PaymentCompletedV1):
            with process_span(consumed):
                await repo.set_payment_state(
                    conn, data.claim_id, status="paid", payment_status=repo.COMPLETED
                )
                log.info("claim %s paid", data.claim_id)
            outcomes.append("completed")
        else:
            failing.append((consumed, data, row.net_fee))
            outcomes.append("failed")
    if failing:
        await _compensate(conn, settings, failing)
    return outcomes


def _data(consumed: ConsumedEvent) -> PaymentCompletedV1 | PaymentFailedV1:
    data = consumed.event.data
    assert isinstance(data, PaymentCompletedV1 | PaymentFailedV1)
    return data


async def _compensate(
    conn: AsyncConnection,
    settings: ServiceSettings,
    failing: Sequence[tuple[ConsumedEvent, PaymentFailedV1, Decimal]],
) -> None:
    """Take the failed claims back out: accumulators, provider totals, history; announce it."""
    claim_ids = [data.claim_id for _, data, _ in failing]
    effects = await repo.effects_of(conn, claim_ids)
    await repo.add_usage(conn, effects.usage, sign=-1)
    await repo.add_provider_totals(
        conn,
        {
            npi: repo.ProviderDelta(-delta.net_fee, -delta.claims)
            for npi, delta in effects.providers.items()
        },
    )
    await repo.uncount_lines(conn, claim_ids)
    now = datetime.now(UTC)
    events: list[PendingEvent] = []
    for consumed, data, net_fee in failing:
        reason = data.reason[:MAX_REASON]
        await repo.set_payment_state(
            conn, data.claim_id, status="payment_failed", payment_status=repo.FAILED, reason=reason
        )
        with process_span(consumed) as span:
            log.info("claim %s payment failed; compensating", data.claim_id)
            key = str(data.claim_id)
            event = new_event(
                messages.SOURCE,
                messages.reversed_for_payment_failure(
                    data.claim_id, net_fee, f"payment failed: {reason}", now
                ),
                subject=key,
            )
            events.append(
                PendingEvent(
                    settings.topic(Topics.CLAIMS_REVERSED),
                    key,
                    event,
                    trace.set_span_in_context(span),
                )
            )
    await enqueue(conn, outbox, events)


def count(outcomes: Sequence[str]) -> None:
    for outcome in outcomes:
        PAYMENT_RESULTS.labels(outcome).inc()

"""Adjudicating claims: a batch of `claims.submitted` events in one transaction: decide,
store, count, announce.

Everything a claim changes commits together: its processed-event id, its results, the
subscriber's accumulators, the provider totals and the outbox rows for `claims.adjudicated`
and `payments.requested`. The consumer commits the offset only after this returns.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow_adjudication.adapters import repository as repo
from claimflow_adjudication.adapters.tables import outbox, processed_events
from claimflow_adjudication.domain import (
    ClaimResult,
    ClaimToAdjudicate,
    HistoryKey,
    Plan,
    PlanBook,
    UsageDelta,
    adjudicate,
    history_keys,
)
from claimflow_adjudication.domain.errors import NoPlanError
from claimflow_adjudication.metrics import CLAIMS_ADJUDICATED, LINE_REASONS, PAYMENTS_REQUESTED
from claimflow_adjudication.service_layer import messages
from claimflow_shared.events import ClaimSubmittedV1, Topics, new_event
from claimflow_shared.kafka.consumer import ConsumedEvent, UnprocessableEvent
from claimflow_shared.kafka.spans import process_span
from claimflow_shared.outbox import enqueue, first_seen
from claimflow_shared.outbox.writer import PendingEvent
from claimflow_shared.settings import ServiceSettings

log = logging.getLogger(__name__)

CONSUMER = "claimflow-adjudication"


@dataclass(frozen=True)
class _Pending:
    consumed: ConsumedEvent
    claim: ClaimToAdjudicate
    plan: Plan


def _prepare(batch: Sequence[ConsumedEvent], book: PlanBook) -> list[_Pending]:
    pending: list[_Pending] = []
    seen: set[uuid.UUID] = set()
    for consumed in batch:
        data = consumed.event.data
        if not isinstance(data, ClaimSubmittedV1):
            raise UnprocessableEvent(consumed, f"{consumed.event.type} is not a submitted claim")
        claim = messages.claim_from_event(data)
        problem = messages.inconsistency(data, claim)
        if problem is not None:
            raise UnprocessableEvent(consumed, f"claim event contradicts itself: {problem}")
        if claim.claim_id in seen:
            continue  # the same claim twice in one batch, under two event ids
        seen.add(claim.claim_id)
        plan = book.resolve(claim.member.plan_group)
        if plan is None:
            raise NoPlanError("no plan matches the claim's plan/group and no default plan exists")
        pending.append(_Pending(consumed, claim, plan))
    return pending


def _merge_usage(
    total: dict[HistoryKey, UsageDelta], usage: Mapping[HistoryKey, UsageDelta]
) -> None:
    for key, delta in usage.items():
        before = total.get(key, UsageDelta())
        total[key] = UsageDelta(
            before.deductible + delta.deductible, before.benefit + delta.benefit
        )


async def adjudicate_batch(
    conn: AsyncConnection,
    settings: ServiceSettings,
    book: PlanBook,
    batch: Sequence[ConsumedEvent],
) -> list[ClaimResult]:
    """Apply the batch inside the caller's transaction; returns the results it stored."""
    fresh = await first_seen(conn, processed_events, CONSUMER, [c.event.id for c in batch])
    pending = _prepare([c for c in batch if c.event.id in fresh], book)
    done = await repo.known_claims(conn, [p.claim.claim_id for p in pending])
    pending = [p for p in pending if p.claim.claim_id not in done]
    if not pending:
        return []
    keys = set().union(*(history_keys(p.plan, p.claim) for p in pending))
    histories = await repo.lock_histories(conn, keys)
    now = datetime.now(UTC)
    stored: list[repo.StoredResult] = []
    usage: dict[HistoryKey, UsageDelta] = {}
    events: list[PendingEvent] = []
    for p in pending:
        with process_span(p.consumed) as span:
            result = adjudicate(p.claim, p.plan, histories)
            span.set_attribute("claimflow.claim.outcome", result.outcome)
            span.set_attribute("claimflow.plan.id", result.plan_id)
            span.set_attribute("claimflow.plan.version", result.plan_version)
            log.info(
                "claim %s decided: %s under plan %s",
                result.claim_id,
                result.outcome,
                result.plan_id,
            )
            context = trace.set_span_in_context(span)
        histories.update(result.histories)
        _merge_usage(usage, result.usage)
        payable = not result.rejected and result.totals.benefit > 0
        payment_id = messages.payment_id_for(result.claim_id) if payable else None
        stored.append(
            repo.StoredResult(
                event_id=p.consumed.event.id,
                claim=p.claim,
                result=result,
                status="rejected" if result.rejected else "adjudicated",
                payment_status=repo.REQUESTED if payable else repo.NOT_REQUIRED,
                payment_id=payment_id,
                adjudicated_at=now,
            )
        )
        key = str(result.claim_id)
        events.append(
            PendingEvent(
                settings.topic(Topics.CLAIMS_ADJUDICATED),
                key,
                new_event(messages.SOURCE, messages.adjudicated(result, now), subject=key),
                context,
            )
        )
        if payable:
            events.append(
                PendingEvent(
                    settings.topic(Topics.PAYMENTS_REQUESTED),
                    key,
                    new_event(
                        messages.SOURCE, messages.payment_requested(result, now), subject=key
                    ),
                    context,
                )
            )
    await repo.insert_results(conn, stored)
    await repo.add_usage(conn, usage)
    await repo.add_provider_totals(
        conn, repo.provider_deltas(s.result for s in stored if not s.result.rejected)
    )
    await enqueue(conn, outbox, events)
    return [s.result for s in stored]


def count(results: Sequence[ClaimResult]) -> None:
    """Metrics, after the commit, so a rolled-back batch is not counted."""
    for result in results:
        CLAIMS_ADJUDICATED.labels(result.outcome).inc()
        if not result.rejected and result.totals.benefit > 0:
            PAYMENTS_REQUESTED.inc()
        for line in result.lines:
            for code in line.reason_codes:
                LINE_REASONS.labels(code).inc()

"""Reading the trail: a claim's timeline, page by page, and the chain's current head."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_audit.adapters import store
from claimflow_audit.adapters.cursors import decode_cursor, encode_cursor
from claimflow_audit.domain.canonical import payload_digest
from claimflow_audit.domain.chain import AuditRecord, ChainHead, Entry
from claimflow_audit.domain.errors import ClaimNotFoundError
from claimflow_shared.events.catalog import AuditAccessV1
from claimflow_shared.events.envelope import new_event

DEFAULT_PAGE = 500
SOURCE = "/claimflow/audit-log"


@dataclass(frozen=True)
class Timeline:
    claim_id: str
    records: list[AuditRecord]
    next_cursor: str | None


def _current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def access_entry(claim_id: str, principal: str) -> Entry:
    """The chain's own record of a timeline read: an `audit.access` event, as intake writes
    for a claim read, appended directly (the audit log is where it would go anyway)."""
    event = new_event(
        SOURCE,
        AuditAccessV1(
            claim_id=uuid.UUID(claim_id),
            principal=principal,
            action="audit.timeline",
            accessed_at=datetime.now(UTC),
        ),
        subject=claim_id,
    )
    return Entry(
        event_id=event.id,
        type=event.type,
        event_time=event.time,
        source=SOURCE,
        subject=claim_id,
        actor=principal,
        trace_id=_current_trace_id(),
        payload_digest=payload_digest(event.data.model_dump(mode="json")),
    )


async def claim_timeline(
    engine: AsyncEngine,
    claim_id: str,
    *,
    principal: str,
    cursor: str | None,
    limit: int | None,
    max_limit: int,
) -> Timeline:
    """Every record of the claim in the order things happened (event time, then chain order);
    ClaimNotFoundError when the chain holds none.

    The read is itself a PHI read: it appends its own `audit.access` record to the chain in
    the read's transaction, so a page served is a page recorded (the record shows from the
    next read on)."""
    not_found = ClaimNotFoundError("The audit log holds no records of this claim.")
    try:
        subject = str(uuid.UUID(claim_id))
    except ValueError:
        raise not_found from None
    after = decode_cursor(cursor) if cursor else None
    page = min(limit or DEFAULT_PAGE, max_limit)
    async with engine.begin() as conn:
        records = await store.timeline(conn, subject, after=after, limit=page + 1)
        if not records and after is None:
            raise not_found
        await store.append(conn, [access_entry(subject, principal)])
    more = len(records) > page
    records = records[:page]
    return Timeline(subject, records, encode_cursor(records[-1]) if more else None)


async def chain_head(engine: AsyncEngine) -> ChainHead:
    async with engine.connect() as conn:
        return await store.chain_head(conn)

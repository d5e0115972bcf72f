"""Reading the trail: a claim's timeline, page by page, and the chain's current head."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_audit.adapters import store
from claimflow_audit.adapters.cursors import decode_cursor, encode_cursor
from claimflow_audit.domain.chain import AuditRecord, ChainHead
from claimflow_audit.domain.errors import ClaimNotFoundError

DEFAULT_PAGE = 500


@dataclass(frozen=True)
class Timeline:
    claim_id: str
    records: list[AuditRecord]
    next_cursor: str | None


async def claim_timeline(
    engine: AsyncEngine,
    claim_id: str,
    *,
    cursor: str | None,
    limit: int | None,
    max_limit: int,
) -> Timeline:
    """Every record of the claim in the order things happened (event time, then chain order);
    ClaimNotFoundError when the chain holds none."""
    not_found = ClaimNotFoundError("The audit log holds no records of this claim.")
    try:
        subject = str(uuid.UUID(claim_id))
    except ValueError:
        raise not_found from None
    after = decode_cursor(cursor) if cursor else None
    page = min(limit or DEFAULT_PAGE, max_limit)
    async with engine.connect() as conn:
        records = await store.timeline(conn, subject, after=after, limit=page + 1)
    if not records and after is None:
        raise not_found
    more = len(records) > page
    records = records[:page]
    return Timeline(subject, records, encode_cursor(records[-1]) if more else None)


async def chain_head(engine: AsyncEngine) -> ChainHead:
    async with engine.connect() as conn:
        return await store.chain_head(conn)

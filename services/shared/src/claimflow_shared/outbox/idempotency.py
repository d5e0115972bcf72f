"""Idempotent consumption: an event id is recorded in the same transaction as its effects."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection


async def mark_processed(
    conn: AsyncConnection, processed_events: Table, consumer: str, event_id: str
) -> bool:
    """True the first time (apply the effects); False when this consumer already applied it."""
    result = await conn.execute(
        insert(processed_events)
        .values(consumer=consumer, event_id=event_id)
        .on_conflict_do_nothing()
        .returning(processed_events.c.event_id)
    )
    return result.first() is not None

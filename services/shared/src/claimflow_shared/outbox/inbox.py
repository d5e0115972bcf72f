"""The idempotent-consumer inbox: event ids recorded in the same transaction as their effects.

One statement per batch whatever its size. Ids are inserted in sorted order, so two replicas
recording overlapping batches (a partition moving mid-batch) take the unique-index locks in
the same order and never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncConnection


async def first_seen(
    conn: AsyncConnection, processed_events: Table, consumer: str, event_ids: Sequence[str]
) -> set[str]:
    """Records the ids for `consumer`; returns those not recorded before (to be applied)."""
    if not event_ids:
        return set()
    statement = text(
        f"""
        INSERT INTO {processed_events.name} (consumer, event_id)
        SELECT :consumer, e FROM unnest(CAST(:ids AS varchar[])) AS e ORDER BY e
        ON CONFLICT DO NOTHING
        RETURNING event_id
        """  # noqa: S608 - the table name is the schema's, never input
    )
    rows = await conn.execute(statement, {"consumer": consumer, "ids": sorted(set(event_ids))})
    return {row.event_id for row in rows}

"""Writing events into the outbox inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow_shared.events import CloudEvent
from claimflow_shared.kafka.tracing import inject_headers


@dataclass(frozen=True)
class PendingEvent:
    topic: str
    key: str | None
    event: CloudEvent[Any]


async def enqueue(conn: AsyncConnection, outbox: Table, events: Sequence[PendingEvent]) -> None:
    """Add events to the outbox; they commit (or roll back) with the caller's own rows."""
    if not events:
        return
    # The span active now (the HTTP request's) becomes the parent of the relay's publish span.
    headers = {k: v.decode() for k, v in inject_headers(otel_context.get_current())}
    await conn.execute(
        insert(outbox),
        [
            {
                "event_id": e.event.id,
                "topic": e.topic,
                "key": e.key,
                "payload": e.event.to_json(),
                "headers": headers,
            }
            for e in events
        ],
    )

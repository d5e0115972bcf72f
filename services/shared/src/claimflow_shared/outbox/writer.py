"""Writing events into the outbox inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow_shared.events import CloudEvent
from claimflow_shared.kafka.tracing import inject_headers


@dataclass(frozen=True)
class PendingEvent:
    topic: str
    key: str | None
    event: CloudEvent[Any]
    # The trace this event continues, when one transaction writes events of several traces
    # (a consumer's batch); None: the context active at enqueue time.
    context: Context | None = None


def outbox_rows(events: Sequence[PendingEvent]) -> list[dict[str, Any]]:
    """Rows for the outbox table, for callers that fold the insert into a larger statement."""
    # The span active now (the HTTP request's) becomes the parent of the relay's publish span.
    current = {k: v.decode() for k, v in inject_headers(otel_context.get_current())}
    return [
        {
            "event_id": e.event.id,
            "topic": e.topic,
            "key": e.key,
            "payload": e.event.to_json(),
            "headers": current
            if e.context is None
            else {k: v.decode() for k, v in inject_headers(e.context)},
        }
        for e in events
    ]


async def enqueue(conn: AsyncConnection, outbox: Table, events: Sequence[PendingEvent]) -> None:
    """Add events to the outbox; they commit (or roll back) with the caller's own rows."""
    if events:
        await conn.execute(insert(outbox), outbox_rows(events))

"""Reads of PHI, recorded: one `audit.access` event per claim whose PHI a read returns."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow_shared.events import AuditAccessV1, Topics, new_event
from claimflow_shared.events.catalog import AccessAction
from claimflow_shared.settings import ServiceSettings

from .writer import PendingEvent, enqueue


async def record_access(
    conn: AsyncConnection,
    outbox: Table,
    settings: ServiceSettings,
    source: str,
    claim_ids: Sequence[uuid.UUID],
    *,
    principal: str,
    action: AccessAction,
) -> None:
    """Enqueue the events in the read's own transaction: a read that commits is a read
    recorded."""
    accessed_at = datetime.now(UTC)
    topic = settings.topic(Topics.AUDIT_ACCESS)
    events = [
        PendingEvent(
            topic,
            str(claim_id),
            new_event(
                source,
                AuditAccessV1(
                    claim_id=claim_id, principal=principal, action=action, accessed_at=accessed_at
                ),
                subject=str(claim_id),
            ),
        )
        for claim_id in claim_ids
    ]
    await enqueue(conn, outbox, events)

"""Periodic checkpoints: the chain's length and head hash, written into the chain itself.

A checkpoint record states "at this time the chain held N records ending in hash H". It is
also logged, so the log store (outside the database) keeps an independent copy of each head:
cutting records off the end of the chain, checkpoint included, then shows against the logs,
and `verify?to_seq=N` against any checkpoint's N proves the chain up to it still exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_audit.adapters import store
from claimflow_audit.domain.canonical import canonical_json, sha256_hex
from claimflow_audit.domain.chain import AuditRecord, ChainHead, Entry
from claimflow_audit.metrics import CHAIN_LENGTH, LAST_CHECKPOINT, RECORDS_APPENDED

log = logging.getLogger(__name__)

CHECKPOINT_TYPE = "io.claimflow.audit.checkpoint.v1"
SOURCE = "/claimflow/audit-log"
MAX_BACKOFF_SECONDS = 60.0


def checkpoint_entry(head: ChainHead, clock: store.Clock = store.utc_now) -> Entry:
    detail: dict[str, JsonValue] = {"chain_length": head.seq, "head_hash": head.hash}
    return Entry(
        # One checkpoint per head: replicas racing for the same head write it once.
        event_id=f"checkpoint:{head.seq}",
        type=CHECKPOINT_TYPE,
        source=SOURCE,
        event_time=clock(),
        payload_digest=sha256_hex(canonical_json(detail)),
        detail=detail,
    )


async def checkpoint_once(
    engine: AsyncEngine, clock: store.Clock = store.utc_now
) -> AuditRecord | None:
    """Append a checkpoint of the current head, unless nothing arrived since the last one."""
    async with engine.begin() as conn:
        await store.lock_chain(conn)
        head = await store.chain_head(conn)
        if head.seq == 0 or head.type == CHECKPOINT_TYPE:
            return None
        appended = await store.append_locked(conn, head, [checkpoint_entry(head, clock)], clock)
    if not appended.records:
        return None
    record = appended.records[0]
    RECORDS_APPENDED.labels("checkpoint", "").inc()
    CHAIN_LENGTH.set(record.seq)
    LAST_CHECKPOINT.set(record.recorded_at.timestamp())
    log.info(
        "audit checkpoint",
        extra={
            "checkpoint_seq": record.seq,
            "chain_length": head.seq,
            "head_hash": head.hash,
            "checkpoint_hash": record.hash,
        },
    )
    return record


class Checkpointer:
    def __init__(self, engine: AsyncEngine, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self.last_cycle = time.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        delay = self._interval
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return
            self.last_cycle = time.monotonic()
            try:
                await checkpoint_once(self._engine)
            except Exception as exc:  # noqa: BLE001 - retried; the chain is untouched
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 2.0**failures)
                log.warning("audit checkpoint failed (%s); retrying", type(exc).__name__)
            else:
                failures, delay = 0, self._interval

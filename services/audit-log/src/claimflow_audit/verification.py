"""Verifying the chain in the database: stream it in chunks through the walker."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_audit.adapters import store
from claimflow_audit.domain.canonical import GENESIS_HASH
from claimflow_audit.domain.chain import AuditRecord
from claimflow_audit.domain.walk import ChainWalk, Finding, Linked
from claimflow_audit.metrics import CHAIN_VALID, VERIFY_DURATION, VERIFY_RECORDS


@dataclass(frozen=True)
class Verification:
    valid: bool
    checked: int
    finding: Finding | None
    from_seq: int
    to_seq: int
    # The hash of the last record found valid: an anchor to compare with an export or a log.
    last_hash: str | None
    seconds: float


def _walk_chunk(walk: ChainWalk, chunk: list[AuditRecord]) -> bool:
    return walk.feed(Linked.of(r) for r in chunk)


async def verify_chain(
    engine: AsyncEngine,
    *,
    from_seq: int = 1,
    to_seq: int | None = None,
    chunk_size: int = 5000,
    anchor: str | None = None,
) -> Verification:
    """Re-walk records from_seq..to_seq (to the head as it is now when to_seq is None).

    A to_seq past the head reports the missing tail as a gap: that is how a checkpoint or an
    export's last seq proves records were not cut off the end. `anchor` is the hash record
    from_seq must link to when the caller knows it (a hash it verified before); by default
    it is read from the database.
    """
    started = time.perf_counter()
    async with engine.connect() as conn:
        last = to_seq if to_seq is not None else (await store.chain_head(conn)).seq
        if anchor is None:
            anchor = GENESIS_HASH if from_seq == 1 else await store.hash_at(conn, from_seq - 1)
        walk = ChainWalk(from_seq, anchor)
        async for chunk in store.records_between(conn, from_seq, last, chunk_size):
            # Hashing a chunk is CPU work; off the event loop, the API keeps answering.
            if not await asyncio.to_thread(_walk_chunk, walk, chunk):
                break
    finding = walk.finish(last)
    seconds = time.perf_counter() - started
    VERIFY_DURATION.observe(seconds)
    VERIFY_RECORDS.inc(walk.checked)
    if finding is not None:
        CHAIN_VALID.set(0)
    elif from_seq == 1 and to_seq is None:
        CHAIN_VALID.set(1)
    return Verification(
        valid=finding is None,
        checked=walk.checked,
        finding=finding,
        from_seq=from_seq,
        to_seq=last,
        last_hash=walk.last_hash,
        seconds=seconds,
    )

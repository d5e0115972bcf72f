"""Verifying the chain in the database: on request (the API and the CLI), and on a schedule
(the worker), streaming it in chunks through the walker.

The worker's scheduled verification keeps `claimflow_audit_chain_valid` meaningful.

Every run costs what was appended since the last one. The verifier remembers the last record
it found intact (seq and hash, in memory) and walks from there to the current head, linking
the first new record to the remembered hash. Before that it checks the remembered record is
still there with the same hash, which catches a cut-off tail and a re-hashed rewrite of the
history up to it (which a walk alone cannot see: a consistent forgery is a valid chain).

What an incremental run cannot see is a record changed after it was verified and left
un-rehashed somewhere in the middle, so the whole chain is re-walked from seq 1 at start
and every `full_interval` seconds. The start is from seq 1, not from the last checkpoint
record: a checkpoint lives in the same table an attacker with the owner's keys can rewrite,
so it is not evidence of anything until it has been verified itself.

The remembered point only moves on a run that found everything intact: after a break each
run looks again from the same place, so the gauge stays 0 until the chain is restored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_audit.adapters import store
from claimflow_audit.domain.canonical import GENESIS_HASH
from claimflow_audit.domain.chain import AuditRecord
from claimflow_audit.domain.errors import BadRangeError, VerificationBusyError
from claimflow_audit.domain.walk import ChainWalk, Finding, Linked
from claimflow_audit.metrics import (
    CHAIN_VALID,
    CHAIN_VERIFIED_SEQ,
    VERIFY_DURATION,
    VERIFY_RECORDS,
    VERIFY_RUNS,
)

log = logging.getLogger(__name__)


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


async def verify_on_request(
    engine: AsyncEngine,
    slots: asyncio.Semaphore,
    *,
    from_seq: int,
    to_seq: int | None,
    chunk_size: int,
) -> Verification:
    """verify_chain for a caller who asked: at most as many at once as `slots` allows, and
    VerificationBusyError (rather than a wait) when they are all taken."""
    if to_seq is not None and to_seq < from_seq:
        raise BadRangeError("to_seq must not be smaller than from_seq.")
    if slots.locked():
        raise VerificationBusyError(
            "Verification reads the whole range; try again when the running one has finished."
        )
    async with slots:
        return await verify_chain(engine, from_seq=from_seq, to_seq=to_seq, chunk_size=chunk_size)


# --- the worker's scheduled verification -------------------------------------------------

# A record verified earlier whose hash has changed although the walk up to it holds: the
# history was rewritten and re-hashed consistently (only a remembered hash shows that).
REWRITTEN = "rewritten"


@dataclass(frozen=True)
class Verified:
    seq: int
    hash: str


@dataclass(frozen=True)
class Broken:
    first_invalid: int
    reason: str


class ScheduledVerifier:
    def __init__(
        self, engine: AsyncEngine, *, interval: float, full_interval: float, chunk_size: int
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._full_interval = full_interval
        self._chunk_size = chunk_size
        self.verified: Verified | None = None
        self._last_full = 0.0

    async def run(self) -> None:
        """Verify now, then every interval, until cancelled (the worker's shutdown)."""
        while True:
            await self.run_once()
            await asyncio.sleep(self._interval)

    async def run_once(self) -> str:
        """One run: ok, broken or error (the database did not answer; the next run retries)."""
        try:
            broken = await self._verify()
        except Exception as exc:  # noqa: BLE001 - counted and retried; the chain is untouched
            log.warning("scheduled audit chain verification failed (%s)", type(exc).__name__)
            result = "error"
        else:
            result = "ok" if broken is None else "broken"
            CHAIN_VALID.set(1 if broken is None else 0)
            if broken is not None:
                log.error(
                    "audit chain broken",
                    extra={
                        "first_invalid": broken.first_invalid,
                        "reason": broken.reason,
                        "verified_seq": self.verified.seq if self.verified else 0,
                    },
                )
        VERIFY_RUNS.labels(result).inc()
        return result

    async def _verify(self) -> Broken | None:
        known = self.verified
        async with self._engine.connect() as conn:
            head = (await store.chain_head(conn)).seq
            # The remembered record must still be there, unchanged (one index probe).
            holds = known is None or (
                head >= known.seq
                and (known.seq == 0 or await store.hash_at(conn, known.seq) == known.hash)
            )
        full_due = self._full_interval > 0 and (
            time.monotonic() - self._last_full >= self._full_interval
        )
        if known is None or not holds or full_due:
            # Up to the remembered seq at least: a tail cut off below it shows as the gap.
            outcome = await self._walk(1, max(head, known.seq if known else 0), GENESIS_HASH)
            if isinstance(outcome, Broken):
                return outcome
            self._last_full = time.monotonic()
            if known is not None and not holds:
                # Intact from seq 1, yet not what was verified: the history was replaced.
                return Broken(known.seq, REWRITTEN)
        elif head > known.seq:
            outcome = await self._walk(known.seq + 1, head, known.hash)
            if isinstance(outcome, Broken):
                return outcome
        else:
            return None
        self.verified = outcome
        CHAIN_VERIFIED_SEQ.set(outcome.seq)
        return None

    async def _walk(self, first: int, last: int, anchor: str) -> Verified | Broken:
        report = await verify_chain(
            self._engine, from_seq=first, to_seq=last, chunk_size=self._chunk_size, anchor=anchor
        )
        if report.finding is not None:
            return Broken(report.finding.seq, report.finding.reason.value)
        # Nothing walked only for an empty chain (first 1, last 0): its head is the genesis.
        return Verified(last, report.last_hash or anchor)

"""The worker's scheduled verification: keeps `claimflow_audit_chain_valid` meaningful.

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
from claimflow_audit.metrics import CHAIN_VALID, CHAIN_VERIFIED_SEQ, VERIFY_RUNS
from claimflow_audit.verification import verify_chain

log = logging.getLogger(__name__)

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

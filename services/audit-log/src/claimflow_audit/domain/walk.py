"""Re-walking a stretch of the chain: the one verifier behind the API, the CLI and exports.

The walker is fed records in sequence order, chunk by chunk, and stops at the first one that
does not hold, saying which and why:

- gap: a sequence number is missing (a record was deleted); first_invalid is the missing seq;
- hash_mismatch: the record's hash is not the hash of its own contents (it was changed);
- prev_hash_mismatch: the record does not link to the hash of the record before it (that one
  was changed and re-hashed, or replaced).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .canonical import NotCanonicalizableError
from .chain import AuditRecord, chain_hash


class Reason(StrEnum):
    GAP = "gap"
    HASH_MISMATCH = "hash_mismatch"
    PREV_HASH_MISMATCH = "prev_hash_mismatch"


EXPLANATIONS = {
    Reason.GAP: "record {seq} is missing: the sequence jumps past it",
    Reason.HASH_MISMATCH: "record {seq} does not hash to its stored hash: its contents changed",
    Reason.PREV_HASH_MISMATCH: (
        "record {seq} does not link to the hash of the record before it: that record was "
        "changed and re-hashed, or replaced"
    ),
}


@dataclass(frozen=True)
class Finding:
    seq: int
    reason: Reason

    def explain(self) -> str:
        return EXPLANATIONS[self.reason].format(seq=self.seq)


@dataclass(frozen=True)
class Linked:
    """One record as the walker sees it: its place, its links, and the body its hash covers."""

    seq: int
    prev_hash: str
    hash: str
    body: dict[str, Any]

    @classmethod
    def of(cls, record: AuditRecord) -> Linked:
        return cls(record.seq, record.prev_hash, record.hash, record.body())


class ChainWalk:
    """Walks records first_seq, first_seq + 1, ...; `anchor` is the hash the first must link
    to (GENESIS_HASH from seq 1), or None to take the first record's link on trust."""

    def __init__(self, first_seq: int, anchor: str | None) -> None:
        self.expected_seq = first_seq
        self.expected_prev = anchor
        self.checked = 0
        self.last_hash: str | None = None
        self.finding: Finding | None = None

    def feed(self, records: Iterable[Linked]) -> bool:
        """Check records in order; False once a record failed (the rest are not looked at)."""
        if self.finding is not None:
            return False
        for record in records:
            self.finding = self._check(record)
            if self.finding is not None:
                return False
            self.checked += 1
            self.expected_seq += 1
            self.expected_prev = self.last_hash = record.hash
        return True

    def finish(self, last_seq: int | None) -> Finding | None:
        """The verdict; records expected up to last_seq that never came are a gap."""
        if self.finding is None and last_seq is not None and self.expected_seq <= last_seq:
            self.finding = Finding(self.expected_seq, Reason.GAP)
        return self.finding

    def _check(self, record: Linked) -> Finding | None:
        if record.seq != self.expected_seq:
            return Finding(self.expected_seq, Reason.GAP)
        if self.expected_prev is not None and record.prev_hash != self.expected_prev:
            return Finding(record.seq, Reason.PREV_HASH_MISMATCH)
        try:
            recomputed = chain_hash(record.prev_hash, record.body)
        except (NotCanonicalizableError, UnicodeEncodeError):
            return Finding(record.seq, Reason.HASH_MISMATCH)
        if recomputed != record.hash:
            return Finding(record.seq, Reason.HASH_MISMATCH)
        return None

"""The hash chain: what a record is, how it is linked to the one before it, and how it is hashed.

    hash(n) = SHA-256( prev_hash(n) || JCS(body(n)) )    as 64 lowercase hex digits

`prev_hash(n)` is the 64 ASCII hex digits of hash(n-1) (GENESIS_HASH, 64 zeros, for record 1),
`||` is concatenation and JCS is RFC 8785 (see canonical.py). body(n) is the JSON object of
exactly the fields in HASHED_FIELDS, absent values as null, times as canonical_time strings.
Sequence numbers start at 1 and have no gaps, so a deleted record shows as a gap, a changed
one as a hash mismatch, and a changed-and-rehashed one as the next record's broken link.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import JsonValue

from .canonical import GENESIS_HASH, as_utc, canonical_record, canonical_time, sha256_hex

HASHED_FIELDS = (
    "seq",
    "event_id",
    "type",
    "source",
    "subject",
    "actor",
    "trace_id",
    "event_time",
    "recorded_at",
    "topic",
    "kafka_partition",
    "kafka_offset",
    "payload_digest",
    "detail",
)


@dataclass(frozen=True)
class Entry:
    """What is known of one event before it joins the chain."""

    event_id: str
    type: str
    event_time: datetime
    source: str | None = None
    # The claim id for claim events (the CloudEvents subject); a plan's key for plan records.
    subject: str | None = None
    actor: str | None = None
    trace_id: str | None = None
    topic: str | None = None
    kafka_partition: int | None = None
    kafka_offset: int | None = None
    # Of the payload, never the payload: claims.submitted carries PHI.
    payload_digest: str | None = None
    # Only for records the audit log writes itself (checkpoints); never event data.
    detail: dict[str, JsonValue] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    event_id: str
    type: str
    source: str | None
    subject: str | None
    actor: str | None
    trace_id: str | None
    event_time: datetime
    recorded_at: datetime
    topic: str | None
    kafka_partition: int | None
    kafka_offset: int | None
    payload_digest: str | None
    detail: dict[str, JsonValue] | None
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        return record_body(self)

    def wire(self) -> dict[str, Any]:
        """The record as exported and served: the hashed body plus both hashes."""
        return {**self.body(), "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True)
class ChainHead:
    """The last record of the chain; seq 0 and the genesis hash while it is empty."""

    seq: int = 0
    hash: str = GENESIS_HASH
    recorded_at: datetime | None = None
    type: str | None = None


def record_body(record: Entry | AuditRecord, **extra: Any) -> dict[str, Any]:
    """The hashed JSON object of a record (an Entry needs seq and recorded_at as extras)."""
    values: dict[str, Any] = {name: getattr(record, name, None) for name in HASHED_FIELDS}
    values |= extra
    values["event_time"] = canonical_time(values["event_time"])
    values["recorded_at"] = canonical_time(values["recorded_at"])
    return values


def chain_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return sha256_hex(prev_hash.encode("ascii") + canonical_record(body))


def link(head: ChainHead, entries: Sequence[Entry], now: datetime) -> list[AuditRecord]:
    """Chain entries after head, in the given order.

    recorded_at never goes backwards along the chain (a replica whose clock is behind takes
    the head's time), so a time range always maps to one contiguous range of sequence numbers.
    """
    recorded_at = as_utc(now)
    if head.recorded_at is not None and head.recorded_at > recorded_at:
        recorded_at = head.recorded_at
    records = []
    prev_hash, seq = head.hash, head.seq
    for entry in entries:
        seq += 1
        digest = chain_hash(prev_hash, record_body(entry, seq=seq, recorded_at=recorded_at))
        records.append(
            AuditRecord(
                seq=seq,
                event_id=entry.event_id,
                type=entry.type,
                source=entry.source,
                subject=entry.subject,
                actor=entry.actor,
                trace_id=entry.trace_id,
                event_time=as_utc(entry.event_time),
                recorded_at=recorded_at,
                topic=entry.topic,
                kafka_partition=entry.kafka_partition,
                kafka_offset=entry.kafka_offset,
                payload_digest=entry.payload_digest,
                detail=entry.detail,
                prev_hash=prev_hash,
                hash=digest,
            )
        )
        prev_hash = digest
    return records

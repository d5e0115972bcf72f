"""The chain in PostgreSQL: appending under the single-writer lock, and reading it back.

One global chain, one writer at a time: every append transaction first takes a
transaction-scoped advisory lock, then reads the head, then inserts its records after it. Any
number of worker replicas may consume (each owns some partitions); their batches queue on the
lock and join the chain one after another, so the chain is always one total order and the
sequence numbers have no gaps. The lock is released by commit or rollback, so a replica that
dies mid-batch leaves nothing behind but its uncommitted offsets, which are redelivered.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import Row, Text, any_, bindparam, func, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow_audit.adapters.tables import audit_records as t
from claimflow_audit.domain.chain import AuditRecord, ChainHead, Entry, link

CHAIN_LOCK = zlib.crc32(b"claimflow.audit.chain")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Appended:
    records: list[AuditRecord]
    duplicates: int
    head: ChainHead


COLUMNS = tuple(c.name for c in t.columns)
# Rows are read and written positionally: the table's columns are the record's fields.
assert tuple(f.name for f in fields(AuditRecord)) == COLUMNS
_DETAIL = COLUMNS.index("detail")


def _record(row: Row[Any]) -> AuditRecord:
    return AuditRecord(**row._mapping)


def _copy_row(record: AuditRecord) -> tuple[Any, ...]:
    values = [getattr(record, name) for name in COLUMNS]
    # jsonb goes over COPY as its text form (SQLAlchemy's asyncpg codec for it is text).
    values[_DETAIL] = None if record.detail is None else json.dumps(record.detail)
    return tuple(values)


async def _driver(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under conn, inside conn's transaction."""
    raw = await conn.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    return driver


async def _insert(conn: AsyncConnection, records: Sequence[AuditRecord]) -> None:
    """Binary COPY inside the caller's transaction: a third cheaper than a multi-row INSERT
    for large batches, and needs only the INSERT right."""
    driver = await _driver(conn)
    await driver.copy_records_to_table(
        t.name, records=[_copy_row(r) for r in records], columns=COLUMNS
    )


async def lock_chain(conn: AsyncConnection) -> None:
    """Become the chain's only writer until this transaction ends."""
    await conn.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK)))


async def chain_head(conn: AsyncConnection) -> ChainHead:
    row = (
        await conn.execute(
            select(t.c.seq, t.c.hash, t.c.recorded_at, t.c.type).order_by(t.c.seq.desc()).limit(1)
        )
    ).first()
    if row is None:
        return ChainHead()
    return ChainHead(seq=row.seq, hash=row.hash, recorded_at=row.recorded_at, type=row.type)


async def _fresh(conn: AsyncConnection, entries: Sequence[Entry]) -> list[Entry]:
    """The entries not yet in the chain, first copy of each, in their order."""
    unique: dict[str, Entry] = {}
    for entry in entries:
        unique.setdefault(entry.event_id, entry)
    if not unique:
        return []
    ids = bindparam("ids", list(unique), type_=ARRAY(Text))
    known = set(
        (await conn.execute(select(t.c.event_id).where(t.c.event_id == any_(ids)))).scalars()
    )
    return [e for event_id, e in unique.items() if event_id not in known]


async def append_locked(
    conn: AsyncConnection, head: ChainHead, entries: Sequence[Entry], clock: Clock = utc_now
) -> Appended:
    """Append after head; the caller holds the chain lock and read head under it."""
    fresh = await _fresh(conn, entries)
    records = link(head, fresh, clock())
    if records:
        await _insert(conn, records)
        last = records[-1]
        head = ChainHead(last.seq, last.hash, last.recorded_at, last.type)
    return Appended(records, len(entries) - len(records), head)


async def append(
    conn: AsyncConnection, entries: Sequence[Entry], clock: Clock = utc_now
) -> Appended:
    """Append entries in order, skipping event ids already in the chain (redelivery).

    Runs inside the caller's transaction, which must commit for the records to count.
    """
    await lock_chain(conn)
    return await append_locked(conn, await chain_head(conn), entries, clock)


TimelineKey = tuple[datetime, int]


async def timeline(
    conn: AsyncConnection, subject: str, *, after: TimelineKey | None = None, limit: int = 500
) -> list[AuditRecord]:
    """A subject's records in the order things happened: event time, then chain order.

    Chain order alone is recording order, which across topics follows how the partitions
    were consumed (a claim's access event may be recorded before its submission was).
    """
    query = select(t).where(t.c.subject == subject)
    if after is not None:
        query = query.where(tuple_(t.c.event_time, t.c.seq) > tuple_(*after))
    rows = await conn.execute(query.order_by(t.c.event_time, t.c.seq).limit(limit))
    return [_record(r) for r in rows]


async def hash_at(conn: AsyncConnection, seq: int) -> str | None:
    digest: str | None = await conn.scalar(select(t.c.hash).where(t.c.seq == seq))
    return digest


_CHUNK_SQL = (
    f"SELECT {', '.join(COLUMNS)} FROM {t.name} "  # noqa: S608 - constant identifiers only
    "WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT $3"
)


def _fetched(row: asyncpg.Record) -> AuditRecord:
    values = list(row)
    detail = values[_DETAIL]
    # SQLAlchemy's codec hands jsonb over as text; on the raw connection we parse it.
    values[_DETAIL] = json.loads(detail) if isinstance(detail, str) else detail
    return AuditRecord(*values)


async def records_between(
    conn: AsyncConnection, first_seq: int, last_seq: int, chunk_size: int
) -> AsyncIterator[list[AuditRecord]]:
    """Records first_seq..last_seq in order, chunk by chunk (keyset on the primary key, so
    each chunk is one index range scan however long the chain grows).

    The hot path of verify and export reads through the driver directly: SQLAlchemy's row
    processing would cost a third of the walk.
    """
    driver = await _driver(conn)
    next_seq = first_seq
    while next_seq <= last_seq:
        chunk = [
            _fetched(r) for r in await driver.fetch(_CHUNK_SQL, next_seq, last_seq, chunk_size)
        ]
        if not chunk:
            return
        yield chunk
        next_seq = chunk[-1].seq + 1


async def first_seq_from(conn: AsyncConnection, moment: datetime) -> int | None:
    """The first seq recorded at or after moment (one index probe: recorded_at never
    decreases along the chain, so time order and sequence order agree)."""
    found: int | None = await conn.scalar(
        select(t.c.seq).where(t.c.recorded_at >= moment).order_by(t.c.recorded_at, t.c.seq).limit(1)
    )
    return found


async def seq_range(
    conn: AsyncConnection, start: datetime, end: datetime
) -> tuple[int, int] | None:
    """First and last seq recorded in [start, end), or None when nothing was."""
    first = await first_seq_from(conn, start)
    if first is None:
        return None
    after = await first_seq_from(conn, end)
    last = (after - 1) if after is not None else (await chain_head(conn)).seq
    return (first, last) if first <= last else None

"""Recording: every consumed Kafka record becomes an audit Entry, appended to the chain.

A batch is appended in one transaction, committed before the consumer commits its offsets.

Every CloudEvent is taken, whatever its type (the envelope was checked, the data was not), and
so are tombstones. What an Entry keeps of an event: its id, type, source, subject (the claim
id), the actor where the type has one, the trace id of the record's traceparent header, the
event time, where it was read (topic, partition, offset) and a digest of its data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from opentelemetry import trace
from opentelemetry.trace import StatusCode
from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_audit.adapters import store
from claimflow_audit.domain.canonical import NotCanonicalizableError, as_utc, payload_digest
from claimflow_audit.domain.chain import Entry
from claimflow_audit.domain.traceparent import trace_id_from_headers
from claimflow_audit.metrics import (
    APPEND_BATCH_SIZE,
    APPEND_DURATION,
    CHAIN_LENGTH,
    DUPLICATES_SKIPPED,
    RECORDS_APPENDED,
)
from claimflow_shared.events.envelope import UncheckedData
from claimflow_shared.kafka.consumer import Consumed, ConsumedEvent, UnprocessableEvent
from claimflow_shared.kafka.spans import start_process_span

log = logging.getLogger(__name__)

TOMBSTONE_TYPE = "io.claimflow.kafka.tombstone"

# Who acted, by event type without its version suffix, so a v2 with the same field still
# names its actor. Types not listed (and system events such as adjudication) have none.
ACTOR_FIELDS = {
    "io.claimflow.claim.submitted": "submitted_by",
    "io.claimflow.audit.access": "principal",
}

# Bounds that keep one record within PostgreSQL's index limits; a larger value could never
# be stored, so it is dead-lettered instead of retried for ever.
MAX_ID = 512
MAX_TEXT = 1024


def _family(event_type: str) -> str:
    head, _, version = event_type.rpartition(".")
    return head if head and version.startswith("v") and version[1:].isdigit() else event_type


def _data(consumed: ConsumedEvent) -> tuple[JsonValue, str | None]:
    data = consumed.event.data
    if isinstance(data, UncheckedData):
        return data.value, data.data_base64
    # A consumer built with the strict decoder hands validated models: hash their JSON form.
    value: JsonValue = data.model_dump(mode="json")
    return value, None


def _actor(event_type: str, value: JsonValue) -> str | None:
    name = ACTOR_FIELDS.get(_family(event_type))
    if name is None or not isinstance(value, dict):
        return None
    actor = value.get(name)
    return actor if isinstance(actor, str) and actor else None


def _ms(moment: datetime | None) -> str:
    return "" if moment is None else str(int(moment.timestamp() * 1000))


def entry_for(consumed: Consumed) -> Entry:
    """The Entry of one consumed record; UnprocessableEvent when it can never be stored."""
    trace_id = trace_id_from_headers(consumed.headers)
    if isinstance(consumed, ConsumedEvent):
        event = consumed.event
        value, data_base64 = _data(consumed)
        try:
            digest = payload_digest(value, data_base64)
        except NotCanonicalizableError as exc:
            raise UnprocessableEvent(
                consumed, f"event data has no canonical JSON form (RFC 8785): {exc}"
            ) from exc
        entry = Entry(
            event_id=event.id,
            type=event.type,
            source=event.source,
            subject=event.subject or consumed.key,
            actor=_actor(event.type, value),
            trace_id=trace_id,
            event_time=as_utc(event.time),
            topic=consumed.topic,
            kafka_partition=consumed.partition,
            kafka_offset=consumed.offset,
            payload_digest=digest,
        )
    else:
        # A tombstone has no id of its own; its place in the log is unique (the timestamp
        # tells a recreated topic's offsets apart), and stable across redelivery.
        entry = Entry(
            event_id=(
                f"tombstone:{consumed.topic}:{consumed.partition}:{consumed.offset}"
                f":{_ms(consumed.timestamp)}"
            ),
            type=TOMBSTONE_TYPE,
            subject=consumed.key,
            trace_id=trace_id,
            event_time=consumed.timestamp or datetime.now(UTC),
            topic=consumed.topic,
            kafka_partition=consumed.partition,
            kafka_offset=consumed.offset,
        )
    problem = storable(entry)
    if problem is not None:
        raise UnprocessableEvent(consumed, problem)
    return entry


def storable(entry: Entry) -> str | None:
    """Why PostgreSQL could never store this entry, or None when it can."""
    bounded = {
        "id": (entry.event_id, MAX_ID),
        "type": (entry.type, MAX_ID),
        "subject": (entry.subject, MAX_ID),
        "actor": (entry.actor, MAX_ID),
        "source": (entry.source, MAX_TEXT),
    }
    for name, (value, limit) in bounded.items():
        if value is None:
            continue
        if len(value) > limit:
            return f"event {name} is longer than {limit} characters"
        # PostgreSQL text cannot hold NUL, and a lone surrogate is no UTF-8.
        if "\x00" in value or _unencodable(value):
            return f"event {name} holds characters PostgreSQL cannot store"
    return None


def _unencodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _kind(consumed: Consumed) -> str:
    return "event" if isinstance(consumed, ConsumedEvent) else "tombstone"


async def record_batch(engine: AsyncEngine, batch: Sequence[Consumed]) -> None:
    """Append the batch's records to the chain in one transaction (redeliveries skipped)."""
    # Raises UnprocessableEvent for a record that could never be stored; the consumer
    # dead-letters it and calls again with the rest.
    entries = [entry_for(consumed) for consumed in batch]
    # One processing span per record, each a child of that record's producer span, so
    # the audit step shows in every claim's trace; they cover the shared transaction.
    spans = [start_process_span(c) for c in batch]
    started = time.perf_counter()
    try:
        async with engine.begin() as conn:
            appended = await store.append(conn, entries)
    except Exception as exc:
        for span in spans:
            span.set_status(StatusCode.ERROR, type(exc).__name__)
        raise
    finally:
        for span in spans:
            span.end()
    for span, consumed, entry in zip(spans, batch, entries, strict=True):
        # Under each record's span, so the line carries that claim's trace id.
        with trace.use_span(span):
            log.info("audited %s of %s from %s", entry.event_id, entry.subject, consumed.topic)
    APPEND_DURATION.observe(time.perf_counter() - started)
    APPEND_BATCH_SIZE.observe(len(appended.records))
    origin = {e.event_id: (_kind(c), c.topic) for c, e in zip(batch, entries, strict=True)}
    for record in appended.records:
        RECORDS_APPENDED.labels(*origin[record.event_id]).inc()
    if appended.duplicates:
        DUPLICATES_SKIPPED.inc(appended.duplicates)
    CHAIN_LENGTH.set(appended.head.seq)

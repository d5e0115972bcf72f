"""An at-least-once consumer: poll on a thread, handle a batch on the event loop, commit last.

Dead-letter policy, explicit: bytes that do not decode to a known event, and events a handler
declares unprocessable, go to the dead-letter topic with the reason and are committed past.
Every other failure (database down, broker hiccup) is retried from the same offset with
backoff, so an outage never turns good events into dead letters.

Two opt-ins serve consumers that must take in everything on their topics (the audit log):
`decoder=decode_envelope` accepts any CloudEvent, known type or not, with its data unchecked;
`tombstones=True` hands records without a value (deletions on compacted topics) to the
handler as ConsumedTombstone, in offset order with the events, instead of dead-lettering them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, overload

from kafka import KafkaConsumer
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from opentelemetry.context import Context
from prometheus_client import Counter, Gauge

from claimflow_shared.events import CloudEvent, EventDecodeError, decode_event
from claimflow_shared.events.catalog import EventData
from claimflow_shared.settings import ServiceSettings

from .producer import OutgoingMessage, Publisher
from .tracing import carrier_from, extract_context

log = logging.getLogger(__name__)

EVENTS_CONSUMED = Counter(
    "claimflow_events_consumed_total",
    "Kafka messages consumed, by outcome (processed, dead_lettered)",
    ["service", "group", "topic", "outcome"],
)
CONSUMER_LAG = Gauge(
    "claimflow_consumer_lag",
    "Messages between the partition's high watermark and this group's position",
    ["service", "group", "topic", "partition"],
)
HANDLER_FAILURES = Counter(
    "claimflow_consumer_handler_failures_total",
    "Batches whose handler failed and will be retried",
    ["service", "group", "topic"],
)

MAX_BACKOFF_SECONDS = 30.0

# kafka-python ships no type information; its ConsumerRecord is a namedtuple.
Record = Any
RecordHeaders = tuple[tuple[str, bytes], ...]
EventDecoder = Callable[[bytes | None], CloudEvent[EventData]]


@dataclass(frozen=True)
class ConsumedEvent:
    event: CloudEvent[EventData]
    topic: str
    partition: int
    offset: int
    key: str | None
    parent: Context
    headers: RecordHeaders = ()
    # The record's Kafka timestamp (producer create time unless the topic says log-append).
    timestamp: datetime | None = None


@dataclass(frozen=True)
class ConsumedTombstone:
    """A record with a key and no value: on a compacted topic, "forget this key"."""

    topic: str
    partition: int
    offset: int
    key: str | None
    parent: Context
    headers: RecordHeaders = ()
    timestamp: datetime | None = None


Consumed = ConsumedEvent | ConsumedTombstone


class UnprocessableEvent(Exception):  # noqa: N818 - reads as what it carries
    """Raised by a handler for an event that can never succeed; it is dead-lettered."""

    def __init__(self, event: Consumed, reason: str) -> None:
        super().__init__(reason)
        self.consumed = event
        self.reason = reason


BatchHandler = Callable[[Sequence[ConsumedEvent]], Coroutine[Any, Any, None]]
# For consumers that opted in to tombstones: events and tombstones, in offset order.
RecordBatchHandler = Callable[[Sequence[Consumed]], Coroutine[Any, Any, None]]


class EventConsumer:
    @overload
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        group_id: str,
        topics: Sequence[str],
        handler: BatchHandler,
        loop: asyncio.AbstractEventLoop,
        dead_letters: Publisher,
        decoder: EventDecoder = ...,
        tombstones: Literal[False] = ...,
    ) -> None: ...

    @overload
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        group_id: str,
        topics: Sequence[str],
        handler: RecordBatchHandler,
        loop: asyncio.AbstractEventLoop,
        dead_letters: Publisher,
        decoder: EventDecoder = ...,
        tombstones: Literal[True],
    ) -> None: ...

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        group_id: str,
        topics: Sequence[str],
        handler: BatchHandler | RecordBatchHandler,
        loop: asyncio.AbstractEventLoop,
        dead_letters: Publisher,
        decoder: EventDecoder = decode_event,
        tombstones: bool = False,
    ) -> None:
        """`decoder` turns a record's value into a CloudEvent or raises EventDecodeError
        (dead-lettered); the strict default accepts only catalog types with valid data.
        With `tombstones`, the handler also receives ConsumedTombstone items."""
        self._settings = settings
        self.group_id = group_id
        self.topics = list(topics)
        # The overloads tie the handler's item type to `tombstones`; inside, either is fine.
        self._handler: Callable[[Sequence[Any]], Coroutine[Any, Any, None]] = handler
        self._decoder = decoder
        self._tombstones = tombstones
        self._loop = loop
        self._dead_letters = dead_letters
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"consumer-{group_id}", daemon=True)
        self._consumer: KafkaConsumer | None = None
        self.last_poll = 0.0
        self.failed: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 30)

    def alive(self) -> bool:
        return self._thread.is_alive() and time.monotonic() - self.last_poll < 60

    async def check_running(self) -> None:
        """Readiness: the polling thread is alive and polled recently."""
        if not self.alive():
            raise RuntimeError("consumer stopped")

    def connected(self) -> bool:
        return self._consumer is not None and bool(self._consumer.bootstrap_connected())

    def _run(self) -> None:
        try:
            self._consumer = KafkaConsumer(
                *self.topics,
                bootstrap_servers=self._settings.kafka_bootstrap_servers.split(","),
                client_id=f"{self._settings.service_name}-{self.group_id}",
                group_id=self.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=self._settings.kafka_max_poll_records,
                isolation_level="read_committed",
                fetch_min_bytes=self._settings.kafka_fetch_min_bytes,
                fetch_max_wait_ms=self._settings.kafka_fetch_max_wait_ms,
            )
            while not self._stop.is_set():
                self.last_poll = time.monotonic()
                batches = self._consumer.poll(timeout_ms=500)
                for tp, records in batches.items():
                    if self._stop.is_set():
                        break
                    self._process(self._consumer, tp, records)
        except BaseException as exc:
            self.failed = exc
            log.exception("consumer %s stopped on %s", self.group_id, type(exc).__name__)
            raise
        finally:
            if self._consumer is not None:
                self._consumer.close(autocommit=False)

    def _decode(
        self, tp: TopicPartition, records: Sequence[Record]
    ) -> tuple[list[Consumed], list[tuple[Record, str]]]:
        good: list[Consumed] = []
        poison: list[tuple[Record, str]] = []
        for record in records:
            key = record.key.decode("utf-8", "replace") if record.key else None
            headers: RecordHeaders = tuple((k, v or b"") for k, v in record.headers or ())
            parent = extract_context(carrier_from(headers))
            timestamp = _record_time(record)
            if record.value is None and self._tombstones:
                good.append(
                    ConsumedTombstone(
                        tp.topic, tp.partition, record.offset, key, parent, headers, timestamp
                    )
                )
                continue
            try:
                event = self._decoder(record.value)
            except EventDecodeError as exc:
                poison.append((record, str(exc)))
                continue
            good.append(
                ConsumedEvent(
                    event, tp.topic, tp.partition, record.offset, key, parent, headers, timestamp
                )
            )
        return good, poison

    def _process(
        self, consumer: KafkaConsumer, tp: TopicPartition, records: Sequence[Record]
    ) -> None:
        good, poison = self._decode(tp, records)
        attempt = 0
        while True:
            try:
                if good:
                    asyncio.run_coroutine_threadsafe(self._handler(good), self._loop).result()
                break
            except UnprocessableEvent as exc:
                good = [e for e in good if e is not exc.consumed]
                poison.append((_record_of(records, exc.consumed.offset), exc.reason))
            except Exception as exc:  # noqa: BLE001 - transient by policy; retried below
                attempt += 1
                HANDLER_FAILURES.labels(self._settings.service_name, self.group_id, tp.topic).inc()
                delay = min(MAX_BACKOFF_SECONDS, 0.2 * 2**attempt)
                log.warning(
                    "handler for %s failed (%s), attempt %d, retrying in %.1fs",
                    tp.topic,
                    type(exc).__name__,
                    attempt,
                    delay,
                )
                if self._stop.wait(delay):
                    # Shutting down: leave the offset uncommitted so the batch is redelivered.
                    consumer.seek(tp, records[0].offset)
                    return
        if poison:
            self._dead_letter(tp, poison)
        self._commit(consumer, tp, records[-1].offset + 1)
        service = self._settings.service_name
        EVENTS_CONSUMED.labels(service, self.group_id, tp.topic, "processed").inc(len(good))
        if poison:
            EVENTS_CONSUMED.labels(service, self.group_id, tp.topic, "dead_lettered").inc(
                len(poison)
            )
        highwater = consumer.highwater(tp)
        if highwater is not None:
            lag = max(0, highwater - (records[-1].offset + 1))
            CONSUMER_LAG.labels(service, self.group_id, tp.topic, str(tp.partition)).set(lag)

    def _commit(self, consumer: KafkaConsumer, tp: TopicPartition, offset: int) -> None:
        try:
            consumer.commit({tp: OffsetAndMetadata(offset, "", -1)})
        except (CommitFailedError, KafkaError) as exc:
            # The partition moved to another member; it will redeliver and our handler is
            # idempotent, so losing this commit costs only repeated work.
            log.warning("offset commit for %s failed: %s", tp.topic, type(exc).__name__)

    def _dead_letter(self, tp: TopicPartition, poison: Sequence[tuple[Record, str]]) -> None:
        now = datetime.now(UTC).isoformat().encode()
        messages = []
        for record, reason in poison:
            headers = [(k, v) for k, v in record.headers or ()]
            headers += [
                ("dlq.reason", reason.encode()),
                ("dlq.source.topic", tp.topic.encode()),
                ("dlq.source.partition", str(tp.partition).encode()),
                ("dlq.source.offset", str(record.offset).encode()),
                ("dlq.consumer.group", self.group_id.encode()),
                ("dlq.time", now),
            ]
            key = record.key.decode("utf-8", "replace") if record.key else None
            messages.append(
                OutgoingMessage(self._settings.dead_letter_topic, key, record.value or b"", headers)
            )
            log.warning("dead-lettered %s offset %d: %s", tp.topic, record.offset, reason)
        self._dead_letters.publish(messages)


def _record_of(records: Sequence[Record], offset: int) -> Record:
    return next(r for r in records if r.offset == offset)


def _record_time(record: Record) -> datetime | None:
    # Kafka reports -1 when the producer set no timestamp (pre-0.10 message format).
    millis = getattr(record, "timestamp", None)
    if not isinstance(millis, int) or millis < 0:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC)

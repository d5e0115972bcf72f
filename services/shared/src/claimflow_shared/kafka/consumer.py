"""An at-least-once consumer: poll on a thread, handle a batch on the event loop, commit last.

Dead-letter policy, explicit: bytes that do not decode to a known event, and events a handler
declares unprocessable, go to the dead-letter topic with the reason and are committed past.
Every other failure (database down, broker hiccup, a handler that times out, a dead letter
that cannot be published) is retried from the same offset with backoff, so an outage never
turns good events into dead letters.

Guardrails, so that a consumer either makes progress or says it cannot:
- A failing partition is paused and retried later while the loop keeps polling: a long
  outage never holds the poll loop past `max.poll.interval.ms` (which would cost the group
  membership), and the other partitions keep flowing.
- Errors from the client itself (the broker away, the coordinator moving) are retried in the
  loop; the polling thread never ends on them.
- More dead letters in a window than the budget allows halts the consumer instead of
  dead-lettering a whole topic after a bad deploy.
- `health()` reports a dead thread, a halt, a stuck loop, or lag without progress, for the
  worker's liveness probe.

Two opt-ins serve consumers that must take in everything on their topics (the audit log):
`decoder=decode_envelope` accepts any CloudEvent, known type or not, with its data unchecked;
`tombstones=True` hands records without a value (deletions on compacted topics) to the
handler as ConsumedTombstone, in offset order with the events, instead of dead-lettering them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, overload

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.errors import CommitFailedError, IllegalStateError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from opentelemetry.context import Context
from prometheus_client import Counter, Gauge

from claimflow_shared.events import CloudEvent, EventDecodeError, decode_event
from claimflow_shared.events.catalog import TOPIC_TYPES, EventData
from claimflow_shared.settings import ServiceSettings

from .connection import connection_config
from .consumer_health import DeadLetterBudget, ProgressTracker, Verdict
from .producer import OutgoingMessage, Publisher
from .rejoin_fix import apply as apply_rejoin_fix
from .tracing import carrier_from, extract_context

log = logging.getLogger(__name__)

# Every group member of the services is an EventConsumer: the client's rebalance fix is in
# place before the first one joins.
apply_rejoin_fix()

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
POLL_FAILURES = Counter(
    "claimflow_consumer_poll_failures_total",
    "Polls the Kafka client failed (broker or coordinator unavailable), retried",
    ["service", "group"],
)
CONSUMER_STATE = Gauge(
    "claimflow_consumer_state",
    "1 for the consumer's current state (running, stalled, stuck, halted, dead), else 0",
    ["service", "group", "state"],
)
STATES = ("running", "stalled", "stuck", "halted", "dead")

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


class HandlerTimeoutError(TimeoutError):
    """The handler did not finish within its time; the batch is retried."""


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
        any_type_on_any_topic: bool = ...,
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
        any_type_on_any_topic: bool = ...,
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
        any_type_on_any_topic: bool = False,
    ) -> None:
        """`decoder` turns a record's value into a CloudEvent or raises EventDecodeError
        (dead-lettered); the strict default accepts only catalog types with valid data.
        With `tombstones`, the handler also receives ConsumedTombstone items. An event whose
        type is not its catalog topic's is dead-lettered too, unless `any_type_on_any_topic`
        (for a consumer that records events rather than acts on them)."""
        self._settings = settings
        self.group_id = group_id
        self.topics = list(topics)
        # The overloads tie the handler's item type to `tombstones`; inside, either is fine.
        self._handler: Callable[[Sequence[Any]], Coroutine[Any, Any, None]] = handler
        self._decoder = decoder
        self._tombstones = tombstones
        self._topic_types = (
            {} if any_type_on_any_topic else {settings.topic(t): k for t, k in TOPIC_TYPES.items()}
        )
        self._loop = loop
        self._dead_letters = dead_letters
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"consumer-{group_id}", daemon=True)
        self._consumer: KafkaConsumer | None = None
        self._progress = ProgressTracker(settings.kafka_consumer_stall_seconds)
        self._budget = DeadLetterBudget(
            settings.kafka_dead_letter_limit, settings.kafka_dead_letter_window_seconds
        )
        # Partitions paused after a failed batch: when to retry, and how many tries so far.
        self._retry_at: dict[TopicPartition, float] = {}
        self._attempts: dict[TopicPartition, int] = {}
        self.failed: BaseException | None = None
        self.health()

    def start(self) -> None:
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 30)

    def health(self) -> Verdict:
        """Alive, not halted, looping, and getting through its lag; also sets the state gauge."""
        alive = self._thread.is_alive() or not self._thread.ident
        verdict = self._progress.verdict(alive, self.failed)
        self._report(verdict)
        return verdict

    def assigned(self) -> frozenset[TopicPartition]:
        """The partitions this member owns now (empty before it joined its group)."""
        consumer = self._consumer
        return frozenset(consumer.assignment()) if consumer is not None else frozenset()

    def _report(self, verdict: Verdict) -> None:
        for state in STATES:
            CONSUMER_STATE.labels(self._settings.service_name, self.group_id, state).set(
                1 if state == verdict.state else 0
            )

    # -- the polling thread -------------------------------------------------------------

    def _run(self) -> None:
        try:
            consumer = self._connect()
            if consumer is None:
                return
            failures = 0
            while not self._stop.is_set() and self._progress.halted is None:
                self._progress.looped()
                self._resume_due(consumer)
                try:
                    batches = consumer.poll(timeout_ms=self._poll_timeout_ms())
                    failures = 0
                except KafkaError as exc:
                    # The broker restarting or the coordinator moving: the client recovers
                    # on a later poll, so this thread must outlive it.
                    failures += 1
                    POLL_FAILURES.labels(self._settings.service_name, self.group_id).inc()
                    delay = _backoff(failures, self._settings.kafka_retry_backoff_max_seconds)
                    log.warning(
                        "consumer %s poll failed (%s); polling again in %.1fs",
                        self.group_id,
                        type(exc).__name__,
                        delay,
                    )
                    self._stop.wait(delay)
                    continue
                for tp, records in batches.items():
                    if self._stop.is_set() or self._progress.halted is not None:
                        break
                    if tp in self._retry_at:
                        continue  # paused after an earlier batch in this poll; refetched later
                    self._process(consumer, tp, records)
                self._measure_lag(consumer)
        except BaseException as exc:
            self.failed = exc
            log.exception("consumer %s stopped on %s", self.group_id, type(exc).__name__)
        finally:
            if self._consumer is not None:
                try:
                    self._consumer.close(autocommit=False)
                except Exception as exc:  # noqa: BLE001 - closing; nothing left to protect
                    log.warning("consumer %s close failed: %s", self.group_id, type(exc).__name__)

    def _connect(self) -> KafkaConsumer | None:
        """The client, once a broker answers; None when stopped first."""
        s = self._settings
        attempt = 0
        while not self._stop.is_set():
            try:
                consumer = KafkaConsumer(
                    **connection_config(s),
                    client_id=f"{s.service_name}-{self.group_id}",
                    group_id=self.group_id,
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",
                    max_poll_records=s.kafka_max_poll_records,
                    max_poll_interval_ms=s.kafka_max_poll_interval_ms,
                    session_timeout_ms=s.kafka_session_timeout_ms,
                    heartbeat_interval_ms=s.kafka_heartbeat_interval_ms,
                    isolation_level="read_committed",
                    fetch_min_bytes=s.kafka_fetch_min_bytes,
                    fetch_max_wait_ms=s.kafka_fetch_max_wait_ms,
                )
            except KafkaError as exc:
                attempt += 1
                self._progress.looped()
                delay = _backoff(attempt, s.kafka_retry_backoff_max_seconds)
                log.warning(
                    "consumer %s cannot reach Kafka (%s); trying again in %.1fs",
                    self.group_id,
                    type(exc).__name__,
                    delay,
                )
                self._stop.wait(delay)
                continue
            # Held at once, so whatever ends this thread from here on closes the client
            # (and its I/O thread) in _run's finally.
            self._consumer = consumer
            consumer.subscribe(self.topics, listener=_Rebalance(self, consumer))
            return consumer
        return None

    def _poll_timeout_ms(self) -> int:
        if not self._retry_at:
            return 500
        wait = min(self._retry_at.values()) - time.monotonic()
        return max(10, min(500, int(wait * 1000)))

    def _resume_due(self, consumer: KafkaConsumer) -> None:
        now = time.monotonic()
        for tp, due in list(self._retry_at.items()):
            if due <= now:
                del self._retry_at[tp]
                with contextlib.suppress(KeyError, IllegalStateError):
                    # No longer ours: the new owner reads it from the committed offset.
                    consumer.resume(tp)

    def _retry_later(
        self, consumer: KafkaConsumer, tp: TopicPartition, offset: int, exc: BaseException
    ) -> None:
        """Rewind the partition to the failed batch and pause it; the loop keeps polling."""
        attempt = self._attempts.get(tp, 0) + 1
        self._attempts[tp] = attempt
        HANDLER_FAILURES.labels(self._settings.service_name, self.group_id, tp.topic).inc()
        delay = _backoff(attempt, self._settings.kafka_retry_backoff_max_seconds)
        log.warning(
            "batch of %s[%d] failed (%s), attempt %d, retrying in %.1fs",
            tp.topic,
            tp.partition,
            type(exc).__name__,
            attempt,
            delay,
        )
        consumer.seek(tp, offset)
        consumer.pause(tp)
        self._retry_at[tp] = time.monotonic() + delay

    def forget(self, partitions: Sequence[TopicPartition]) -> None:
        """Partitions this member no longer owns: their retries are the new owner's."""
        for tp in partitions:
            self._retry_at.pop(tp, None)
            self._attempts.pop(tp, None)
            self._progress.forget(tp.topic, tp.partition)

    def _process(
        self, consumer: KafkaConsumer, tp: TopicPartition, records: Sequence[Record]
    ) -> None:
        good, poison = self._decode(tp, records)
        try:
            good = self._handle(good, poison, records)
            if poison:
                if not self._budget.allows(len(poison)):
                    self._halt(consumer, tp, records[0].offset)
                    return
                self._dead_letter(tp, poison)
                self._budget.spend(len(poison))
        except Exception as exc:  # noqa: BLE001 - transient by policy; retried from the batch
            self._retry_later(consumer, tp, records[0].offset, exc)
            return
        self._attempts.pop(tp, None)
        self._commit(consumer, tp, records[-1].offset + 1)
        self._progress.progressed()
        service = self._settings.service_name
        EVENTS_CONSUMED.labels(service, self.group_id, tp.topic, "processed").inc(len(good))
        if poison:
            EVENTS_CONSUMED.labels(service, self.group_id, tp.topic, "dead_lettered").inc(
                len(poison)
            )

    def _handle(
        self, good: list[Consumed], poison: list[tuple[Record, str]], records: Sequence[Record]
    ) -> list[Consumed]:
        """Runs the handler until it accepts what is left; returns what it processed."""
        while good:
            try:
                self._call_handler(good)
            except UnprocessableEvent as exc:
                good = [e for e in good if e is not exc.consumed]
                poison.append((_record_of(records, exc.consumed.offset), exc.reason))
            else:
                break
        return good

    def _call_handler(self, batch: Sequence[Consumed]) -> None:
        future = asyncio.run_coroutine_threadsafe(self._handler(batch), self._loop)
        timeout = self._settings.kafka_handler_timeout_seconds
        try:
            future.result(timeout)
        except TimeoutError as exc:
            # Cancelled on the loop: its transaction rolls back, and the batch is retried.
            if not future.cancel():
                future.result(0)  # it finished just as the wait ended: that outcome stands
                return
            raise HandlerTimeoutError(f"handler took longer than {timeout:.0f}s") from exc

    def _halt(self, consumer: KafkaConsumer, tp: TopicPartition, offset: int) -> None:
        reason = f"halted: {self._budget.describe()} ({tp.topic})"
        log.error("consumer %s %s; not dead-lettering more", self.group_id, reason)
        consumer.seek(tp, offset)
        self._progress.halt(reason)

    def _measure_lag(self, consumer: KafkaConsumer) -> None:
        service = self._settings.service_name
        for tp in consumer.assignment():
            try:
                highwater = consumer.highwater(tp)
                # position() would block on the coordinator; the client's own record does not.
                position = consumer._subscription.assignment[tp].position
            except (IllegalStateError, KeyError):
                continue  # revoked between assignment() and here
            if highwater is None or position is None:
                continue
            # A paused partition was rewound to its failed batch: its lag counts from there.
            lag = max(0, highwater - position.offset)
            self._progress.set_lag(tp.topic, tp.partition, lag)
            CONSUMER_LAG.labels(service, self.group_id, tp.topic, str(tp.partition)).set(lag)

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
            expected = self._topic_types.get(tp.topic)
            if expected is not None and event.type != expected:
                poison.append((record, f"event type {event.type} does not belong on {tp.topic}"))
                continue
            good.append(
                ConsumedEvent(
                    event, tp.topic, tp.partition, record.offset, key, parent, headers, timestamp
                )
            )
        return good, poison

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
        # Raises when Kafka does not take them: the batch is retried, never committed past.
        self._dead_letters.publish(messages)
        for record, reason in poison:
            log.warning("dead-lettered %s offset %d: %s", tp.topic, record.offset, reason)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: EventConsumer, consumer: KafkaConsumer) -> None:
        self._owner = owner
        self._consumer = consumer

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        self._owner.forget(list(revoked))

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        # kafka-python keeps a partition's state, its pause included, when a rebalance gives
        # it back to the member that held it; its retry was forgotten on revocation, so
        # nothing would ever resume it. It is resumed here, at the failed batch it was
        # rewound to: the retry comes now instead of after its backoff.
        paused = self._consumer.paused()
        for tp in assigned:
            if tp in paused:
                self._consumer.resume(tp)


def _backoff(attempt: int, ceiling: float) -> float:
    return float(min(ceiling, 0.2 * 2**attempt))


def _record_of(records: Sequence[Record], offset: int) -> Record:
    return next(r for r in records if r.offset == offset)


def _record_time(record: Record) -> datetime | None:
    # Kafka reports -1 when the producer set no timestamp (pre-0.10 message format).
    millis = getattr(record, "timestamp", None)
    if not isinstance(millis, int) or millis < 0:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC)

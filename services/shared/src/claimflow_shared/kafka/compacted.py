"""Reading a compacted topic as a table: the latest value per key, a null value deletes the key.

Every process replays the whole topic from the beginning (no consumer group: each one needs
all partitions and all keys), reports when it has caught up with the end offsets it saw at
start, and then keeps following the topic for changes. Configuration topics are small, so the
full replay is the simple and correct choice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from claimflow_shared.settings import ServiceSettings

from .connection import connection_config

log = logging.getLogger(__name__)

# (key, value or None for a tombstone); called on the reader's thread, in topic order per key.
ChangeHandler = Callable[[str, bytes | None], None]

PARTITION_WAIT_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0


class CompactedTopicReader:
    def __init__(
        self,
        settings: ServiceSettings,
        topic: str,
        on_change: ChangeHandler,
        *,
        client_id: str | None = None,
    ) -> None:
        self._settings = settings
        self.topic = topic
        self._on_change = on_change
        self._client_id = client_id or f"{settings.service_name}-{topic}-reader"
        self._stop = threading.Event()
        self._caught_up = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"reader-{topic}", daemon=True)
        self._latest: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.last_poll = 0.0
        self.failed: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 30)

    @property
    def caught_up(self) -> bool:
        return self._caught_up.is_set()

    async def wait_caught_up(self, seconds: float) -> bool:
        """True once everything that was in the topic at start has been applied."""
        return await asyncio.to_thread(self._caught_up.wait, seconds)

    def alive(self) -> bool:
        return self._thread.is_alive() and time.monotonic() - self.last_poll < 60

    def snapshot(self) -> dict[str, bytes]:
        with self._lock:
            return dict(self._latest)

    def _partitions(self, consumer: KafkaConsumer) -> list[TopicPartition]:
        while not self._stop.is_set():
            self.last_poll = time.monotonic()
            partitions = consumer.partitions_for_topic(self.topic)
            if partitions:
                return [TopicPartition(self.topic, p) for p in sorted(partitions)]
            # The topic may not exist yet: whoever owns it creates it; until then, nothing to read.
            self._stop.wait(PARTITION_WAIT_SECONDS)
        return []

    def _run(self) -> None:
        attempt = 0
        try:
            while not self._stop.is_set():
                try:
                    self._follow()
                except KafkaError as exc:
                    # The broker is away: start over (a full replay, values are idempotent)
                    # once it is back, instead of leaving the table frozen for good.
                    attempt += 1
                    delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2**attempt)
                    log.warning(
                        "reader of %s lost Kafka (%s); retrying in %.0fs",
                        self.topic,
                        type(exc).__name__,
                        delay,
                    )
                    self.last_poll = time.monotonic()
                    self._stop.wait(delay)
                else:
                    return
        except BaseException as exc:
            self.failed = exc
            log.exception("reader of %s stopped on %s", self.topic, type(exc).__name__)
            raise

    def _follow(self) -> None:
        consumer: KafkaConsumer | None = None
        try:
            consumer = KafkaConsumer(
                **connection_config(self._settings),
                client_id=self._client_id,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
                # A compacted topic created by accident would have the broker's defaults
                # (delete after retention): plans would silently expire.
                allow_auto_create_topics=False,
            )
            partitions = self._partitions(consumer)
            if not partitions:
                return
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            end: dict[Any, int] = consumer.end_offsets(partitions)
            pending = {tp for tp in partitions if end.get(tp, 0) > 0}
            if not pending:
                self._caught_up.set()
            while not self._stop.is_set():
                self.last_poll = time.monotonic()
                for tp, records in consumer.poll(timeout_ms=500).items():
                    for record in records:
                        self._apply(record)
                    if tp in pending and consumer.position(tp) >= end[tp]:
                        pending.discard(tp)
                if pending:
                    # A partition whose remaining records were all compacted away or aborted
                    # returns nothing more, yet its position has reached the end.
                    pending = {tp for tp in pending if consumer.position(tp) < end[tp]}
                if not pending and not self._caught_up.is_set():
                    self._caught_up.set()
        finally:
            if consumer is not None:
                consumer.close(autocommit=False)

    def _apply(self, record: Any) -> None:
        if record.key is None:
            log.warning("%s offset %d has no key; skipped", self.topic, record.offset)
            return
        key = record.key.decode("utf-8", "replace")
        with self._lock:
            if record.value is None:
                self._latest.pop(key, None)
            else:
                self._latest[key] = record.value
        try:
            self._on_change(key, record.value)
        except Exception as exc:  # noqa: BLE001 - one bad value must not stop the table
            log.warning(
                "%s offset %d not applied: %s", self.topic, record.offset, type(exc).__name__
            )

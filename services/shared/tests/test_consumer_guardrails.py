"""EventConsumer's guardrails on the real broker: it outlives a broker restart, keeps polling
while a partition is retried, halts past its dead-letter budget, and says when it is dead."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY

from claimflow_devstack.testing import claim_line, eventually, publish, read_topic, submitted
from claimflow_shared.kafka.admin import ensure_topics
from claimflow_shared.kafka.consumer import ConsumedEvent, EventConsumer
from claimflow_shared.kafka.producer import OutgoingMessage, Publisher
from claimflow_shared.settings import ServiceSettings


def _event(topic: str, key: str) -> OutgoingMessage:
    return OutgoingMessage(topic, key, submitted(claim_line()).to_json())


def _key_for(partition: int, partitions: int = 2) -> str:
    """A key the default partitioner (murmur2) puts on `partition`."""
    from kafka.partitioner.default import murmur2  # noqa: PLC0415

    for n in range(1000):
        key = f"k{n}"
        if (murmur2(key.encode()) & 0x7FFFFFFF) % partitions == partition:
            return key
    raise AssertionError("no key found")


def _committed(settings: ServiceSettings, group: str, topic: str) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


class Harness:
    """A consumer of one topic whose handler the test steers."""

    def __init__(self, settings: ServiceSettings, topic: str, group: str) -> None:
        self.settings = settings
        self.topic = topic
        self.group = group
        self.handled: list[ConsumedEvent] = []
        self.calls: Counter[int] = Counter()  # handler calls per partition
        self.failing: set[int] = set()  # partitions whose batches fail for now
        self.publisher = Publisher(settings)
        self.consumer: EventConsumer | None = None

    async def handle(self, batch: Sequence[ConsumedEvent]) -> None:
        partition = batch[0].partition
        self.calls[partition] += 1
        if partition in self.failing:
            raise ConnectionError("database away")
        self.handled.extend(batch)

    def start(self) -> EventConsumer:
        self.consumer = EventConsumer(
            self.settings,
            group_id=self.group,
            topics=[self.topic],
            handler=self.handle,
            loop=asyncio.get_running_loop(),
            dead_letters=self.publisher,
        )
        self.consumer.start()
        return self.consumer

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        self.publisher.close()


@pytest.fixture
async def harness(
    kafka_broker: Any, topic_prefix: str, request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    overrides: dict[str, Any] = getattr(request, "param", {})
    settings = ServiceSettings(
        kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
        kafka_topic_prefix=topic_prefix,
        service_name="guardrails-test",
        kafka_fetch_min_bytes=1,
        kafka_retry_backoff_max_seconds=1.0,
        **overrides,
    )
    topic = settings.topic("guarded")
    await asyncio.to_thread(ensure_topics, settings, [topic], partitions=2)
    harness = Harness(settings, topic, f"guardrails-{topic_prefix}")
    try:
        yield harness
    finally:
        await harness.stop()


def _poll_failures(group: str) -> float:
    value = REGISTRY.get_sample_value(
        "claimflow_consumer_poll_failures_total",
        {"service": "guardrails-test", "group": group},
    )
    return value or 0.0


async def test_consumer_outlives_errors_from_poll(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stall seen under faults: while the broker restarted, poll() raised
    KafkaConnectionError (from the coordinator lookup), the polling thread ended, and the
    worker stayed up consuming nothing. Here poll() raises the same way, twice."""
    real_poll = KafkaConsumer.poll
    raised: list[int] = []

    def flaky_poll(self: KafkaConsumer, *args: Any, **kwargs: Any) -> Any:
        if len(harness.handled) == 1 and len(raised) < 2:
            raised.append(1)
            raise KafkaConnectionError("111 ECONNREFUSED")
        return real_poll(self, *args, **kwargs)

    monkeypatch.setattr(KafkaConsumer, "poll", flaky_poll)
    consumer = harness.start()
    await asyncio.to_thread(publish, harness.settings, [_event(harness.topic, "a")])
    await eventually(lambda: _true(len(raised) == 2), within=60)

    await asyncio.to_thread(publish, harness.settings, [_event(harness.topic, "b")])
    await eventually(lambda: _true(len(harness.handled) == 2), within=60)
    assert _poll_failures(harness.group) == 2
    verdict = consumer.health()
    assert verdict.healthy, verdict.reason


async def test_consumer_carries_on_after_a_broker_restart(
    harness: Harness, kafka_broker: Any
) -> None:
    consumer = harness.start()
    await asyncio.to_thread(publish, harness.settings, [_event(harness.topic, "a")])
    await eventually(lambda: _true(len(harness.handled) == 1), within=60)

    await asyncio.to_thread(kafka_broker.stop)
    try:
        # Down long enough for heartbeats, fetches and the coordinator lookup to fail.
        await asyncio.sleep(5)
    finally:
        await asyncio.to_thread(kafka_broker.restart)

    await asyncio.to_thread(publish, harness.settings, [_event(harness.topic, "b")])
    await eventually(lambda: _true(len(harness.handled) == 2), within=90)
    verdict = consumer.health()
    assert verdict.healthy, verdict.reason


@pytest.mark.parametrize(
    "harness",
    # A poll interval shorter than the time the partition keeps failing: a retry that held
    # the loop would cost the group membership.
    [{"kafka_max_poll_interval_ms": 5000, "kafka_handler_timeout_seconds": 2.0}],
    indirect=True,
)
async def test_a_failing_partition_is_retried_while_the_others_flow(harness: Harness) -> None:
    failing, flowing = _key_for(0), _key_for(1)
    harness.failing.add(0)
    consumer = harness.start()
    await asyncio.to_thread(
        publish, harness.settings, [_event(harness.topic, failing) for _ in range(3)]
    )
    await eventually(lambda: _true(harness.calls[0] >= 2), within=60)

    # Partition 1 is served while partition 0 keeps failing: the loop still polls.
    await asyncio.to_thread(
        publish, harness.settings, [_event(harness.topic, flowing) for _ in range(2)]
    )
    await eventually(lambda: _true(len(harness.handled) == 2), within=60)
    assert {e.partition for e in harness.handled} == {1}
    assert 0 in harness.failing

    # Failing for longer than max.poll.interval.ms, then the database comes back.
    await asyncio.sleep(6)
    harness.failing.clear()
    await eventually(lambda: _true(len(harness.handled) == 5), within=60)
    assert Counter(e.partition for e in harness.handled) == {0: 3, 1: 2}
    await eventually(
        lambda: _true(_committed(harness.settings, harness.group, harness.topic) == {0: 3, 1: 2}),
        within=30,
    )
    assert consumer.health().healthy


async def test_a_partition_paused_for_a_retry_survives_a_rebalance_that_keeps_it(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stall seen under faults: a batch failed while PostgreSQL restarted, its partition was
    paused for a retry, and the coordinator's freeze made the group rebalance. The rebalance gave
    the partition back to the same member, which had forgotten the retry on revocation, while
    kafka-python kept the partition paused: nothing resumed it, and statuses stopped."""
    real_retry_later = EventConsumer._retry_later

    def patient_retry_later(self: EventConsumer, *args: Any) -> None:
        # Retries wait longer than the test, so only the rebalance can bring the partition
        # back. Only the retry: a poll error during the rebalance still backs off briefly.
        real_retry_later(self, *args)
        self._retry_at = dict.fromkeys(self._retry_at, time.monotonic() + 120.0)

    monkeypatch.setattr(EventConsumer, "_retry_later", patient_retry_later)
    harness.failing.update({0, 1})
    consumer = harness.start()
    await asyncio.to_thread(publish, harness.settings, [_event(harness.topic, _key_for(0))])
    await eventually(lambda: _true(harness.calls[0] == 1), within=60)
    harness.failing.clear()

    # Another member joins the group for another topic: the group rebalances, and this member
    # gets its partitions back.
    other_topic = harness.settings.topic("guarded-other")
    await asyncio.to_thread(ensure_topics, harness.settings, [other_topic], partitions=1)
    joined = KafkaConsumer(
        other_topic,
        bootstrap_servers=harness.settings.kafka_bootstrap_servers,
        group_id=harness.group,
    )
    # The member keeps polling like any live member: a rebalance can take several rounds (the
    # leader learns of the new topic's partitions and rejoins), and a member that stopped polling
    # mid-way would hold every round up until the broker's rebalance timeout.
    stop_polling = threading.Event()

    def keep_polling() -> None:
        while not stop_polling.is_set():
            joined.poll(200)

    poller = threading.Thread(target=keep_polling, name="joined-member")
    poller.start()
    try:
        await eventually(lambda: _true(len(harness.handled) == 1), within=30)
    finally:
        stop_polling.set()
        await asyncio.to_thread(poller.join)
        await asyncio.to_thread(joined.close)
    assert consumer.assigned() == {TopicPartition(harness.topic, p) for p in (0, 1)}


@pytest.mark.parametrize(
    "harness",
    [{"kafka_dead_letter_limit": 3, "kafka_dead_letter_window_seconds": 600}],
    indirect=True,
)
async def test_more_dead_letters_than_the_budget_halts_the_consumer(harness: Harness) -> None:
    key = _key_for(0)
    consumer = harness.start()
    garbage = [OutgoingMessage(harness.topic, key, f"garbage {n}".encode()) for n in range(2)]
    await asyncio.to_thread(publish, harness.settings, garbage)
    dead = await asyncio.to_thread(
        read_topic, harness.settings.kafka_bootstrap_servers, harness.settings.dead_letter_topic, 2
    )
    assert len(dead) == 2
    await eventually(
        lambda: _true(_committed(harness.settings, harness.group, harness.topic).get(0) == 2),
        within=30,
    )

    more = [OutgoingMessage(harness.topic, key, f"garbage {n}".encode()) for n in range(2, 4)]
    await asyncio.to_thread(publish, harness.settings, more)
    await eventually(lambda: _true(not consumer.health().healthy), within=60)
    verdict = consumer.health()
    assert verdict.state == "halted"
    assert "dead letters" in verdict.reason
    # Nothing past the budget was dead-lettered or committed past.
    dead = await asyncio.to_thread(
        read_topic,
        harness.settings.kafka_bootstrap_servers,
        harness.settings.dead_letter_topic,
        3,
        5.0,
    )
    assert len(dead) == 2
    assert _committed(harness.settings, harness.group, harness.topic).get(0) == 2


async def _true(value: bool) -> bool:
    return value

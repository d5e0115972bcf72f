"""The session Kafka is a real broker: messages round-trip and topics survive a restart."""

from __future__ import annotations

import re

from kafka import KafkaConsumer, KafkaProducer

from claimflow_devstack.kafka import KafkaBroker


def _consume(bootstrap: str, topic: str, count: int) -> list[tuple[bytes | None, bytes]]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}.reader",
        auto_offset_reset="earliest",
        consumer_timeout_ms=20_000,
    )
    try:
        received = []
        for message in consumer:
            received.append((message.key, message.value))
            if len(received) == count:
                break
        return received
    finally:
        consumer.close()


def _produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value).get(timeout=30)
    finally:
        producer.close()


def test_topic_prefix_is_unique_and_dotted(topic_prefix: str) -> None:
    assert re.fullmatch(r"t[0-9a-f]{8}\.", topic_prefix)


def test_produced_message_is_consumed_back(kafka_broker: KafkaBroker, topic_prefix: str) -> None:
    topic = f"{topic_prefix}roundtrip"
    kafka_broker.create_topics([topic], partitions=1)
    _produce(kafka_broker.bootstrap_servers, topic, [(b"claim-1", b'{"hello": "kafka"}')])

    assert _consume(kafka_broker.bootstrap_servers, topic, 1) == [
        (b"claim-1", b'{"hello": "kafka"}')
    ]


def test_create_topics_ignores_existing(kafka_broker: KafkaBroker, topic_prefix: str) -> None:
    names = [f"{topic_prefix}a", f"{topic_prefix}b"]
    kafka_broker.create_topics(names, config={"retention.ms": "3600000"})
    kafka_broker.create_topics(names)
    with kafka_broker.admin() as admin:
        described = {t["name"]: t for t in admin.describe_topics(names)}
    assert {name: len(described[name]["partitions"]) for name in names} == dict.fromkeys(names, 3)


def test_restart_keeps_topic_and_messages(kafka_broker: KafkaBroker, topic_prefix: str) -> None:
    topic = f"{topic_prefix}durable"
    kafka_broker.create_topics([topic], partitions=1)
    _produce(kafka_broker.bootstrap_servers, topic, [(b"k", b"before restart")])
    old_pid, old_bootstrap = kafka_broker.pid, kafka_broker.bootstrap_servers

    kafka_broker.restart()

    assert kafka_broker.pid != old_pid
    assert kafka_broker.bootstrap_servers == old_bootstrap
    with kafka_broker.admin() as admin:
        assert topic in admin.list_topics()
    assert _consume(kafka_broker.bootstrap_servers, topic, 1) == [(b"k", b"before restart")]

"""A group member whose rebalance a metadata change starts takes its new partitions, however
short its polls (the client's own handling leaves it stuck half way through; see
claimflow_shared.kafka.rejoin_fix)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kafka import KafkaConsumer
from kafka.admin import NewPartitions
from kafka.structs import MemberState

import claimflow_shared.kafka.consumer  # noqa: F401  (applies the fix, as the services do)
from claimflow_shared.kafka.admin import ensure_topics
from claimflow_shared.settings import ServiceSettings


def _wait_assigned(consumer: KafkaConsumer, count: int, poll_ms: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(consumer.assignment()) < count:
        if time.monotonic() > deadline:
            coordinator = consumer._coordinator
            pytest.fail(
                f"{len(consumer.assignment())} of {count} partitions after {timeout}s; "
                f"member {coordinator.state}, generation {coordinator._generation.generation_id}"
            )
        consumer.poll(timeout_ms=poll_ms)


@pytest.mark.integration
def test_partitions_added_under_short_polls_are_taken(kafka_broker: Any, topic_prefix: str) -> None:
    settings = ServiceSettings(
        kafka_bootstrap_servers=kafka_broker.bootstrap_servers, kafka_topic_prefix=topic_prefix
    )
    topic = settings.topic("grows")
    ensure_topics(settings, [topic], partitions=1, dead_letters=False)
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        group_id=f"{topic_prefix}grows",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        # Sees the new partitions within a second instead of five minutes.
        metadata_max_age_ms=1000,
    )
    consumer.subscribe([topic])
    try:
        _wait_assigned(consumer, 1, 100, 30)
        with kafka_broker.admin() as admin:
            admin.create_partitions({topic: NewPartitions(3)})
        # Polls this short end between the JoinGroup and the SyncGroup answer: the answer is
        # applied by the next one.
        _wait_assigned(consumer, 3, 5, 30)
        assert consumer._coordinator.state == MemberState.STABLE
    finally:
        consumer.close(autocommit=False)

"""The plans a process applies: the YAML directory, overlaid by the compacted plans topic."""

from __future__ import annotations

import asyncio
import logging

from kafka import KafkaProducer

from claimflow_adjudication.adapters.plans import PlanRegistry, load_plan_dir
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_shared.events import Topics
from claimflow_shared.kafka.admin import ensure_topics
from claimflow_shared.kafka.compacted import CompactedTopicReader
from claimflow_shared.kafka.producer import SEND_TIMEOUT_SECONDS, producer_config

log = logging.getLogger(__name__)

# Compaction keeps the latest plan per key; tombstones linger a day so every reader sees them.
PLANS_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "min.compaction.lag.ms": "0",
    "delete.retention.ms": "86400000",
}


def plans_topic(settings: AdjudicationSettings) -> str:
    return settings.topic(Topics.PLANS)


async def ensure_plans_topic(settings: AdjudicationSettings) -> None:
    topic = plans_topic(settings)
    await asyncio.to_thread(
        ensure_topics, settings, [topic], partitions=1, configs={topic: PLANS_TOPIC_CONFIG}
    )


def write_tombstone(settings: AdjudicationSettings, topic: str, key: str) -> None:
    """A null value under `key`: readers drop the key, and compaction later removes it."""
    producer = KafkaProducer(**producer_config(settings))
    try:
        producer.send(topic, key=key.encode(), value=None).get(timeout=SEND_TIMEOUT_SECONDS)
    finally:
        producer.close(timeout=5)


class PlanFeed:
    def __init__(self, settings: AdjudicationSettings) -> None:
        files = load_plan_dir(settings.plans_dir) if settings.plans_dir is not None else []
        self.registry = PlanRegistry(files)
        self.reader = CompactedTopicReader(
            settings, plans_topic(settings), self.registry.on_topic_change
        )
        log.info("%d plan(s) from files; following %s", len(files), self.reader.topic)

    def start(self) -> None:
        self.reader.start()

    async def stop(self) -> None:
        await self.reader.stop()

    async def check(self) -> None:
        """Readiness: the topic replayed and at least one plan to apply."""
        if not self.reader.alive():
            raise RuntimeError("plans reader stopped")
        if not self.reader.caught_up:
            raise RuntimeError("plans topic not replayed yet")
        if len(self.registry.book()) == 0:
            raise RuntimeError("no plans")

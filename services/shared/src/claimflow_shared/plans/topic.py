"""The compacted plans topic: key `namespace/name`, value a PlanPublishedV1 CloudEvent, and a
null value (tombstone) to withdraw a plan. kafka-python blocks: async callers use a thread."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from kafka import KafkaProducer

from claimflow_shared.events import BenefitPlanSpecV1, PlanPublishedV1, Topics, new_event
from claimflow_shared.kafka.admin import ensure_topics
from claimflow_shared.kafka.producer import SEND_TIMEOUT_SECONDS, producer_config
from claimflow_shared.settings import ServiceSettings

from .resource import BenefitPlanResource, load_plan_documents, plan_key

# One partition keeps every plan change in one order. Compaction keeps the latest plan per key;
# tombstones linger a day so every reader sees them before compaction drops the key.
PLANS_PARTITIONS = 1
PLANS_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "min.compaction.lag.ms": "0",
    "delete.retention.ms": "86400000",
}


def plans_topic(settings: ServiceSettings) -> str:
    return settings.topic(Topics.PLANS)


def ensure_plans_topic(settings: ServiceSettings) -> None:
    topic = plans_topic(settings)
    # The dead-letter topic is its consumers' to set up; the operator, which only writes
    # plans, may not even see it.
    ensure_topics(
        settings,
        [topic],
        partitions=PLANS_PARTITIONS,
        configs={topic: PLANS_TOPIC_CONFIG},
        dead_letters=False,
    )


def published_event(
    source: str,
    *,
    namespace: str,
    name: str,
    generation: int,
    spec: BenefitPlanSpecV1,
    published_at: datetime | None = None,
) -> bytes:
    data = PlanPublishedV1(
        plan_id=name,
        namespace=namespace,
        generation=generation,
        spec=spec,
        published_at=published_at or datetime.now(UTC),
    )
    return new_event(source, data, subject=plan_key(namespace, name)).to_json()


def resource_event(source: str, resource: BenefitPlanResource) -> bytes:
    return published_event(
        source,
        namespace=resource.metadata.namespace,
        name=resource.metadata.name,
        generation=resource.metadata.generation,
        spec=resource.spec,
    )


class PlanWriter:
    """Writes plans and tombstones, each acknowledged by the broker before the call returns."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.topic = plans_topic(settings)
        self._producer = KafkaProducer(**producer_config(settings))

    def _send(self, key: str, value: bytes | None) -> None:
        self._producer.send(self.topic, key=key.encode(), value=value).get(
            timeout=SEND_TIMEOUT_SECONDS
        )

    def put(self, key: str, event: bytes) -> None:
        self._send(key, event)

    def withdraw(self, key: str) -> None:
        # A null value: readers drop the key, and compaction later removes it for good.
        self._send(key, None)

    def close(self) -> None:
        self._producer.close(timeout=5)


def publish_plan_files(settings: ServiceSettings, directory: Path, source: str) -> list[str]:
    """Put every BenefitPlan file of `directory` on the topic, as the operator would publish
    the same resources; returns their keys. Raises PlanFileError before publishing anything
    when one file is not a valid plan."""
    documents = load_plan_documents(directory)
    ensure_plans_topic(settings)
    writer = PlanWriter(settings)
    try:
        for document in documents:
            writer.put(document.key, resource_event(source, document))
    finally:
        writer.close()
    return [d.key for d in documents]

"""Topic management and broker reachability, over kafka-python's admin client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError, UnknownBrokerIdError

from claimflow_shared.events.catalog import PHI_TOPICS
from claimflow_shared.settings import ServiceSettings

from .connection import connection_config

log = logging.getLogger(__name__)

# How long a starting service keeps trying to set its topics up while a broker is down.
TOPIC_SETUP_TIMEOUT_SECONDS = 60.0


def _admin(settings: ServiceSettings) -> KafkaAdminClient:
    return KafkaAdminClient(
        **connection_config(settings),
        client_id=f"{settings.service_name}-admin",
        request_timeout_ms=5000,
    )


# The dead-letter topic is not a topic of the pipeline's: it has the default partition count,
# whoever creates it first.
DEAD_LETTER_PARTITIONS = 3


def topic_configs(
    settings: ServiceSettings, name: str, configs: dict[str, str] | None = None
) -> dict[str, str]:
    """Topic `name`'s configuration as created: the settings' min.insync.replicas and, for the
    topics carrying PHI and the dead-letter topic, their shorter retention; under `configs`."""
    merged: dict[str, str] = {}
    if settings.kafka_topic_min_insync_replicas is not None:
        merged["min.insync.replicas"] = str(settings.kafka_topic_min_insync_replicas)
    if name == settings.dead_letter_topic:
        retention = settings.kafka_dead_letter_retention_ms
    elif name in {settings.topic(topic) for topic in PHI_TOPICS}:
        retention = settings.kafka_phi_retention_ms
    else:
        retention = None
    if retention is not None:
        merged["retention.ms"] = str(retention)
    return merged | dict(configs or {})


# One attempt's wait for the topics' leaders; ensure_topics retries within its own deadline.
TOPIC_READY_MS = 10_000


def ensure_topics(
    settings: ServiceSettings,
    names: Iterable[str],
    *,
    partitions: int = 3,
    replication_factor: int | None = None,
    configs: dict[str, dict[str, str]] | None = None,
    dead_letters: bool = True,
) -> None:
    """Create missing topics, and (with `dead_letters`) the dead-letter topic every consumer of
    them may write to, with the settings' replication unless `replication_factor` says
    otherwise; in clusters that manage topics declaratively (where the topics exist already)
    this only waits for their leaders, and needs no right beyond describing them."""
    replicas = replication_factor or settings.kafka_topic_replication_factor
    wanted = dict.fromkeys(names, partitions)
    if dead_letters:
        # Left to broker auto-creation (off in most clusters), it would get the broker's
        # defaults.
        wanted.setdefault(settings.dead_letter_topic, DEAD_LETTER_PARTITIONS)
    new_topics = [
        NewTopic(
            name,
            count,
            replicas,
            topic_configs=topic_configs(settings, name, (configs or {}).get(name)),
        )
        for name, count in wanted.items()
    ]
    deadline = time.monotonic() + TOPIC_SETUP_TIMEOUT_SECONDS
    delay = 0.25
    while True:
        try:
            _create_missing(settings, new_topics)
        except KafkaError as exc:
            # The client asked a node that is down or not yet known to it (one of three may be,
            # and the cluster still serves): a new client bootstraps from another.
            retriable = exc.retriable or isinstance(exc, UnknownBrokerIdError)
            if not retriable or time.monotonic() + delay > deadline:
                raise
            log.warning("creating topics failed (%s); retrying in %.1fs", type(exc).__name__, delay)
            time.sleep(delay)
            delay = min(2 * delay, 5.0)
        else:
            return


def _create_missing(settings: ServiceSettings, new_topics: list[NewTopic]) -> None:
    admin = _admin(settings)
    try:
        existing = set(admin.list_topics())
        missing = [topic for topic in new_topics if topic.name not in existing]
        if missing:
            # Another replica may create it between our list and create.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
        # Listed or created is not ready: a topic another service created a moment ago may
        # have no leaders yet. A consumer that joins its group then is assigned none of its
        # partitions, and its consumers wait on the group's next rebalance; every partition
        # has a leader before the caller starts consuming or producing.
        admin.wait_for_topics([topic.name for topic in new_topics], timeout_ms=TOPIC_READY_MS)
    finally:
        admin.close()


def _list_topics(settings: ServiceSettings) -> None:
    admin = _admin(settings)
    try:
        admin.list_topics()
    finally:
        admin.close()


async def kafka_reachable(settings: ServiceSettings) -> None:
    await asyncio.to_thread(_list_topics, settings)

"""Topic management and broker reachability, over kafka-python's admin client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from claimflow_shared.settings import ServiceSettings


def _admin(settings: ServiceSettings) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        client_id=f"{settings.service_name}-admin",
        request_timeout_ms=5000,
    )


def ensure_topics(
    settings: ServiceSettings,
    names: Iterable[str],
    *,
    partitions: int = 3,
    replication_factor: int = 1,
    configs: dict[str, dict[str, str]] | None = None,
) -> None:
    """Create missing topics; in clusters that manage topics declaratively this is a no-op."""
    admin = _admin(settings)
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(n, partitions, replication_factor, topic_configs=(configs or {}).get(n, {}))
            for n in names
            if n not in existing
        ]
        if missing:
            # Another replica may create it between our list and create.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
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

"""The plans a process applies: the YAML directory, overlaid by the compacted plans topic."""

from __future__ import annotations

import asyncio
import logging

from claimflow_adjudication.adapters.plans import PlanRegistry, load_plan_dir
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_shared.kafka.compacted import CompactedTopicReader
from claimflow_shared.plans import PlanWriter
from claimflow_shared.plans import ensure_plans_topic as _ensure_plans_topic
from claimflow_shared.plans import plans_topic as _plans_topic

log = logging.getLogger(__name__)


def plans_topic(settings: AdjudicationSettings) -> str:
    return _plans_topic(settings)


async def ensure_plans_topic(settings: AdjudicationSettings) -> None:
    await asyncio.to_thread(_ensure_plans_topic, settings)


def write_tombstone(settings: AdjudicationSettings, key: str) -> None:
    """Withdraw the plan under `key` (`namespace/name`)."""
    writer = PlanWriter(settings)
    try:
        writer.withdraw(key)
    finally:
        writer.close()


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

"""Withdrawing plans whose BenefitPlan is gone while nobody was watching.

The operator puts no finalizer on BenefitPlans (a finalizer would hold every plan, and with
it its namespace, in deletion for as long as the operator is not running). A deletion it sees
is withdrawn at once; one it cannot see (deleted while it was down, or between two watches)
is found here: a key on the plans topic, in a namespace the operator watches, with no
resource behind it gets a tombstone. It runs before the handlers at start and then
periodically.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from claimflow_shared.kafka.compacted import CompactedTopicReader
from claimflow_shared.plans import plan_key, split_key

from .kube import KubeApi
from .metrics import PLANS_WITHDRAWN, PUBLISH_FAILURES
from .publishing import Runtime
from .settings import OperatorSettings

log = logging.getLogger(__name__)


def orphans(
    live_keys: Iterable[str], existing: Iterable[str], settings: OperatorSettings
) -> list[str]:
    """Keys on the topic, in watched namespaces, without a resource; other keys (another
    deployment's namespaces, a plan published by hand without a namespace) are not ours."""
    present = set(existing)
    found = []
    for key in live_keys:
        if "/" not in key or key in present:
            continue
        namespace, _ = split_key(key)
        if settings.watches(namespace):
            found.append(key)
    return sorted(found)


class Sweeper:
    def __init__(self, settings: OperatorSettings, runtime: Runtime, kube: KubeApi) -> None:
        self.settings = settings
        self.runtime = runtime
        self.kube = kube
        # Follows the topic for as long as the operator runs: each sweep reads its table.
        self.reader = CompactedTopicReader(
            settings, runtime.topic, lambda _key, _value: None, client_id="operator-sweep"
        )

    async def start(self) -> None:
        self.reader.start()
        if not await self.reader.wait_caught_up(self.settings.operator_catch_up_seconds):
            raise RuntimeError(f"{self.runtime.topic} not replayed in time")

    async def stop(self) -> None:
        await self.reader.stop()

    async def sweep(self) -> list[str]:
        started = time.monotonic()
        live = self.reader.snapshot()
        items = await self.kube.list_plans(self.settings.operator_namespaces)
        existing = [plan_key(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items]
        withdrawn = []
        for key in orphans(live, existing, self.settings):
            # A key a handler wrote since this sweep began belongs to a resource just made.
            if self.runtime.written.get(key, 0.0) >= started:
                continue
            try:
                await asyncio.to_thread(self.runtime.sink.withdraw, key)
            except Exception as exc:  # noqa: BLE001 - the next sweep tries again
                PUBLISH_FAILURES.labels("withdraw").inc()
                log.warning("withdrawing orphan plan %s failed: %s", key, type(exc).__name__)
                continue
            self.runtime.wrote(key)
            PLANS_WITHDRAWN.labels("gone").inc()
            withdrawn.append(key)
        if withdrawn:
            log.info("withdrew %d plan(s) whose resource is gone: %s", len(withdrawn), withdrawn)
        return withdrawn

    async def run_periodically(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("sweep of withdrawn plans failed; trying again later")

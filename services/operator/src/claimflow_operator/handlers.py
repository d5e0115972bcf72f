"""The kopf registry: an index of every BenefitPlan (for checks across plans), reconciling on
create/update/resume, withdrawal on deletion, and the operator's start and stop.

No handler needs a finalizer (no on.delete, no timers, no daemons): deletions arrive as watch
events, and the sweep (sweep.py) withdraws what was deleted unseen. So a BenefitPlan, and its
namespace, is never stuck in deletion because the operator is not running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import kopf
from prometheus_client import start_http_server

from claimflow_shared.plans import GROUP, PLURAL, VERSION, PlanWriter, ensure_plans_topic

from .evaluation import IndexedPlan, indexed
from .kube import KubeApi, connection_info
from .publishing import KopfEvents, Runtime, reconcile, withdraw
from .settings import OperatorSettings
from .sweep import Sweeper

log = logging.getLogger(__name__)

INDEX = "benefitplans_index"
# Kopf keeps its own bookkeeping in annotations under this prefix; a structural schema would
# prune it from the status.
KOPF_PREFIX = f"operator.{GROUP}"


def kopf_settings(config: OperatorSettings) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # The known silent-watch problem: without timeouts a watch whose connection died without
    # a FIN waits forever. The server ends each watch after server_timeout; the client gives
    # up when nothing arrived for client_timeout; kopf then lists and watches again.
    settings.watching.server_timeout = config.operator_watch_server_timeout_seconds
    settings.watching.client_timeout = config.operator_watch_client_timeout_seconds
    settings.watching.connect_timeout = config.operator_watch_connect_timeout_seconds
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    # Kubernetes events: the handlers' explicit ones (kopf.event), and kopf's own warnings and
    # errors about a plan, not its per-handler chatter.
    settings.posting.level = logging.WARNING
    settings.posting.loggers = False
    return settings


def _plans(index: kopf.Index[str, IndexedPlan]) -> Iterator[IndexedPlan]:
    for store in index.values():
        yield from store


class Lifecycle:
    """What lives as long as the operator: the topic writer, the API client, the sweep and
    the metrics endpoint."""

    def __init__(self, config: OperatorSettings) -> None:
        self.config = config
        self._runtime: Runtime | None = None
        self._sweeper: Sweeper | None = None
        self._sweeping: asyncio.Task[None] | None = None
        self._writer: PlanWriter | None = None
        self._kube: KubeApi | None = None
        self._metrics: Any = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("the operator has not started")
        return self._runtime

    async def start(self, settings: kopf.OperatorSettings) -> None:
        try:
            await self._start(settings)
        except BaseException:
            # kopf retries a failed start-up: leave nothing behind for the next attempt.
            await self.stop()
            raise

    async def _start(self, settings: kopf.OperatorSettings) -> None:
        config = self.config
        await asyncio.to_thread(ensure_plans_topic, config)
        self._writer = await asyncio.to_thread(PlanWriter, config)
        self._kube = KubeApi(connection_info(settings))
        rt = Runtime(self._writer, KopfEvents(), self._writer.topic, kube=self._kube)
        if config.operator_metrics_port:
            self._metrics, _thread = start_http_server(
                config.operator_metrics_port, addr=config.http_host
            )
        self._sweeper = Sweeper(config, rt, self._kube)
        await self._sweeper.start()
        # Before any handler runs: plans deleted while the operator was away go first.
        await self._sweeper.sweep()
        self._sweeping = asyncio.create_task(
            self._sweeper.run_periodically(config.operator_sweep_interval_seconds)
        )
        self._runtime = rt
        log.info(
            "operator started: %s, plans topic %s",
            "all namespaces" if config.clusterwide else ", ".join(config.operator_namespaces),
            rt.topic,
        )

    async def stop(self) -> None:
        self._runtime = None
        sweeping, self._sweeping = self._sweeping, None
        if sweeping is not None:
            sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeping
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            await sweeper.stop()
        kube, self._kube = self._kube, None
        if kube is not None:
            await kube.aclose()
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.to_thread(writer.close)
        metrics, self._metrics = self._metrics, None
        if metrics is not None:
            metrics.shutdown()
            metrics.server_close()


def build_registry(config: OperatorSettings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    resource = (GROUP, VERSION, PLURAL)
    life = Lifecycle(config)

    @kopf.on.login(id="login", registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo:
        return connection_info(kwargs["settings"])

    @kopf.on.startup(id="start", registry=registry)
    async def start(**kwargs: Any) -> None:
        await life.start(kwargs["settings"])

    @kopf.on.cleanup(id="stop", registry=registry)
    async def stop(**_: Any) -> None:
        await life.stop()

    @kopf.index(*resource, id=INDEX, registry=registry)
    def benefitplans_index(**kwargs: Any) -> dict[str, IndexedPlan]:
        return {f"{kwargs['namespace']}/{kwargs['name']}": indexed(kwargs["body"])}

    async def reconciled(kwargs: dict[str, Any], *, force: bool) -> None:
        patch: kopf.Patch = kwargs["patch"]
        plans = _plans(kwargs[INDEX])
        await reconcile(life.runtime, kwargs["body"], patch.status, plans, force=force)

    @kopf.on.resume(*resource, id="resume", registry=registry)
    async def resumed(**kwargs: Any) -> None:
        # Republished even when the status says it is on the topic: the topic may be new.
        await reconciled(kwargs, force=True)

    @kopf.on.create(*resource, id="create", registry=registry)
    async def created(**kwargs: Any) -> None:
        await reconciled(kwargs, force=True)

    @kopf.on.update(*resource, id="update", registry=registry)
    async def updated(**kwargs: Any) -> None:
        await reconciled(kwargs, force=False)

    @kopf.on.event(*resource, id="deletion", registry=registry)
    async def watched(**kwargs: Any) -> None:
        if kwargs["type"] == "DELETED":
            plans = _plans(kwargs[INDEX])
            await withdraw(life.runtime, kwargs["body"], plans, cause="deleted")

    return registry

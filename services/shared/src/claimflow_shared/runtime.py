"""The worker runtime: one composition root for every service's Kafka worker.

A service describes its worker in a `compose` function: open the database, make sure the
topics exist, open a publisher, start the outbox relay, the consumer and any loops of its
own. Everything opened is registered on one AsyncExitStack, so a start that fails half-way
and a normal shutdown unwind the same way, in reverse: consumers stop first (no new work),
then the loops and the relay, then the publisher closes and the engine is disposed.

The worker's HTTP side comes with it: `/readyz` checks the database, the relay and every
consumer; `/healthz` (liveness) fails when a consumer is dead, halted, stuck or stalled, so
the orchestrator restarts a worker that can no longer make progress.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Literal, cast, overload

from fastapi import FastAPI
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_shared.db import create_engine, ping
from claimflow_shared.events import decode_event
from claimflow_shared.kafka.admin import ensure_topics
from claimflow_shared.kafka.consumer import (
    BatchHandler,
    EventConsumer,
    EventDecoder,
    RecordBatchHandler,
)
from claimflow_shared.kafka.producer import Publisher
from claimflow_shared.logs import configure_logging
from claimflow_shared.outbox import OutboxRelay
from claimflow_shared.settings import ServiceSettings
from claimflow_shared.web.app import build_app
from claimflow_shared.web.health import Check, ReadinessCheck, Unhealthy

# A loop of the worker's own: runs until the event is set.
Loop = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class WorkerRuntime:
    """The parts of one worker process, opened by its compose function."""

    def __init__(self, settings: ServiceSettings, stack: AsyncExitStack, app: FastAPI) -> None:
        self.settings = settings
        self.app = app
        self._stack = stack
        self._stop = asyncio.Event()
        self.engine: AsyncEngine | None = None
        self.relay: OutboxRelay | None = None
        self.consumers: list[EventConsumer] = []
        self._publisher: Publisher | None = None

    async def open_engine(self, engine: AsyncEngine | None = None) -> AsyncEngine:
        """The service's engine (the shared default unless given), disposed at exit."""
        self.engine = engine if engine is not None else create_engine(self.settings)
        self._stack.push_async_callback(self.engine.dispose)
        return self.engine

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        await asyncio.to_thread(ensure_topics, self.settings, list(topics))

    async def publisher(self) -> Publisher:
        """The process's one producer (relay and dead letters share it), closed at exit."""
        if self._publisher is None:
            publisher = await asyncio.to_thread(Publisher, self.settings)
            self._stack.push_async_callback(asyncio.to_thread, publisher.close)
            self._publisher = publisher
        return self._publisher

    async def start_relay(self, outbox: Table) -> OutboxRelay:
        relay = OutboxRelay.for_service(
            self._require_engine(), outbox, await self.publisher(), self.settings
        )
        self.start_loop("outbox-relay", relay.run)
        self.relay = relay
        return relay

    def start_loop(self, name: str, loop: Loop) -> asyncio.Task[None]:
        """Runs `loop(stop)` as a task; at exit the stop event is set and the task awaited."""
        task = asyncio.create_task(loop(self._stop), name=name)

        async def finish() -> None:
            self._stop.set()
            await task

        self._stack.push_async_callback(finish)
        return task

    def on_exit(self, callback: Callable[[], Awaitable[object]]) -> None:
        """Runs at exit, before whatever was opened earlier is closed."""
        self._stack.push_async_callback(callback)

    @overload
    async def start_consumer(
        self,
        group_id: str,
        topics: Sequence[str],
        handler: BatchHandler,
        *,
        decoder: EventDecoder = ...,
        tombstones: Literal[False] = ...,
        any_type_on_any_topic: bool = ...,
    ) -> EventConsumer: ...

    @overload
    async def start_consumer(
        self,
        group_id: str,
        topics: Sequence[str],
        handler: RecordBatchHandler,
        *,
        decoder: EventDecoder = ...,
        tombstones: Literal[True],
        any_type_on_any_topic: bool = ...,
    ) -> EventConsumer: ...

    async def start_consumer(
        self,
        group_id: str,
        topics: Sequence[str],
        handler: BatchHandler | RecordBatchHandler,
        *,
        decoder: EventDecoder = decode_event,
        tombstones: bool = False,
        any_type_on_any_topic: bool = False,
    ) -> EventConsumer:
        """A consumer dead-lettering through the shared publisher; stopped first at exit."""
        dead_letters = await self.publisher()
        loop = asyncio.get_running_loop()
        consumer = (
            EventConsumer(
                self.settings,
                group_id=group_id,
                topics=topics,
                handler=cast(RecordBatchHandler, handler),
                loop=loop,
                dead_letters=dead_letters,
                decoder=decoder,
                tombstones=True,
                any_type_on_any_topic=any_type_on_any_topic,
            )
            if tombstones
            else EventConsumer(
                self.settings,
                group_id=group_id,
                topics=topics,
                handler=handler,
                loop=loop,
                dead_letters=dead_letters,
                decoder=decoder,
                any_type_on_any_topic=any_type_on_any_topic,
            )
        )
        consumer.start()
        self._stack.push_async_callback(consumer.stop)
        self.consumers.append(consumer)
        return consumer

    def _require_engine(self) -> AsyncEngine:
        if self.engine is None:
            raise RuntimeError("open_engine() first")
        return self.engine

    # -- health ---------------------------------------------------------------------------

    async def check_database(self) -> None:
        await ping(self._require_engine())

    async def check_relay(self) -> None:
        if self.relay is not None:
            await self.relay.check_running()

    async def check_consumers(self) -> None:
        reasons = [
            f"{c.group_id}: {verdict.reason}"
            for c in self.consumers
            if not (verdict := c.health()).healthy
        ]
        if reasons:
            raise Unhealthy("; ".join(reasons))


Compose = Callable[[WorkerRuntime], Awaitable[None]]
RuntimeCheck = Callable[[WorkerRuntime], Awaitable[None]]


def build_worker_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    compose: Compose,
    checks: Mapping[str, RuntimeCheck] | None = None,
    relay: bool = True,
) -> FastAPI:
    """A worker process: its parts from `compose`, health and metrics over HTTP. `checks`
    are extra readiness checks of the service's own; `relay` says whether it has a relay."""
    configure_logging(settings.service_name + "-worker", settings.log_level)
    holder: dict[str, WorkerRuntime] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            runtime = WorkerRuntime(settings, stack, app)
            app.state.runtime = runtime
            await compose(runtime)
            holder["runtime"] = runtime
            try:
                yield
            finally:
                holder.pop("runtime", None)

    def bound(check: RuntimeCheck) -> Check:
        async def run() -> None:
            runtime = holder.get("runtime")
            if runtime is None:
                raise Unhealthy("starting")
            await check(runtime)

        return run

    readiness: dict[str, RuntimeCheck] = {"database": WorkerRuntime.check_database}
    if relay:
        readiness["outbox_relay"] = WorkerRuntime.check_relay
    readiness["kafka_consumer"] = WorkerRuntime.check_consumers
    readiness.update(checks or {})

    async def consumers_alive() -> None:
        # Before the lifespan finished starting there is nothing to judge: alive.
        runtime = holder.get("runtime")
        if runtime is not None:
            await runtime.check_consumers()

    return build_app(
        settings,
        title=title,
        description=description,
        version="1.0.0",
        lifespan=lifespan,
        checks={name: ReadinessCheck(bound(check)) for name, check in readiness.items()},
        liveness={"kafka_consumer": consumers_alive},
    )

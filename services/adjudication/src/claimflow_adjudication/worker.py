"""The adjudication worker: adjudicates submitted claims, runs the payments saga, relays the
outbox. Runs as its own process (and Deployment), serving only health and metrics over HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_adjudication import adjudicating, saga
from claimflow_adjudication.adapters.tables import outbox
from claimflow_adjudication.plan_feed import PlanFeed, ensure_plans_topic
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_shared.db import create_engine
from claimflow_shared.events import Topics
from claimflow_shared.kafka.admin import ensure_topics
from claimflow_shared.kafka.consumer import BatchHandler, ConsumedEvent, EventConsumer
from claimflow_shared.kafka.producer import Publisher
from claimflow_shared.logs import configure_logging
from claimflow_shared.outbox import OutboxRelay
from claimflow_shared.web.app import build_app
from claimflow_shared.web.health import ReadinessCheck, worker_checks

# Called after a batch's transaction committed and before its offset is committed; lets a
# test stop the process exactly there.
AfterCommit = Callable[[Sequence[ConsumedEvent]], Awaitable[None]]


def consumed_topics(settings: AdjudicationSettings) -> list[str]:
    return [
        settings.topic(t)
        for t in (Topics.CLAIMS_SUBMITTED, Topics.PAYMENTS_COMPLETED, Topics.PAYMENTS_FAILED)
    ]


def produced_topics(settings: AdjudicationSettings) -> list[str]:
    return [
        settings.topic(t)
        for t in (Topics.CLAIMS_ADJUDICATED, Topics.PAYMENTS_REQUESTED, Topics.CLAIMS_REVERSED)
    ]


def batch_handler(
    engine: AsyncEngine,
    settings: AdjudicationSettings,
    feed: PlanFeed,
    after_commit: AfterCommit | None = None,
) -> BatchHandler:
    submitted = settings.topic(Topics.CLAIMS_SUBMITTED)

    async def handle(batch: Sequence[ConsumedEvent]) -> None:
        # A batch is one partition of one topic; a plan arriving now applies from the next batch.
        if batch[0].topic == submitted:
            book = feed.registry.book()
            async with engine.begin() as conn:
                results = await adjudicating.adjudicate_batch(conn, settings, book, batch)
            if after_commit is not None:
                await after_commit(batch)
            adjudicating.count(results)
        else:
            async with engine.begin() as conn:
                outcomes = await saga.apply_payment_results(conn, settings, batch)
            if after_commit is not None:
                await after_commit(batch)
            saga.count(outcomes)

    return handle


def create_worker_app(
    settings: AdjudicationSettings | None = None, *, after_commit: AfterCommit | None = None
) -> FastAPI:
    settings = settings or AdjudicationSettings()
    configure_logging(settings.service_name + "-worker", settings.log_level)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        await asyncio.to_thread(
            ensure_topics, settings, produced_topics(settings) + consumed_topics(settings)
        )
        await ensure_plans_topic(settings)
        feed = PlanFeed(settings)
        feed.start()
        publisher: Publisher | None = None
        consumer: EventConsumer | None = None
        stop = asyncio.Event()
        relay_task: asyncio.Task[None] | None = None
        try:
            # Claims wait until the plans topic is replayed: never adjudicate on a stale plan.
            if not await feed.reader.wait_caught_up(settings.plans_catch_up_seconds):
                raise RuntimeError(
                    f"plans topic not replayed within {settings.plans_catch_up_seconds:.0f}s"
                )
            publisher = await asyncio.to_thread(Publisher, settings)
            relay = OutboxRelay.for_service(engine, outbox, publisher, settings)
            consumer = EventConsumer(
                settings,
                group_id=settings.consumer_group,
                topics=consumed_topics(settings),
                handler=batch_handler(engine, settings, feed, after_commit),
                loop=asyncio.get_running_loop(),
                dead_letters=publisher,
            )
            relay_task = asyncio.create_task(relay.run(stop), name="outbox-relay")
            consumer.start()
            state.update(engine=engine, relay=relay, consumer=consumer, feed=feed)
            app.state.plan_feed = feed
            yield
        finally:
            stop.set()
            if consumer is not None:
                await consumer.stop()
            if relay_task is not None:
                await relay_task
            await feed.stop()
            if publisher is not None:
                await asyncio.to_thread(publisher.close)
            await engine.dispose()

    async def plans() -> None:
        await state["feed"].check()

    return build_app(
        settings,
        title="claimflow adjudication worker",
        description="Claims consumer, payments saga and outbox relay of the adjudication service.",
        version="1.0.0",
        lifespan=lifespan,
        checks={**worker_checks(state), "plans": ReadinessCheck(plans)},
    )

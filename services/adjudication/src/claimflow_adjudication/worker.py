"""The adjudication worker: adjudicates submitted claims, runs the payments saga, relays the
outbox. Runs as its own process (and Deployment), serving only health and metrics over HTTP.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_adjudication.adapters.plan_feed import PlanFeed, ensure_plans_topic
from claimflow_adjudication.adapters.tables import outbox
from claimflow_adjudication.service_layer import adjudication, payments
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_shared.events import Topics
from claimflow_shared.kafka.consumer import BatchHandler, ConsumedEvent
from claimflow_shared.runtime import WorkerRuntime, build_worker_app

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
        for t in (
            Topics.CLAIMS_ADJUDICATED,
            Topics.PAYMENTS_REQUESTED,
            Topics.CLAIMS_REVERSED,
            Topics.AUDIT_ACCESS,
        )
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
                results = await adjudication.adjudicate_batch(conn, settings, book, batch)
            if after_commit is not None:
                await after_commit(batch)
            adjudication.count(results)
        else:
            async with engine.begin() as conn:
                outcomes = await payments.apply_payment_results(conn, settings, batch)
            if after_commit is not None:
                await after_commit(batch)
            payments.count(outcomes)

    return handle


def create_worker_app(
    settings: AdjudicationSettings | None = None, *, after_commit: AfterCommit | None = None
) -> FastAPI:
    settings = settings or AdjudicationSettings()

    async def compose(runtime: WorkerRuntime) -> None:
        engine = await runtime.open_engine()
        await runtime.ensure_topics(produced_topics(settings) + consumed_topics(settings))
        await ensure_plans_topic(settings)
        feed = PlanFeed(settings)
        feed.start()
        runtime.on_exit(feed.stop)
        runtime.app.state.plan_feed = feed
        # Claims wait until the plans topic is replayed: never adjudicate on a stale plan.
        if not await feed.reader.wait_caught_up(settings.plans_catch_up_seconds):
            raise RuntimeError(
                f"plans topic not replayed within {settings.plans_catch_up_seconds:.0f}s"
            )
        await runtime.start_relay(outbox)
        await runtime.start_consumer(
            settings.consumer_group,
            consumed_topics(settings),
            batch_handler(engine, settings, feed, after_commit),
        )

    async def plans(runtime: WorkerRuntime) -> None:
        await runtime.app.state.plan_feed.check()

    return build_worker_app(
        settings,
        title="claimflow adjudication worker",
        description="Claims consumer, payments saga and outbox relay of the adjudication service.",
        compose=compose,
        checks={"plans": plans},
    )

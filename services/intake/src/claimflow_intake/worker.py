"""The intake worker: relays the outbox to Kafka and moves claim statuses from events.

Runs as its own process (and Deployment), serving only health and metrics over HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_intake.adapters.tables import outbox
from claimflow_intake.service_layer.statuses import apply_status_events
from claimflow_intake.settings import IntakeSettings
from claimflow_shared.events import Topics
from claimflow_shared.kafka.consumer import BatchHandler, ConsumedEvent
from claimflow_shared.runtime import WorkerRuntime, build_worker_app


def consumed_topics(settings: IntakeSettings) -> list[str]:
    return [
        settings.topic(t)
        for t in (Topics.CLAIMS_ADJUDICATED, Topics.CLAIMS_REVERSED, Topics.PAYMENTS_COMPLETED)
    ]


def produced_topics(settings: IntakeSettings) -> list[str]:
    return [settings.topic(t) for t in (Topics.CLAIMS_SUBMITTED, Topics.AUDIT_ACCESS)]


def status_handler(engine: AsyncEngine) -> BatchHandler:
    async def handle(batch: Sequence[ConsumedEvent]) -> None:
        await apply_status_events(engine, batch)

    return handle


def create_worker_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()

    async def compose(runtime: WorkerRuntime) -> None:
        engine = await runtime.open_engine()
        await runtime.ensure_topics(produced_topics(settings) + consumed_topics(settings))
        await runtime.start_relay(outbox)
        await runtime.start_consumer(
            settings.consumer_group, consumed_topics(settings), status_handler(engine)
        )

    return build_worker_app(
        settings,
        title="claimflow intake worker",
        description="Outbox relay and claim-status consumer of the intake service.",
        compose=compose,
    )

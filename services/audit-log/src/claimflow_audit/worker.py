"""The audit-log worker: consumes every claimflow topic into the chain, and checkpoints it.

Runs as its own process (and Deployment), serving only health and metrics over HTTP. Any
number of replicas may run: they share the consumer group's partitions and take turns on the
chain's writer lock, batch by batch (see adapters/store.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_audit.adapters import store
from claimflow_audit.adapters.db import create_engine
from claimflow_audit.adapters.roles import check_least_privilege
from claimflow_audit.metrics import CHAIN_LENGTH
from claimflow_audit.service_layer.checkpoints import Checkpointer
from claimflow_audit.service_layer.recording import record_batch
from claimflow_audit.service_layer.verification import ScheduledVerifier
from claimflow_audit.settings import AuditSettings
from claimflow_shared.events import Topics
from claimflow_shared.events.envelope import decode_envelope
from claimflow_shared.kafka.admin import ensure_topics
from claimflow_shared.kafka.consumer import Consumed, RecordBatchHandler
from claimflow_shared.plans import ensure_plans_topic, plans_topic
from claimflow_shared.runtime import WorkerRuntime, build_worker_app
from claimflow_shared.web.health import Unhealthy

STALL_SECONDS = 60.0

AUDITED_TOPICS = (
    Topics.CLAIMS_SUBMITTED,
    Topics.CLAIMS_ADJUDICATED,
    Topics.CLAIMS_REVERSED,
    Topics.PAYMENTS_REQUESTED,
    Topics.PAYMENTS_COMPLETED,
    Topics.PAYMENTS_FAILED,
    Topics.PLANS,
    Topics.AUDIT_ACCESS,
)


def audited_topics(settings: AuditSettings) -> list[str]:
    return [settings.topic(t) for t in AUDITED_TOPICS]


def _ensure_topics(settings: AuditSettings) -> None:
    plans = plans_topic(settings)
    ensure_topics(settings, [t for t in audited_topics(settings) if t != plans])
    # The plans topic is the operator's and adjudication's: whoever starts first creates it,
    # so the audit log creates it exactly as they do, from the one shared definition.
    ensure_plans_topic(settings)


def audit_handler(engine: AsyncEngine) -> RecordBatchHandler:
    async def handle(batch: Sequence[Consumed]) -> None:
        await record_batch(engine, batch)

    return handle


def _start_verifier(runtime: WorkerRuntime, settings: AuditSettings) -> ScheduledVerifier | None:
    """The scheduled chain verification, on its own connection: a long walk never holds one
    the consumer needs (reads take no lock that an append waits for)."""
    if settings.audit_verify_interval_seconds <= 0:
        return None
    engine = create_engine(settings, single_connection=True, role="verifier")
    runtime.on_exit(engine.dispose)
    verifier = ScheduledVerifier(
        engine,
        interval=settings.audit_verify_interval_seconds,
        full_interval=settings.audit_full_verify_interval_seconds,
        chunk_size=settings.verify_chunk_size,
    )
    task = asyncio.create_task(verifier.run(), name="audit-verify")

    async def cancel() -> None:
        # Cancelled, not awaited to the end: a full walk of a long chain must not hold up a
        # shutdown; it is a read, so stopping mid-way leaves nothing behind.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    runtime.on_exit(cancel)
    return verifier


def create_worker_app(settings: AuditSettings | None = None) -> FastAPI:
    settings = settings or AuditSettings()

    async def compose(runtime: WorkerRuntime) -> None:
        engine = await runtime.open_engine(create_engine(settings))
        await check_least_privilege(engine, allow_owner=settings.allow_owner_as_app_role)
        async with engine.connect() as conn:
            CHAIN_LENGTH.set((await store.chain_head(conn)).seq)
        await asyncio.to_thread(_ensure_topics, settings)
        checkpointer = Checkpointer(engine, settings.checkpoint_interval_seconds)
        runtime.app.state.checkpointer = checkpointer
        runtime.start_loop("audit-checkpoints", checkpointer.run)
        runtime.app.state.chain_verifier = _start_verifier(runtime, settings)
        await runtime.start_consumer(
            settings.consumer_group,
            audited_topics(settings),
            audit_handler(engine),
            decoder=decode_envelope,
            tombstones=True,
            # The trail records what was on the topics, forgeries included; it acts on nothing.
            any_type_on_any_topic=True,
        )

    async def checkpointer_running(runtime: WorkerRuntime) -> None:
        idle = time.monotonic() - runtime.app.state.checkpointer.last_cycle
        if idle > settings.checkpoint_interval_seconds + STALL_SECONDS:
            raise Unhealthy("checkpointer stalled")

    return build_worker_app(
        settings,
        title="claimflow audit-log worker",
        description="Appends every claimflow event to the audit chain and checkpoints it.",
        compose=compose,
        checks={"checkpointer": checkpointer_running},
        relay=False,
    )

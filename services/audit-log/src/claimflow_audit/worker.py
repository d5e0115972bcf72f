"""The audit-log worker: consumes every claimflow topic into the chain, and checkpoints it.

Runs as its own process (and Deployment), serving only health and metrics over HTTP. Any
number of replicas may run: they share the consumer group's partitions and take turns on the
chain's writer lock, batch by batch (see adapters/store.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_audit.adapters import store
from claimflow_audit.adapters.db import create_engine
from claimflow_audit.checkpoints import Checkpointer
from claimflow_audit.entries import entry_for
from claimflow_audit.guard import check_least_privilege
from claimflow_audit.metrics import (
    APPEND_BATCH_SIZE,
    APPEND_DURATION,
    CHAIN_LENGTH,
    DUPLICATES_SKIPPED,
    RECORDS_APPENDED,
)
from claimflow_audit.scheduled_verify import ScheduledVerifier
from claimflow_audit.settings import AuditSettings
from claimflow_shared.events import Topics
from claimflow_shared.events.envelope import decode_envelope
from claimflow_shared.kafka.admin import ensure_topics
from claimflow_shared.kafka.consumer import (
    Consumed,
    ConsumedEvent,
    EventConsumer,
    RecordBatchHandler,
)
from claimflow_shared.kafka.producer import Publisher
from claimflow_shared.kafka.tracing import messaging_attributes
from claimflow_shared.logs import configure_logging
from claimflow_shared.plans import ensure_plans_topic, plans_topic
from claimflow_shared.web.app import build_app
from claimflow_shared.web.health import ReadinessCheck, worker_checks

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

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


def audited_topics(settings: AuditSettings) -> list[str]:
    return [settings.topic(t) for t in AUDITED_TOPICS]


def _ensure_topics(settings: AuditSettings) -> None:
    plans = plans_topic(settings)
    ensure_topics(settings, [t for t in audited_topics(settings) if t != plans])
    # The plans topic is the operator's and adjudication's: whoever starts first creates it,
    # so the audit log creates it exactly as they do, from the one shared definition.
    ensure_plans_topic(settings)


def _kind(consumed: Consumed) -> str:
    return "event" if isinstance(consumed, ConsumedEvent) else "tombstone"


def audit_handler(engine: AsyncEngine) -> RecordBatchHandler:
    async def handle(batch: Sequence[Consumed]) -> None:
        # Raises UnprocessableEvent for a record that could never be stored; the consumer
        # dead-letters it and calls again with the rest.
        entries = [entry_for(consumed) for consumed in batch]
        # One processing span per record, each a child of that record's producer span, so
        # the audit step shows in every claim's trace; they cover the shared transaction.
        spans = [
            tracer.start_span(
                f"{c.topic} process",
                context=c.parent,
                kind=SpanKind.CONSUMER,
                attributes=messaging_attributes(
                    c.topic, "process", key=c.key, partition=c.partition
                ),
            )
            for c in batch
        ]
        started = time.perf_counter()
        try:
            # One transaction per batch, committed before the consumer commits the offsets.
            async with engine.begin() as conn:
                appended = await store.append(conn, entries)
        except Exception as exc:
            for span in spans:
                span.set_status(StatusCode.ERROR, type(exc).__name__)
            raise
        finally:
            for span in spans:
                span.end()
        for span, consumed, entry in zip(spans, batch, entries, strict=True):
            # Under each record's span, so the line carries that claim's trace id.
            with trace.use_span(span):
                log.info("audited %s of %s from %s", entry.event_id, entry.subject, consumed.topic)
        APPEND_DURATION.observe(time.perf_counter() - started)
        APPEND_BATCH_SIZE.observe(len(appended.records))
        origin = {e.event_id: (_kind(c), c.topic) for c, e in zip(batch, entries, strict=True)}
        for record in appended.records:
            RECORDS_APPENDED.labels(*origin[record.event_id]).inc()
        if appended.duplicates:
            DUPLICATES_SKIPPED.inc(appended.duplicates)
        CHAIN_LENGTH.set(appended.head.seq)

    return handle


def _start_verifier(
    settings: AuditSettings,
) -> tuple[ScheduledVerifier, asyncio.Task[None], AsyncEngine] | None:
    """The scheduled chain verification, on its own connection: a long walk never holds one
    the consumer needs (reads take no lock that an append waits for)."""
    if settings.audit_verify_interval_seconds <= 0:
        return None
    engine = create_engine(settings, single_connection=True, role="verifier")
    verifier = ScheduledVerifier(
        engine,
        interval=settings.audit_verify_interval_seconds,
        full_interval=settings.audit_full_verify_interval_seconds,
        chunk_size=settings.verify_chunk_size,
    )
    return verifier, asyncio.create_task(verifier.run(), name="audit-verify"), engine


async def _stop_verifier(task: asyncio.Task[None], engine: AsyncEngine) -> None:
    # Cancelled, not awaited to the end: a full walk of a long chain must not hold up a
    # shutdown; it is a read, so stopping mid-way leaves nothing behind.
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await engine.dispose()


def create_worker_app(settings: AuditSettings | None = None) -> FastAPI:
    settings = settings or AuditSettings()
    configure_logging(settings.service_name + "-worker", settings.log_level)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        try:
            await check_least_privilege(engine, allow_owner=settings.allow_owner_as_app_role)
            async with engine.connect() as conn:
                CHAIN_LENGTH.set((await store.chain_head(conn)).seq)
            await asyncio.to_thread(_ensure_topics, settings)
            publisher = await asyncio.to_thread(Publisher, settings)
        except BaseException:
            await engine.dispose()
            raise
        consumer = EventConsumer(
            settings,
            group_id=settings.consumer_group,
            topics=audited_topics(settings),
            handler=audit_handler(engine),
            loop=asyncio.get_running_loop(),
            dead_letters=publisher,
            decoder=decode_envelope,
            tombstones=True,
        )
        checkpointer = Checkpointer(engine, settings.checkpoint_interval_seconds)
        stop = asyncio.Event()
        checkpoints = asyncio.create_task(checkpointer.run(stop), name="audit-checkpoints")
        verifying = _start_verifier(settings)
        consumer.start()
        state.update(engine=engine, consumer=consumer, checkpointer=checkpointer)
        app.state.chain_verifier = verifying[0] if verifying is not None else None
        try:
            yield
        finally:
            stop.set()
            if verifying is not None:
                await _stop_verifier(*verifying[1:])
            await consumer.stop()
            await checkpoints
            await asyncio.to_thread(publisher.close)
            await engine.dispose()

    async def checkpointer_running() -> None:
        idle = time.monotonic() - state["checkpointer"].last_cycle
        if idle > settings.checkpoint_interval_seconds + STALL_SECONDS:
            raise RuntimeError("checkpointer stalled")

    return build_app(
        settings,
        title="claimflow audit-log worker",
        description="Appends every claimflow event to the audit chain and checkpoints it.",
        version="1.0.0",
        lifespan=lifespan,
        checks={
            **worker_checks(state, relay=False),
            "checkpointer": ReadinessCheck(checkpointer_running),
        },
    )

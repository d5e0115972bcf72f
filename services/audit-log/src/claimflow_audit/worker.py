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
from collections.abc import Sequence

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.trace import StatusCode
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
from claimflow_shared.kafka.consumer import Consumed, ConsumedEvent, RecordBatchHandler
from claimflow_shared.kafka.spans import start_process_span
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

log = logging.getLogger(__name__)


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
        spans = [start_process_span(c) for c in batch]
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

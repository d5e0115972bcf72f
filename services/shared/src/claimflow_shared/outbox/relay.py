"""The relay: publishes unpublished outbox rows to Kafka in id order, then marks them.

Several relays may run (one per replica). Each batch runs in a transaction that first takes a
transaction-scoped advisory lock, so exactly one relay publishes at a time and the global id
order (hence per-key order) holds. A relay that dies mid-batch rolls back its marks; the next
batch re-publishes those rows with the same event ids, which consumers deduplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Sequence
from typing import Any

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Gauge
from sqlalchemy import Row, Table, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_shared.dburl import libpq_dsn
from claimflow_shared.kafka.producer import OutgoingMessage, Publisher
from claimflow_shared.kafka.tracing import extract_context, inject_headers, messaging_attributes
from claimflow_shared.settings import ServiceSettings

from .tables import NOTIFY_CHANNEL

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

OUTBOX_BACKLOG = Gauge(
    "claimflow_outbox_backlog", "Outbox rows not yet published to Kafka", ["service"]
)
OUTBOX_PUBLISHED = Counter(
    "claimflow_outbox_published_total", "Outbox rows published to Kafka", ["service", "topic"]
)
OUTBOX_FAILURES = Counter(
    "claimflow_outbox_publish_failures_total",
    "Relay batches that failed and were retried",
    ["service"],
)

LOCK_KEY = zlib.crc32(b"claimflow.outbox.relay")
PURGE_EVERY_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 10.0
# A relay loop that has not come round for this long is stuck (its waits are ~1 s).
STALL_SECONDS = 60.0


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Table,
        publisher: Publisher,
        *,
        service: str,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        linger: float = 0.0,
        retention_seconds: int = 3600,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._publisher = publisher
        self._service = service
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._linger = linger
        self._retention_seconds = retention_seconds
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self.last_cycle = 0.0

    @classmethod
    def for_service(
        cls, engine: AsyncEngine, outbox: Table, publisher: Publisher, settings: ServiceSettings
    ) -> OutboxRelay:
        return cls(
            engine,
            outbox,
            publisher,
            service=settings.service_name,
            batch_size=settings.outbox_batch_size,
            poll_interval=settings.outbox_poll_interval_seconds,
            linger=settings.outbox_linger_seconds,
            retention_seconds=settings.outbox_retention_seconds,
        )

    async def check_running(self) -> None:
        """Readiness: the relay loop came round recently."""
        if time.monotonic() - self.last_cycle > STALL_SECONDS:
            raise RuntimeError("outbox relay stalled")

    async def relay_once(self) -> int:
        """Publish one batch if this relay holds the lock; returns how many rows it published."""
        o = self._outbox
        async with self._engine.begin() as conn:
            if not await conn.scalar(select(func.pg_try_advisory_xact_lock(LOCK_KEY))):
                return 0
            rows = (
                await conn.execute(
                    select(o.c.id, o.c.topic, o.c.key, o.c.payload, o.c.headers)
                    .where(o.c.published_at.is_(None))
                    .order_by(o.c.id)
                    .limit(self._batch_size)
                )
            ).all()
            if not rows:
                return 0
            await self._publish(rows)
            await conn.execute(
                update(o).where(o.c.id.in_([r.id for r in rows])).values(published_at=func.now())
            )
        return len(rows)

    async def _publish(self, rows: Sequence[Row[Any, Any, Any, Any, Any]]) -> None:
        spans = []
        messages = []
        for row in rows:
            span = tracer.start_span(
                f"{row.topic} publish",
                context=extract_context(row.headers),
                kind=SpanKind.PRODUCER,
                attributes=messaging_attributes(row.topic, "send", key=row.key),
            )
            spans.append(span)
            headers = inject_headers(trace.set_span_in_context(span))
            messages.append(OutgoingMessage(row.topic, row.key, row.payload, headers))
        try:
            await asyncio.to_thread(self._publisher.publish, messages)
        except Exception as exc:
            for span in spans:
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
            raise
        finally:
            for span in spans:
                span.end()
        for row in rows:
            OUTBOX_PUBLISHED.labels(self._service, row.topic).inc()

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until stop is set: drain, then sleep until NOTIFY or the poll interval."""
        failures = 0
        last_purge = 0.0
        while not stop.is_set():
            self.last_cycle = time.monotonic()
            await self._ensure_listener()
            try:
                published = await self.relay_once()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - retried: nothing was marked
                failures += 1
                OUTBOX_FAILURES.labels(self._service).inc()
                delay = min(MAX_BACKOFF_SECONDS, 0.1 * 2**failures)
                log.warning(
                    "outbox relay failed (%s); retrying in %.1fs", type(exc).__name__, delay
                )
                await _wait(stop, delay)
                continue
            if published >= self._batch_size:
                continue
            if time.monotonic() - last_purge > PURGE_EVERY_SECONDS:
                last_purge = time.monotonic()
                await self._purge_and_measure()
            self._wake.clear()
            await _wait_any(stop, self._wake, self._poll_interval)
            if self._linger and self._wake.is_set():
                # Woken by one commit: let the commits right behind it join the same batch
                # (one transaction and one broker round trip for many rows, not one each).
                await _wait(stop, self._linger)
        await self._close_listener()

    async def _purge_and_measure(self) -> None:
        o = self._outbox
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    delete(o).where(
                        o.c.published_at
                        < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, self._retention_seconds)
                    )
                )
                backlog = await conn.scalar(
                    select(func.count()).select_from(o).where(o.c.published_at.is_(None))
                )
            OUTBOX_BACKLOG.labels(self._service).set(backlog or 0)
        except Exception as exc:  # noqa: BLE001 - housekeeping; the next cycle tries again
            log.warning("outbox purge failed: %s", type(exc).__name__)

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            url = self._engine.url.render_as_string(hide_password=False)
            self._listener = await asyncpg.connect(libpq_dsn(url))
            await self._listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
        except Exception as exc:  # noqa: BLE001 - polling still works without notifications
            log.warning("outbox listener unavailable (%s); polling", type(exc).__name__)
            self._listener = None

    def _on_notify(self, *_args: object) -> None:
        self._wake.set()

    async def _close_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()
        self._listener = None


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()

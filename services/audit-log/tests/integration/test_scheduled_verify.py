"""The worker verifies the chain on its own schedule, incrementally, and says so in /metrics."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_audit.adapters import store
from claimflow_audit.domain.chain import Entry, chain_hash
from claimflow_audit.metrics import CHAIN_VALID, CHAIN_VERIFIED_SEQ
from claimflow_audit.settings import AuditSettings
from claimflow_audit.worker import create_worker_app
from claimflow_devstack.testing import eventually, in_process, publish
from claimflow_shared.events import Topics
from claimflow_shared.kafka.producer import OutgoingMessage

from ..conftest import tamper
from .test_worker import access

T0 = datetime(2024, 5, 1, tzinfo=UTC)
TICK = 0.05


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def errors() -> Iterator[Collected]:
    # On the module's logger: the worker's logging setup replaces the root's handlers.
    handler = Collected()
    logger = logging.getLogger("claimflow_audit.service_layer.verification")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def scheduled(settings: AuditSettings, *, full_every: float) -> AuditSettings:
    return settings.model_copy(
        update={
            "audit_verify_interval_seconds": TICK,
            "audit_full_verify_interval_seconds": full_every,
        }
    )


@pytest.fixture
def fresh_metrics() -> None:
    # The metrics are the process's: forget what an earlier test's worker left in them.
    CHAIN_VALID.set(math.nan)
    CHAIN_VERIFIED_SEQ.set(math.nan)


async def metrics(client: httpx.AsyncClient) -> dict[str, float]:
    page = (await client.get("/metrics")).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name.startswith("claimflow_audit_"):
                result = sample.labels.get("result")
                values[sample.name + (f":{result}" if result else "")] = sample.value
    return values


async def until(client: httpx.AsyncClient, **expected: float) -> dict[str, float]:
    """Wait for the worker's /metrics to show the expected values; names without prefix."""
    seen: dict[str, float] = {}

    async def shown() -> bool:
        nonlocal seen
        seen = await metrics(client)
        return all(seen.get(f"claimflow_audit_{k}") == v for k, v in expected.items())

    try:
        await eventually(shown, within=30.0, interval=TICK)
    except AssertionError:
        raise AssertionError(f"expected {expected}, /metrics shows {seen}") from None
    return seen


def entries(start: int, count: int) -> list[Entry]:
    return [
        Entry(
            event_id=f"ev-{n}",
            type="io.claimflow.audit.access.v1",
            event_time=T0 + timedelta(seconds=n),
            source="/claimflow/intake",
            subject=str(uuid.UUID(int=n)),
            payload_digest=hashlib.sha256(str(n).encode()).hexdigest(),
        )
        for n in range(start, start + count)
    ]


async def append(engine: AsyncEngine, start: int, count: int) -> None:
    async with engine.begin() as conn:
        await store.append(conn, entries(start, count))


@pytest.fixture
async def incremental(
    settings: AuditSettings, fresh_metrics: None
) -> AsyncIterator[httpx.AsyncClient]:
    """A worker verifying every TICK, re-walking everything only at start."""
    app = create_worker_app(scheduled(settings, full_every=3600))
    async with in_process(app, "audit-worker") as client:
        yield client


async def test_a_good_chain_is_valid_and_each_run_reads_only_new_records(
    settings: AuditSettings, incremental: httpx.AsyncClient
) -> None:
    topic = settings.topic(Topics.AUDIT_ACCESS)
    claim = str(uuid.uuid4())

    async def send(count: int) -> None:
        messages = [OutgoingMessage(topic, claim, access(claim)) for _ in range(count)]
        await asyncio.to_thread(publish, settings, messages)

    # The run at start verifies the empty chain: intact, up to seq 0.
    await until(incremental, chain_valid=1, chain_verified_seq=0)
    await send(10)
    first = await until(incremental, chain_valid=1, chain_verified_seq=10)
    await send(15)
    second = await until(incremental, chain_valid=1, chain_verified_seq=25)
    # Reaching 25 re-hashed exactly the 15 new records: nothing verified before was re-read.
    records = "claimflow_audit_verify_records_total"
    assert second[records] - first[records] == 15
    assert (
        second["claimflow_audit_verify_runs_total:ok"]
        > first["claimflow_audit_verify_runs_total:ok"]
    )
    assert second["claimflow_audit_verify_runs_total:broken"] == 0
    assert second["claimflow_audit_verify_runs_total:error"] == 0


async def test_a_cut_off_tail_breaks_the_next_incremental_run(
    engine: AsyncEngine, owner: AsyncEngine, incremental: httpx.AsyncClient, errors: Collected
) -> None:
    await append(engine, 1, 20)
    before = await until(incremental, chain_valid=1, chain_verified_seq=20)
    await tamper(owner, "DELETE FROM audit_records WHERE seq > 15")
    after = await until(incremental, chain_valid=0)
    assert (
        after["claimflow_audit_verify_runs_total:broken"]
        > before["claimflow_audit_verify_runs_total:broken"]
    )
    # The verified point does not move past a break.
    assert after["claimflow_audit_chain_verified_seq"] == 20
    logged = errors.records[0]
    assert (logged.first_invalid, logged.reason) == (16, "gap")  # type: ignore[attr-defined]


async def test_a_consistently_rehashed_record_shows_against_the_remembered_hash(
    engine: AsyncEngine, owner: AsyncEngine, incremental: httpx.AsyncClient, errors: Collected
) -> None:
    await append(engine, 1, 12)
    await until(incremental, chain_valid=1, chain_verified_seq=12)
    # The forger changes the head and re-hashes it: from seq 1 the chain walks intact.
    async with engine.connect() as conn:
        head = await anext(store.records_between(conn, 12, 12, 1))
    forged = replace(head[0], payload_digest="f" * 64)
    digest = chain_hash(forged.prev_hash, forged.body())
    await tamper(
        owner,
        f"UPDATE audit_records SET payload_digest = '{'f' * 64}', hash = '{digest}' WHERE seq = 12",
    )
    await until(incremental, chain_valid=0)
    logged = errors.records[0]
    assert (logged.first_invalid, logged.reason) == (12, "rewritten")  # type: ignore[attr-defined]


async def test_a_changed_record_is_found_by_the_next_full_run(
    settings: AuditSettings,
    engine: AsyncEngine,
    owner: AsyncEngine,
    fresh_metrics: None,
    errors: Collected,
) -> None:
    await append(engine, 1, 30)
    app = create_worker_app(scheduled(settings, full_every=TICK))
    async with in_process(app, "audit-worker") as client:
        before = await until(client, chain_valid=1, chain_verified_seq=30)
        await tamper(
            owner, f"UPDATE audit_records SET payload_digest = '{'e' * 64}' WHERE seq = 17"
        )
        after = await until(client, chain_valid=0)
        assert (
            after["claimflow_audit_verify_runs_total:broken"]
            > before["claimflow_audit_verify_runs_total:broken"]
        )
        logged = errors.records[0]
        assert (logged.first_invalid, logged.reason) == (17, "hash_mismatch")  # type: ignore[attr-defined]
        # It stays broken: every later run looks again and finds the same record.
        broken = after["claimflow_audit_verify_runs_total:broken"]

        async def looked_again() -> bool:
            shown = await metrics(client)
            return shown["claimflow_audit_verify_runs_total:broken"] >= broken + 2

        await eventually(looked_again, within=30.0, interval=TICK)
        assert (await metrics(client))["claimflow_audit_chain_valid"] == 0
        assert all(r.first_invalid == 17 for r in errors.records)  # type: ignore[attr-defined]


async def test_shutdown_stops_the_schedule(settings: AuditSettings, engine: AsyncEngine) -> None:
    await append(engine, 1, 300)
    app = create_worker_app(scheduled(settings, full_every=3600))
    async with in_process(app, "audit-worker"):
        # In chunks of 7 the run at start is usually still walking when the worker stops.
        (task,) = [t for t in asyncio.all_tasks() if t.get_name() == "audit-verify"]
    assert task.cancelled()


async def test_zero_turns_the_schedule_off(settings: AuditSettings, fresh_metrics: None) -> None:
    off = settings.model_copy(update={"audit_verify_interval_seconds": 0})
    app = create_worker_app(off)
    async with in_process(app, "audit-worker") as client:
        assert app.state.chain_verifier is None
        shown = await metrics(client)
    assert math.isnan(shown["claimflow_audit_chain_valid"])
    assert math.isnan(shown["claimflow_audit_chain_verified_seq"])


def test_settings_default_to_five_minutes_and_a_daily_full_walk() -> None:
    defaults: dict[str, Any] = AuditSettings().model_dump()
    assert defaults["audit_verify_interval_seconds"] == 300
    assert defaults["audit_full_verify_interval_seconds"] == 86400

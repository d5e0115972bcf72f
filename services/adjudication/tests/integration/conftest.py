"""Fixtures that run adjudication in-process against the session's real PostgreSQL, Kafka and
Redis, with the fake payments system answering payment requests."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_adjudication.cli import MIGRATIONS
from claimflow_adjudication.main import create_app
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_adjudication.worker import create_worker_app
from claimflow_devstack.fake_payments import FakePayments, FakePaymentsSettings
from claimflow_devstack.testing import (
    api_key,
    bearer,
    claim_line,
    in_process,
    read_topic,
    running,
    session_wiring,
    submitted,
)
from claimflow_shared.db import create_engine
from claimflow_shared.events import (
    CloudEvent,
    Topics,
)
from claimflow_shared.kafka.producer import OutgoingMessage, Publisher
from claimflow_shared.migrate import upgrade

PLANS_DIR = Path(__file__).parents[4] / "k8s" / "examples" / "benefitplans"
READER_KEY = "test-payer-reader-key"
# A clearinghouse's reader: its own organisation's claims only, none of the payer's reads.
CLEARINGHOUSE_READER_KEY = "test-reader-key"
SUBMITTER_KEY = "test-submitter-key"
D = Decimal


def auth(key: str = READER_KEY) -> dict[str, str]:
    return bearer(key)


@pytest.fixture
async def settings(database_url: str, kafka_broker: Any, topic_prefix: str) -> AdjudicationSettings:
    await asyncio.to_thread(upgrade, MIGRATIONS, database_url)
    return AdjudicationSettings(
        **session_wiring(
            database_url, kafka_broker.bootstrap_servers, topic_prefix, "adjudication"
        ),
        plans_dir=PLANS_DIR,
        api_keys=[
            # A principal name per test: rate-limit budgets in a shared Redis stay apart.
            api_key(READER_KEY, f"dashboard-{secrets.token_hex(3)}", {"payer-reader"}),
            api_key(CLEARINGHOUSE_READER_KEY, "clearinghouse-reader", {"reader"}),
            api_key(SUBMITTER_KEY, "clearinghouse", {"submitter"}),
        ],
        database_pool_size=20,
    )


@pytest.fixture
async def engine(settings: AdjudicationSettings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def client(settings: AdjudicationSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings) as c:
        yield c


def app_client(settings: AdjudicationSettings) -> Any:
    """The API app in-process, behind an httpx client, for as long as the block runs."""
    return in_process(create_app(settings), "adjudication")


@pytest.fixture
async def worker(settings: AdjudicationSettings) -> AsyncIterator[Any]:
    async with running(create_worker_app(settings)) as app:
        yield app


def fake_payments_settings(settings: AdjudicationSettings, **policy: Any) -> FakePaymentsSettings:
    return FakePaymentsSettings(
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        kafka_topic_prefix=settings.kafka_topic_prefix,
        **policy,
    )


@pytest.fixture
async def payments(settings: AdjudicationSettings) -> AsyncIterator[FakePayments]:
    """Payments that always complete."""
    fake = FakePayments(fake_payments_settings(settings))
    await fake.start()
    yield fake
    await fake.stop()


# --- events ----------------------------------------------------------------------------


def claim_1234(claim_id: uuid.UUID | None = None) -> CloudEvent[Any]:
    """examples/claim_1234.csv as intake publishes it."""
    return submitted(
        claim_line(1, submitted_procedure="D0180"),
        claim_line(2, submitted_procedure="D0210", provider_fees=D("108.00"),
                   allowed_fees=D("108.00")),
        claim_line(3, submitted_procedure="D4346", provider_fees=D("130.00"),
                   allowed_fees=D("65.00"), member_coinsurance=D("16.25")),
        claim_line(4, submitted_procedure="D4211", quadrant="UR", provider_fees=D("178.00"),
                   allowed_fees=D("178.00"), member_coinsurance=D("35.60")),
        claim_id=claim_id,
    )  # fmt: skip


def publish(
    settings: AdjudicationSettings, topic: str, messages: Sequence[tuple[str | None, bytes | None]]
) -> None:
    publisher = Publisher(settings)
    try:
        publisher.publish(
            [OutgoingMessage(settings.topic(topic), k, v or b"") for k, v in messages]
        )
    finally:
        publisher.close()


async def publish_events(settings: AdjudicationSettings, *events: CloudEvent[Any]) -> None:
    await asyncio.to_thread(
        publish,
        settings,
        Topics.CLAIMS_SUBMITTED,
        [(e.subject, e.to_json()) for e in events],
    )


async def read_events(
    settings: AdjudicationSettings, topic: str, count: int, within: float = 30.0
) -> list[dict[str, Any]]:
    messages = await asyncio.to_thread(
        read_topic, settings.kafka_bootstrap_servers, settings.topic(topic), count, within
    )
    return [json.loads(m.value) for m in messages]


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(text(sql), params)


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def claim_status(engine: AsyncEngine, claim_id: uuid.UUID) -> str | None:
    status: str | None = await scalar(
        engine, "SELECT status FROM claims WHERE claim_id = :c", c=claim_id
    )
    return status

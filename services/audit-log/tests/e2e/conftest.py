"""The claim pipeline in-process: intake's API and worker, adjudication's worker, a fake
payments system, and audit-log's worker and API.

Each service has its own database on the session's PostgreSQL, as in production, and all of
them share the test's Kafka topic prefix.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from claimflow_adjudication.cli import MIGRATIONS as ADJUDICATION_MIGRATIONS
from claimflow_adjudication.settings import AdjudicationSettings
from claimflow_adjudication.worker import create_worker_app as create_adjudication_worker
from claimflow_audit.main import create_app as create_audit_app
from claimflow_audit.settings import AuditSettings
from claimflow_audit.worker import create_worker_app as create_audit_worker
from claimflow_devstack.fake_payments import FakePayments, FakePaymentsSettings
from claimflow_devstack.testing import api_key
from claimflow_intake.cli import MIGRATIONS as INTAKE_MIGRATIONS
from claimflow_intake.main import create_app as create_intake_app
from claimflow_intake.settings import IntakeSettings
from claimflow_intake.worker import create_worker_app as create_intake_worker
from claimflow_shared.migrate import upgrade
from claimflow_shared.settings import ApiKey

from ..conftest import AUDITOR_KEY

SUBMITTER_KEY = "e2e-submitter-key"
PLANS = Path(__file__).parents[4] / "k8s" / "examples" / "benefitplans"


@dataclass
class Pipeline:
    intake: httpx.AsyncClient
    audit: httpx.AsyncClient


def _client(app: FastAPI, name: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")


async def _running(stack: AsyncExitStack, app: FastAPI) -> FastAPI:
    await stack.enter_async_context(app.router.lifespan_context(app))
    return app


async def _database(postgres_server: Any, service: str) -> str:
    name = f"{service}_{secrets.token_hex(6)}"
    url: str = await asyncio.to_thread(postgres_server.create_database, name)
    return url


@pytest.fixture
async def intake_database(postgres_server: Any) -> str:
    return await _database(postgres_server, "intake")


@pytest.fixture
async def adjudication_database(postgres_server: Any) -> str:
    return await _database(postgres_server, "adjudication")


@pytest.fixture
async def pipeline(
    settings: AuditSettings,
    intake_database: str,
    adjudication_database: str,
    kafka_broker: Any,
    topic_prefix: str,
) -> AsyncIterator[Pipeline]:
    keys: list[ApiKey] = [
        api_key(SUBMITTER_KEY, "clearinghouse", {"submitter", "reader"}),
        api_key(AUDITOR_KEY, "auditor", {"auditor"}),
    ]
    await asyncio.to_thread(upgrade, INTAKE_MIGRATIONS, intake_database)
    intake = IntakeSettings(
        database_url=intake_database,
        kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
        kafka_topic_prefix=topic_prefix,
        api_keys=keys,
        outbox_poll_interval_seconds=0.2,
        consumer_group=f"intake-{topic_prefix}",
    )
    await asyncio.to_thread(upgrade, ADJUDICATION_MIGRATIONS, adjudication_database)
    adjudication = AdjudicationSettings(
        database_url=adjudication_database,
        kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
        kafka_topic_prefix=topic_prefix,
        plans_dir=PLANS,
        api_keys=keys,
        outbox_poll_interval_seconds=0.2,
        consumer_group=f"adjudication-{topic_prefix}",
    )
    payments = FakePayments(
        FakePaymentsSettings(
            kafka_bootstrap_servers=kafka_broker.bootstrap_servers, kafka_topic_prefix=topic_prefix
        )
    )
    audit = settings.model_copy(update={"api_keys": keys})
    async with AsyncExitStack() as stack:
        # Consumers first, so nothing a producer sends waits on a consumer group to form.
        await _running(stack, create_audit_worker(audit))
        await payments.start()
        stack.push_async_callback(payments.stop)
        await _running(stack, create_adjudication_worker(adjudication))
        await _running(stack, create_intake_worker(intake))
        intake_api = await _running(stack, create_intake_app(intake))
        audit_api = await _running(stack, create_audit_app(audit))
        yield Pipeline(
            intake=await stack.enter_async_context(_client(intake_api, "intake")),
            audit=await stack.enter_async_context(_client(audit_api, "audit-log")),
        )


def new_trace() -> str:
    return hashlib.sha256(secrets.token_bytes(16)).hexdigest()[:32]

"""Fixtures that run intake in-process against the session's real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from claimflow_devstack.testing import api_key, bearer, in_process, running, session_wiring
from claimflow_intake.cli import MIGRATIONS
from claimflow_intake.main import create_app
from claimflow_intake.settings import IntakeSettings
from claimflow_intake.worker import create_worker_app
from claimflow_shared.migrate import upgrade

SUBMITTER_KEY = "test-submitter-key"
READER_KEY = "test-reader-key"
AUDITOR_KEY = "test-auditor-key"
# Another organisation's clearinghouse, and the payer's own staff.
OTHER_ORG_KEY = "test-other-org-key"
PAYER_KEY = "test-payer-key"


def auth(key: str = SUBMITTER_KEY) -> dict[str, str]:
    return bearer(key)


@pytest.fixture
async def settings(database_url: str, kafka_broker: Any, topic_prefix: str) -> IntakeSettings:
    await asyncio.to_thread(upgrade, MIGRATIONS, database_url)
    return IntakeSettings(
        **session_wiring(database_url, kafka_broker.bootstrap_servers, topic_prefix, "intake"),
        api_keys=[
            api_key(SUBMITTER_KEY, "clearinghouse", {"submitter", "reader"}),
            api_key(READER_KEY, "dashboard", {"reader"}, organisation="clearinghouse"),
            api_key(AUDITOR_KEY, "auditor", {"auditor"}),
            api_key(OTHER_ORG_KEY, "other-clearinghouse", {"submitter", "reader"}),
            api_key(PAYER_KEY, "payer-staff", {"payer-reader"}, organisation="payer"),
        ],
        database_pool_size=25,
    )


@pytest.fixture
async def client(settings: IntakeSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(create_app(settings), "intake") as c:
        yield c


@pytest.fixture
async def worker(settings: IntakeSettings) -> AsyncIterator[Any]:
    async with running(create_worker_app(settings)) as app:
        yield app


def decode(message: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(message.value)
    return value

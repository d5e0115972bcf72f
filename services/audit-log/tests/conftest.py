"""audit-log in-process against the session's real PostgreSQL and Kafka.

The database is set up as in production: migrated by the owner (the session's superuser),
used by the service through the restricted application role the migration grants.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from claimflow_audit.adapters.db import create_engine
from claimflow_audit.cli import migrate
from claimflow_audit.main import create_app
from claimflow_audit.settings import AuditSettings
from claimflow_audit.worker import create_worker_app
from claimflow_devstack.testing import api_key, bearer, in_process, running, session_wiring

APP_ROLE = "claimflow_audit_app"
AUDITOR_KEY = "test-auditor-key"
READER_KEY = "test-reader-key"


def auth(key: str = AUDITOR_KEY) -> dict[str, str]:
    return bearer(key)


def as_role(owner_url: str, role: str = APP_ROLE) -> str:
    return make_url(owner_url).set(username=role).render_as_string(hide_password=False)


def audit_settings(owner_url: str, bootstrap: str, prefix: str, **overrides: Any) -> AuditSettings:
    values: dict[str, Any] = {
        **session_wiring(as_role(owner_url), bootstrap, prefix, "audit-log"),
        "migration_database_url": owner_url,
        "api_keys": [
            api_key(AUDITOR_KEY, "auditor", {"auditor"}),
            api_key(READER_KEY, "dashboard", {"reader"}),
        ],
        # Small chunks, so every verify and export in the tests crosses chunk boundaries.
        "verify_chunk_size": 7,
        "checkpoint_interval_seconds": 3600,
    }
    return AuditSettings(**(values | overrides))


@pytest.fixture
async def settings(database_url: str, kafka_broker: Any, topic_prefix: str) -> AuditSettings:
    configured = audit_settings(database_url, kafka_broker.bootstrap_servers, topic_prefix)
    await asyncio.to_thread(migrate, configured)
    return configured


@pytest.fixture
async def engine(settings: AuditSettings) -> AsyncIterator[AsyncEngine]:
    """Connected as the application role, and configured, like the service."""
    created = create_engine(settings)
    yield created
    await created.dispose()


@pytest.fixture
async def owner(database_url: str) -> AsyncIterator[AsyncEngine]:
    """Connected as the superuser: what an attacker with the keys to the server would be."""
    created = create_async_engine(database_url)
    yield created
    await created.dispose()


async def tamper(owner: AsyncEngine, statement: str) -> None:
    """Run statement with the append-only trigger disabled, as only an owner could."""
    async with owner.begin() as conn:
        await conn.execute(
            text("ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only")
        )
        await conn.execute(text(statement))
        await conn.execute(
            text("ALTER TABLE audit_records ENABLE TRIGGER audit_records_append_only")
        )


@pytest.fixture
async def client(settings: AuditSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(create_app(settings), "audit-log") as c:
        yield c


@pytest.fixture
async def worker(settings: AuditSettings) -> AsyncIterator[FastAPI]:
    async with running(create_worker_app(settings)) as app:
        yield app


async def chain_length(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        count: int = await conn.scalar(text("SELECT count(*) FROM audit_records"))
    return count

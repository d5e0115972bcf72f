"""Database faults provoked for real on a test's own PostgreSQL database, and what an API must
answer to them: 503 problem+json with Retry-After, never a 500.

Every helper connects on its own with application_name "db-faults", so terminating "the app's
connections" (selected by the app's application_name) never hits the helper's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI
from pydantic_settings import BaseSettings
from sqlalchemy.engine import make_url

from claimflow_devstack import processes
from claimflow_shared.dburl import libpq_dsn

HELPER_APPLICATION = "db-faults"
UNAVAILABLE_TYPE = "https://claimflow.dev/problems/service-unavailable"

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


async def connect(database_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        libpq_dsn(database_url), server_settings={"application_name": HELPER_APPLICATION}
    )


def closed_port_url(database_url: str) -> str:
    """database_url moved to a loopback port nothing listens on: every connect is refused."""
    url = make_url(database_url).set(host=processes.LOCALHOST, port=processes.free_port())
    return url.render_as_string(hide_password=False)


def database_name(database_url: str) -> str:
    name = make_url(database_url).database
    assert name, database_url
    return name


async def terminate_backends(database_url: str, application_name: str) -> int:
    """pg_terminate_backend every connection the app holds to the database, idle or busy:
    what a server restart or failover does to them (SQLSTATE 57P01)."""
    conn = await connect(database_url)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = $1 "
            "AND pid <> pg_backend_pid()",
            application_name,
        )
    finally:
        await conn.close()
    return int(killed)


async def wait_for_lock_waiter(
    database_url: str, application_name: str, within: float = 30.0
) -> int:
    """The pid of an app backend blocked on a lock, once one is."""
    conn = await connect(database_url)
    deadline = time.monotonic() + within
    try:
        while True:
            pid = await conn.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = $1 AND wait_event_type = 'Lock' LIMIT 1",
                application_name,
            )
            if pid is not None:
                return int(pid)
            if time.monotonic() >= deadline:
                raise AssertionError(f"no {application_name} backend waited for a lock")
            await asyncio.sleep(0.02)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def table_locked(database_url: str, *tables: str) -> AsyncIterator[None]:
    """Hold ACCESS EXCLUSIVE locks on tables in an open transaction: every statement that
    touches them waits, as behind a long migration or a runaway transaction."""
    conn = await connect(database_url)
    try:
        async with conn.transaction():
            for table in tables:
                await conn.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
            yield
    finally:
        await conn.close()


async def make_read_only(database_url: str) -> None:
    """Every new session of the database is read-only, as on a hot standby; the app's pooled
    sessions are ended so that it opens new ones."""
    conn = await connect(database_url)
    try:
        name = database_name(database_url)
        await conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()


def assert_unavailable(response: httpx.Response) -> None:
    """The answer to a database outage: 503, problem+json, Retry-After, nothing of the SQL."""
    assert response.status_code == 503, (response.status_code, response.text[:500])
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    body: dict[str, Any] = response.json()
    assert body["type"] == UNAVAILABLE_TYPE
    assert body["status"] == 503
    text = response.text.lower()
    for leak in ("select", "insert", "update", "sqlstate", "postgres", "asyncpg", "127.0.0.1"):
        assert leak not in text, (leak, response.text)


def with_settings(settings: SettingsT, **update: Any) -> SettingsT:
    """A copy of a service's settings with `update` applied and validated again."""
    return type(settings).model_validate(settings.model_dump() | update)


async def assert_routes_unavailable(
    client: httpx.AsyncClient, paths: Sequence[str], headers: Mapping[str, str]
) -> None:
    """Every GET route in `paths` answers a database outage as it should."""
    for path in paths:
        assert_unavailable(await client.get(path, headers=headers))


async def assert_each_route_survives_terminated_sessions(
    client: httpx.AsyncClient,
    paths: Sequence[str],
    headers: Mapping[str, str],
    *,
    database_url: str,
    application_name: str,
    serves: Callable[[], Awaitable[None]],
) -> None:
    """For each route: the app's sessions are terminated, that route's next request answers
    503, and the pool recovers (`serves` passes) before and after."""
    for path in paths:
        await serves()
        assert await terminate_backends(database_url, application_name) >= 1
        assert_unavailable(await client.get(path, headers=headers))
    await serves()


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app behind a real uvicorn on a loopback port, in this event loop; yields its URL."""
    port = processes.free_port()
    config = uvicorn.Config(
        app,
        host=processes.LOCALHOST,
        port=port,
        log_config=None,
        access_log=False,
        # The test's client owns its connections' lifetime. With uvicorn's 5 s default, an
        # event loop busy with a burst can let a pooled connection idle past it and the
        # server close it just as the client sends on it: a ReadError no server bug caused.
        timeout_keep_alive=300,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise AssertionError("uvicorn stopped before it started")
            await asyncio.sleep(0.02)
        yield f"http://{processes.LOCALHOST}:{port}"
    finally:
        server.should_exit = True
        await task
